import { randomUUID } from 'node:crypto';

import { Injectable } from '@nestjs/common';

import { AuditService } from '@parley/audit';
import { AbilityFactory, subjectOf } from '@parley/authz';
import { Clock, ForbiddenProblem, Metrics, NotFoundProblem, RequestContext } from '@parley/core';
import { FieldCipher } from '@parley/crypto';
import { TenantStatement, TenantTransactions } from '@parley/database';

import { MessageView } from './conversations.dto';
import { ConversationsErrorCode, ConversationsProblem } from './conversations.errors';
import { AuthorType, MessageEntity } from './message.entity';
import { MessageBroadcaster } from './message-broadcaster';
import { MessageWriter, WrittenRow } from './message-writer';
import { toMessageView } from './views';

interface MessagePageRow {
  organization_id: string;
  contact_id: string;
  assignee_id: string | null;
  after_found: boolean;
  id: string | null;
  author_type: string | null;
  author_id: string | null;
  body: string | null;
  created_at: Date | null;
}

export interface SendResult {
  message: MessageView;
  duplicate: boolean;
}

/** What a write is authorized against; parley_send_messages inserts only while it still holds. */
interface ConversationState {
  id: string;
  organizationId: string;
  contactId: string;
  assigneeId: string | null;
}

const MESSAGE_PAGE: TenantStatement = {
  name: 'parley_message_page',
  text: 'select * from parley_message_page($1, $2, $3, $4)',
};

/** A conversation changed between two tries this many times: give up rather than spin. */
const SEND_ATTEMPTS = 3;

const STATE_CACHE_ENTRIES = 50_000;

@Injectable()
export class MessagesService {
  constructor(
    private readonly transactions: TenantTransactions,
    private readonly context: RequestContext,
    private readonly abilities: AbilityFactory,
    private readonly audit: AuditService,
    private readonly broadcaster: MessageBroadcaster,
    private readonly clock: Clock,
    private readonly metrics: Metrics,
    private readonly cipher: FieldCipher,
    private readonly writer: MessageWriter,
  ) {}

  /**
   * The last state seen of each conversation a message was sent to. It is only a guess: a send
   * authorizes against it and the statement writes only if the row still matches, answering with
   * the row as it is otherwise. Entries are used only for their own organization.
   */
  private readonly stateOf = new Map<string, ConversationState>();

  /**
   * Stores a message from the caller and broadcasts it once it is committed. A retried send with
   * the same clientMessageId returns the stored message and writes nothing.
   *
   * The caller's right to write is decided first, by the CASL rules, on the conversation as last
   * seen; the message and its audit entry are then inserted by one statement, and only if the
   * conversation still has the contact and assignee the decision was made on. When it does not
   * (or had not been seen yet), the statement writes nothing and returns the conversation as it
   * is, and the decision is made again on that. Nothing refused is ever written or broadcast.
   */
  async send(requestedId: string, body: string, clientMessageId?: string): Promise<SendResult> {
    const author = this.authorOf();
    const organizationId = this.context.organizationIdOrThrow();
    const cacheKey = `${organizationId}|${requestedId.toLowerCase()}`;
    let state = this.stateOf.get(cacheKey);
    // A cached state is a guess: a refusal or a key that no longer seals on it is only final
    // once the conversation has been read as it is now.
    let fresh = false;
    const id = randomUUID();
    let sealed: { contactId: string; body: string } | undefined;

    for (let attempt = 0; attempt <= SEND_ATTEMPTS; attempt += 1) {
      if (state) {
        try {
          this.authorizeOrThrow(state);
          if (sealed?.contactId !== state.contactId) {
            sealed = { contactId: state.contactId, body: await this.sealBody(state, id, body) };
          }
        } catch (error) {
          if (fresh) {
            // A retry of a send that was stored before the caller lost the right to write: the
            // idempotency key still answers with what was stored, as it would have the first time.
            const stored =
              clientMessageId && error instanceof ForbiddenProblem
                ? await this.storedCopy(organizationId, state.id, author, clientMessageId)
                : undefined;
            if (stored) {
              return stored;
            }
            throw error;
          }
          this.stateOf.delete(cacheKey);
          state = undefined;
        }
      }
      const now = this.clock.now();
      const audit = this.audit.entry({ organizationId: '', action: 'message.created' });
      const row = await this.writer.write(organizationId, {
        conversationId: requestedId,
        contactId: state?.contactId ?? null,
        assigneeId: state?.assigneeId ?? null,
        id,
        authorType: author.type,
        authorId: author.id,
        // No state, no insert: the body is not used, but the column's constraint is not checked
        // either, so a placeholder will do.
        body: sealed?.body ?? '',
        clientMessageId: clientMessageId ?? null,
        at: now,
        actorType: audit.actorType,
        actorId: audit.actorId,
        requestId: audit.requestId,
        ip: audit.ip,
        elevationId: audit.elevationId,
      });
      if (!row) {
        this.stateOf.delete(cacheKey);
        throw new NotFoundProblem('conversation');
      }
      const current: ConversationState = {
        // The stored id, not the one asked for: a UUID in upper case names the same row, but the
        // broadcast room and the returned view must carry the canonical spelling.
        id: row.conversation_id,
        organizationId: row.organization_id,
        contactId: row.contact_id,
        assigneeId: row.assignee_id,
      };
      this.remember(cacheKey, current);
      if (row.id) {
        return this.sent(organizationId, author, current.id, row, body);
      }
      if (state && sameState(state, current)) {
        // The conversation was as authorized and nothing was inserted: the idempotency key
        // matched a message already stored.
        return this.duplicateOf(organizationId, current.id, author, clientMessageId);
      }
      state = current;
      fresh = true;
    }

    throw new ConversationsProblem(
      ConversationsErrorCode.ConversationBusy,
      'The conversation kept changing while the message was sent; send it again.',
    );
  }

  /**
   * One page of a conversation's messages, oldest first. The conversation row and the page come
   * back in one statement; the caller's right to read is then checked on that row.
   */
  async list(conversationId: string, limit: number, after?: string): Promise<MessageView[]> {
    const organizationId = this.context.organizationIdOrThrow();
    const rows = await this.transactions.statement<MessagePageRow>(organizationId, MESSAGE_PAGE, [
      organizationId,
      conversationId,
      limit,
      after ?? null,
    ]);
    const conversation = rows[0];
    const ability = this.abilities.forActor(this.context.actor);
    if (
      !conversation ||
      !ability.can(
        'read',
        subjectOf('Conversation', {
          organizationId: conversation.organization_id,
          contactId: conversation.contact_id,
          assigneeId: conversation.assignee_id,
        }),
      )
    ) {
      throw new NotFoundProblem('conversation');
    }
    if (!conversation.after_found) {
      throw new ConversationsProblem(
        ConversationsErrorCode.MessageCursorUnknown,
        'after names no message of this conversation.',
        400,
      );
    }

    const stored = rows.filter((row) => row.id !== null);
    const bodies = await this.transactions.preferCache(organizationId, (db) =>
      this.cipher.openMany(
        db,
        stored.map((row) => ({
          organizationId: conversation.organization_id,
          table: 'messages',
          column: 'body',
          rowId: row.id as string,
        })),
        stored.map((row) => row.body as string),
      ),
    );

    return stored.map((row, index) => ({
      id: row.id as string,
      // PostgreSQL spells a uuid in lower case; the path may not have.
      conversationId,
      authorType: row.author_type as AuthorType,
      authorId: row.author_id,
      body: bodies[index],
      createdAt: new Date(row.created_at as Date).toISOString(),
    }));
  }

  private sealBody(state: ConversationState, id: string, body: string): Promise<string> {
    return this.transactions.preferCache(state.organizationId, (db) =>
      this.cipher.seal(
        db,
        { purpose: 'contact', contactId: state.contactId },
        { organizationId: state.organizationId, table: 'messages', column: 'body', rowId: id },
        body,
      ),
    );
  }

  private sent(
    organizationId: string,
    author: { type: AuthorType; id: string },
    conversationId: string,
    row: WrittenRow,
    body: string,
  ): SendResult {
    const message: MessageView = {
      id: row.id as string,
      conversationId,
      authorType: author.type,
      authorId: author.id,
      body,
      createdAt: new Date(row.created_at as Date).toISOString(),
    };
    if (this.writer.audited) {
      this.audit.appended(organizationId);
    }
    this.transactions.afterCommit(() => {
      this.metrics.messages.inc({ author_type: author.type });
      this.broadcaster.publish(message);
    });

    return { message, duplicate: false };
  }

  private async duplicateOf(
    organizationId: string,
    conversationId: string,
    author: { type: AuthorType; id: string },
    clientMessageId: string | undefined,
  ): Promise<SendResult> {
    const stored = await this.storedCopy(
      organizationId,
      conversationId,
      author,
      clientMessageId as string,
    );
    if (!stored) {
      throw new Error('A send matched an idempotency key whose message is not there');
    }

    return stored;
  }

  /** The caller's message stored under this idempotency key, as a duplicate, if there is one. */
  private async storedCopy(
    organizationId: string,
    conversationId: string,
    author: { type: AuthorType; id: string },
    clientMessageId: string,
  ): Promise<SendResult | undefined> {
    const existing = await this.transactions.run(organizationId, (manager) =>
      manager.findOneBy(MessageEntity, {
        conversationId,
        authorType: author.type,
        authorId: author.id,
        clientMessageId,
      }),
    );

    return existing ? { message: toMessageView(existing), duplicate: true } : undefined;
  }

  private remember(cacheKey: string, state: ConversationState): void {
    if (!this.stateOf.has(cacheKey) && this.stateOf.size >= STATE_CACHE_ENTRIES) {
      this.stateOf.clear();
    }
    this.stateOf.set(cacheKey, state);
  }

  /** Who writes: a visitor writes as its contact, a member as an agent. */
  private authorOf(): { type: AuthorType; id: string } {
    const actor = this.context.actor;
    if (!actor || actor.type === 'system') {
      throw new ForbiddenProblem('You may not write in this conversation.');
    }

    if (actor.type === 'visitor') {
      return { type: 'contact', id: actor.contactId };
    }

    // A key writes as the member who created it; the audit entry names the key itself.
    return { type: 'agent', id: actor.type === 'apiKey' ? actor.userId : actor.id };
  }

  /** 404 when the caller may not even read the conversation, 403 when it may read but not write. */
  private authorizeOrThrow(conversation: ConversationState): void {
    const actor = this.context.actor;
    const ability = this.abilities.forActor(actor);
    const { organizationId, contactId, assigneeId } = conversation;
    if (
      !ability.can('read', subjectOf('Conversation', { organizationId, contactId, assigneeId }))
    ) {
      throw new NotFoundProblem('conversation');
    }
    const record = subjectOf('Message', {
      organizationId: conversation.organizationId,
      conversationContactId: conversation.contactId,
      conversationAssigneeId: conversation.assigneeId,
    });
    if (!ability.can('create', record)) {
      throw new ForbiddenProblem(
        actor?.type === 'user' && actor.role === 'viewer'
          ? 'Viewers read conversations but never write in them.'
          : 'You may not write in this conversation.',
      );
    }
  }
}

function sameState(a: ConversationState, b: ConversationState): boolean {
  return a.id === b.id && a.contactId === b.contactId && a.assigneeId === b.assigneeId;
}
