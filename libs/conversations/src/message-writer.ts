import { Inject, Injectable, Logger } from '@nestjs/common';
import { ClsService } from 'nestjs-cls';

import { APP_CONFIG, AppConfig, ParleyStore } from '@parley/core';
import { TenantStatement, TenantTransactions } from '@parley/database';

import { AuthorType } from './message.entity';

/** One message to store, and the conversation state its write was authorized against. */
export interface MessageWrite {
  conversationId: string;
  /** The contact and assignee the decision was made on; null contact: not decided yet. */
  contactId: string | null;
  assigneeId: string | null;
  id: string;
  authorType: AuthorType;
  authorId: string;
  /** Sealed; anything when contactId is null, since nothing is inserted then. */
  body: string;
  clientMessageId: string | null;
  at: Date;
  actorType: string;
  actorId: string | null;
  requestId: string | null;
  ip: string | null;
  elevationId: string | null;
}

/** The conversation as the write found it, and the stored message when it inserted one. */
export interface WrittenRow {
  conversation_id: string;
  organization_id: string;
  contact_id: string;
  assignee_id: string | null;
  id: string | null;
  created_at: Date | null;
}

interface BatchRow extends WrittenRow {
  ord: number;
  busy: boolean;
}

/** A write's outcome: the row, nothing (the conversation is not visible), or skipped as locked. */
type Outcome = WrittenRow | undefined | 'busy';

interface Pending {
  write: MessageWrite;
  resolve(row: WrittenRow | undefined): void;
  reject(error: unknown): void;
}

interface Lane {
  waiting: Pending[];
  running: number;
  scheduled: boolean;
  /** Writes whose conversation was locked, one at a time, in the order they arrived. */
  slow: Promise<void>;
  /** How many writes each conversation has on the slow path; later ones follow them there. */
  slowConversations: Map<string, number>;
}

const SEND_MESSAGES: TenantStatement = {
  name: 'parley_send_messages',
  text: 'select * from parley_send_messages($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17)',
};

/**
 * Batches of one organization in the database at once. One keeps the organization's messages
 * committed in the order this instance received them, and measured no slower than two: the
 * batch that waits takes everything that arrived meanwhile. Known shortcoming: across instances,
 * or for a send retried after its conversation changed, that order does not hold, and a reader
 * paging with `after` (created_at, id) can then skip a message that committed after a later one.
 */
const RUNNING_PER_ORGANIZATION = 1;

/** Sends per batch at most (each body up to about 5 KB sealed). */
const BATCH_LIMIT = 100;

/**
 * Stores messages through `parley_send_messages`, in batches per organization. A write that
 * arrives while that organization's batch is running waits for the next batch, which takes
 * everything that arrived meanwhile, so a busy organization pays one statement, transaction and
 * commit for many messages, and a quiet one sends each message at once as a batch of one.
 * Nothing is acknowledged before its batch has committed.
 *
 * A batch does not wait for a conversation locked by another transaction: those writes come back
 * busy and are written alone, one after the other, waiting for the lock; later writes to the same
 * conversation follow them, so its messages keep their order. Inside a tenant transaction a write
 * runs alone in that transaction. A batch that fails as a whole is tried again one write at a
 * time, so one write's error is only its own.
 */
@Injectable()
export class MessageWriter {
  private readonly logger = new Logger(MessageWriter.name);
  private readonly lanes = new Map<string, Lane>();
  /** BENCH_UNSAFE_NO_MESSAGE_AUDIT: never true in production (the configuration refuses it). */
  private readonly audit: boolean;

  constructor(
    private readonly transactions: TenantTransactions,
    private readonly cls: ClsService<ParleyStore>,
    @Inject(APP_CONFIG) config: AppConfig,
  ) {
    this.audit = !(config.benchUnsafeNoMessageAudit && !config.production);
  }

  /** False only on a bench server measuring what the audit entries cost. */
  get audited(): boolean {
    return this.audit;
  }

  /** Resolves with the row the write produced, or undefined when the conversation is not visible. */
  write(organizationId: string, write: MessageWrite): Promise<WrittenRow | undefined> {
    if (this.transactions.active) {
      return this.writeAlone(organizationId, write);
    }

    return new Promise((resolve, reject) => {
      let lane = this.lanes.get(organizationId);
      if (!lane) {
        lane = {
          waiting: [],
          running: 0,
          scheduled: false,
          slow: Promise.resolve(),
          slowConversations: new Map(),
        };
        this.lanes.set(organizationId, lane);
      }
      lane.waiting.push({ write, resolve, reject });
      this.schedule(organizationId, lane);
    });
  }

  /** Starts a batch at the end of this turn of the event loop, if the lane has room for one. */
  private schedule(organizationId: string, lane: Lane): void {
    if (lane.scheduled || lane.running >= RUNNING_PER_ORGANIZATION || lane.waiting.length === 0) {
      return;
    }
    lane.scheduled = true;
    // Outside the context of the request that happened to schedule it: a batch serves many.
    this.cls.exit(() =>
      setImmediate(() => {
        lane.scheduled = false;
        this.start(organizationId, lane);
      }),
    );
  }

  private start(organizationId: string, lane: Lane): void {
    while (lane.running < RUNNING_PER_ORGANIZATION && lane.waiting.length > 0) {
      const batch: Pending[] = [];
      while (batch.length < BATCH_LIMIT && lane.waiting.length > 0) {
        const pending = lane.waiting.shift() as Pending;
        if (lane.slowConversations.has(conversationKey(pending.write))) {
          this.writeSlowly(organizationId, lane, pending);
        } else {
          batch.push(pending);
        }
      }
      if (batch.length === 0) {
        break;
      }
      lane.running += 1;
      void this.settle(organizationId, lane, batch).finally(() => {
        lane.running -= 1;
        this.schedule(organizationId, lane);
        this.forgetIfIdle(organizationId, lane);
      });
    }
    this.forgetIfIdle(organizationId, lane);
  }

  /** Writes a batch and settles each of its writes; never rejects. */
  private async settle(organizationId: string, lane: Lane, batch: Pending[]): Promise<void> {
    let outcomes: Outcome[];
    try {
      outcomes = await this.run(
        organizationId,
        batch.map((pending) => pending.write),
        false,
      );
    } catch (error) {
      if (batch.length === 1) {
        batch[0].reject(error);

        return;
      }
      this.logger.warn(
        { organizationId, writes: batch.length, reason: (error as Error).message },
        'a message batch failed; writing its messages one at a time',
      );
      // In order, so that two messages of one conversation keep theirs.
      for (const pending of batch) {
        await this.settle(organizationId, lane, [pending]);
      }

      return;
    }
    batch.forEach((pending, index) => {
      const outcome = outcomes[index];
      if (outcome === 'busy') {
        this.writeSlowly(organizationId, lane, pending);
      } else {
        pending.resolve(outcome);
      }
    });
  }

  /** Queues a write to be written alone, waiting for its conversation's lock, after the others. */
  private writeSlowly(organizationId: string, lane: Lane, pending: Pending): void {
    const key = conversationKey(pending.write);
    lane.slowConversations.set(key, (lane.slowConversations.get(key) ?? 0) + 1);
    lane.slow = lane.slow.then(async () => {
      try {
        pending.resolve(await this.writeAlone(organizationId, pending.write));
      } catch (error) {
        pending.reject(error);
      } finally {
        const left = (lane.slowConversations.get(key) ?? 1) - 1;
        if (left > 0) {
          lane.slowConversations.set(key, left);
        } else {
          lane.slowConversations.delete(key);
        }
        this.forgetIfIdle(organizationId, lane);
      }
    });
  }

  private forgetIfIdle(organizationId: string, lane: Lane): void {
    if (
      lane.running === 0 &&
      !lane.scheduled &&
      lane.waiting.length === 0 &&
      lane.slowConversations.size === 0 &&
      this.lanes.get(organizationId) === lane
    ) {
      this.lanes.delete(organizationId);
    }
  }

  private async writeAlone(
    organizationId: string,
    write: MessageWrite,
  ): Promise<WrittenRow | undefined> {
    const [outcome] = await this.run(organizationId, [write], true);
    if (outcome === 'busy') {
      throw new Error('parley_send_messages skipped a locked conversation while told to wait');
    }

    return outcome;
  }

  /** One statement for the writes, in order; the result has one entry per write. */
  private async run(organizationId: string, writes: MessageWrite[], wait: boolean) {
    const rows = await this.transactions.statement<BatchRow>(organizationId, SEND_MESSAGES, [
      organizationId,
      writes.map((write) => write.conversationId),
      writes.map((write) => write.contactId),
      writes.map((write) => write.assigneeId),
      writes.map((write) => write.id),
      writes.map((write) => write.authorType),
      writes.map((write) => write.authorId),
      writes.map((write) => write.body),
      writes.map((write) => write.clientMessageId),
      writes.map((write) => write.at),
      writes.map((write) => write.actorType),
      writes.map((write) => write.actorId),
      writes.map((write) => write.requestId),
      writes.map((write) => write.ip),
      writes.map((write) => write.elevationId),
      this.audit,
      wait,
    ]);
    const outcomes: Outcome[] = new Array(writes.length).fill(undefined);
    for (const { ord, busy, ...row } of rows) {
      outcomes[ord - 1] = busy ? 'busy' : row;
    }

    return outcomes;
  }
}

/** Conversation ids as the client sent them: a UUID in upper case names the same one. */
function conversationKey(write: MessageWrite): string {
  return write.conversationId.toLowerCase();
}
