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
}

interface Pending {
  write: MessageWrite;
  resolve(row: WrittenRow | undefined): void;
  reject(error: unknown): void;
}

interface Lane {
  waiting: Pending[];
  running: number;
  scheduled: boolean;
}

const SEND_MESSAGES: TenantStatement = {
  name: 'parley_send_messages',
  text: 'select * from parley_send_messages($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16)',
};

/**
 * Batches of one organization in the database at once. Two let one batch be written while the
 * next one fills; more would only make each batch smaller.
 */
const RUNNING_PER_ORGANIZATION = 2;

/** Sends per batch at most (each body up to about 5 KB sealed). */
const BATCH_LIMIT = 100;

/**
 * Stores messages through `parley_send_messages`, in batches per organization. A write that
 * arrives while that organization's batches are running waits for the next batch, which takes
 * everything that arrived meanwhile, so a busy organization pays one statement, transaction and
 * commit for many messages, and a quiet one sends each message at once as a batch of one.
 * Nothing is acknowledged before its batch has committed.
 *
 * Inside a tenant transaction a write runs alone in that transaction. A batch that fails as a
 * whole is tried again one write at a time, so one write's error is only its own.
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
      return this.run(organizationId, [write]).then((rows) => rows[0]);
    }

    return new Promise((resolve, reject) => {
      let lane = this.lanes.get(organizationId);
      if (!lane) {
        lane = { waiting: [], running: 0, scheduled: false };
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
      const batch = lane.waiting.splice(0, BATCH_LIMIT);
      lane.running += 1;
      void this.settle(organizationId, batch).finally(() => {
        lane.running -= 1;
        if (lane.running === 0 && lane.waiting.length === 0) {
          this.lanes.delete(organizationId);
        } else {
          this.schedule(organizationId, lane);
        }
      });
    }
  }

  /** Writes a batch and settles each of its writes; never rejects. */
  private async settle(organizationId: string, batch: Pending[]): Promise<void> {
    try {
      const rows = await this.run(
        organizationId,
        batch.map((pending) => pending.write),
      );
      batch.forEach((pending, index) => pending.resolve(rows[index]));
    } catch (error) {
      if (batch.length === 1) {
        batch[0].reject(error);

        return;
      }
      this.logger.warn(
        { organizationId, writes: batch.length, reason: (error as Error).message },
        'a message batch failed; writing its messages one at a time',
      );
      await Promise.all(batch.map((pending) => this.settle(organizationId, [pending])));
    }
  }

  /** One statement for the writes, in order; the result has one entry per write. */
  private async run(
    organizationId: string,
    writes: MessageWrite[],
  ): Promise<(WrittenRow | undefined)[]> {
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
    ]);
    const byPosition: (WrittenRow | undefined)[] = new Array(writes.length).fill(undefined);
    for (const { ord, ...row } of rows) {
      byPosition[ord - 1] = row;
    }

    return byPosition;
  }
}
