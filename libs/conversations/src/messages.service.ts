import { randomUUID } from 'node:crypto';

import { Inject, Injectable } from '@nestjs/common';

import { AuditService } from '@parley/audit';
import { AbilityFactory, subjectOf } from '@parley/authz';
import {
  APP_CONFIG,
  AppConfig,
  Clock,
  ForbiddenProblem,
  Metrics,
  NotFoundProblem,
  RequestContext,
} from '@parley/core';
import { FieldCipher } from '@parley/crypto';
import { TenantTransactions } from '@parley/database';

import { MessageView } from './conversations.dto';
import { AuthorType, MessageEntity } from './message.entity';
import { MessageBroadcaster } from './message-broadcaster';
import { toMessageView } from './views';

interface SendRow {
  conversation_id: string;
  organization_id: string;
  contact_id: string;
  assignee_id: string | null;
  id: string | null;
  created_at: Date | null;
}

interface MessagePageRow {
  organization_id: string;
  contact_id: string;
  assignee_id: string | null;
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
    @Inject(APP_CONFIG) config: AppConfig,
  ) {
    this.skipAudit = config.benchUnsafeNoMessageAudit && !config.production;
  }

  /**
   * Which contact each conversation belongs to, which never changes: the body is sealed under
   * that contact's key before the insert, and this saves a round trip per message. Entries are
   * only ever read inside a transaction of the same organization.
   */
  private readonly contactOf = new Map<string, string>();

  /** BENCH_UNSAFE_NO_MESSAGE_AUDIT: never true in production (the configuration refuses it). */
  private readonly skipAudit: boolean;

  /**
   * Stores a message from the caller and broadcasts it once the transaction commits. A retried
   * send with the same clientMessageId returns the stored message and writes nothing.
   *
   * The conversation lookup, the insert and its audit entry are one statement; the caller's
   * right to write is then checked on the conversation row that came back, and a refusal throws,
   * which rolls the whole transaction back, so nothing refused is ever committed or broadcast.
   */
  async send(requestedId: string, body: string, clientMessageId?: string): Promise<SendResult> {
    const author = this.authorOf();
    const now = this.clock.now();
    const organizationId = this.context.organizationIdOrThrow();
    const contactId = await this.contactOfConversation(organizationId, requestedId);
    const id = randomUUID();
    const sealedBody = await this.cipher.seal(
      this.transactions.manager,
      { purpose: 'contact', contactId },
      { organizationId, table: 'messages', column: 'body', rowId: id },
      body,
    );
    const audit = this.audit.entry({ organizationId: '', action: 'message.created' });
    const rows: SendRow[] = await this.transactions.manager.query(
      `with c as (
         select id, organization_id, contact_id, assignee_id from conversations where id = $1
       ), m as (
         insert into messages (id, organization_id, conversation_id, author_type, author_id, body, client_message_id, created_at)
         select $12, c.organization_id, c.id, $2, $3, $4, $5, $6 from c where c.contact_id = $13
         on conflict do nothing
         returning id, created_at
       ), a as (
         insert into audit_events
           (organization_id, occurred_at, actor_type, actor_id, action, target_type, target_id, request_id, ip, metadata, elevation_id)
         select c.organization_id, $6, $7, $8, 'message.created', 'message', m.id::text, $9, $10,
                jsonb_build_object('conversationId', c.id), $11::uuid
           from m, c where not $14::boolean
       )
       select c.id as conversation_id, c.organization_id, c.contact_id, c.assignee_id, m.id, m.created_at
         from c left join m on true`,
      [
        requestedId,
        author.type,
        author.id,
        sealedBody,
        clientMessageId ?? null,
        now,
        audit.actorType,
        audit.actorId,
        audit.requestId,
        audit.ip,
        audit.elevationId,
        id,
        contactId,
        this.skipAudit,
      ],
    );
    const row = rows[0];
    // The stored id, not the one asked for: a UUID in upper case names the same row, but the
    // broadcast room and the returned view must carry the canonical spelling.
    const conversation = row
      ? {
          id: row.conversation_id,
          organizationId: row.organization_id,
          contactId: row.contact_id,
          assigneeId: row.assignee_id,
        }
      : undefined;
    this.authorizeOrThrow(conversation);
    const conversationId = (conversation as { id: string }).id;
    if (!row.id) {
      const existing = await this.transactions.manager.findOneByOrFail(MessageEntity, {
        conversationId,
        authorType: author.type,
        authorId: author.id,
        clientMessageId: clientMessageId as string,
      });

      return { message: toMessageView(existing), duplicate: true };
    }
    const message: MessageView = {
      id: row.id,
      conversationId,
      authorType: author.type,
      authorId: author.id,
      body,
      createdAt: new Date(row.created_at as Date).toISOString(),
    };
    if (!this.skipAudit) {
      this.audit.appended(organizationId);
    }
    this.transactions.afterCommit(() => {
      this.metrics.messages.inc({ author_type: author.type });
      this.broadcaster.publish(message);
    });

    return { message, duplicate: false };
  }

  /**
   * One page of a conversation's messages, oldest first. The conversation row and the page come
   * back in one query; the caller's right to read is then checked on that row.
   */
  async list(conversationId: string, limit: number, after?: string): Promise<MessageView[]> {
    const rows: MessagePageRow[] = await this.transactions.manager.query(
      `select c.organization_id, c.contact_id, c.assignee_id,
              m.id, m.author_type, m.author_id, m.body, m.created_at
         from conversations c
         left join lateral (
           select id, author_type, author_id, body, created_at
             from messages
            where organization_id = c.organization_id and conversation_id = c.id
              and ($3::uuid is null or (created_at, id) > (select created_at, id from messages where id = $3::uuid))
            order by created_at, id
            limit $2
         ) m on true
        where c.id = $1`,
      [conversationId, limit, after ?? null],
    );
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

    const views: MessageView[] = [];
    for (const row of rows) {
      if (row.id === null) {
        continue;
      }
      views.push({
        id: row.id,
        // PostgreSQL spells a uuid in lower case; the path may not have.
        conversationId,
        authorType: row.author_type as AuthorType,
        authorId: row.author_id,
        body: await this.cipher.open(
          this.transactions.manager,
          {
            organizationId: conversation.organization_id,
            table: 'messages',
            column: 'body',
            rowId: row.id,
          },
          row.body as string,
        ),
        createdAt: new Date(row.created_at as Date).toISOString(),
      });
    }

    return views;
  }

  /** The contact a conversation is about, or a 404 when the caller's organization has no such conversation. */
  private async contactOfConversation(organizationId: string, conversationId: string) {
    const cacheKey = `${organizationId}|${conversationId.toLowerCase()}`;
    const cached = this.contactOf.get(cacheKey);
    if (cached) {
      return cached;
    }
    const rows: { contact_id: string }[] = await this.transactions.manager.query(
      'select contact_id from conversations where id = $1',
      [conversationId],
    );
    if (!rows[0]) {
      throw new NotFoundProblem('conversation');
    }
    if (this.contactOf.size >= 50_000) {
      this.contactOf.clear();
    }
    this.contactOf.set(cacheKey, rows[0].contact_id);

    return rows[0].contact_id;
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
  private authorizeOrThrow(
    conversation:
      { organizationId: string; contactId: string; assigneeId: string | null } | undefined,
  ): void {
    const actor = this.context.actor;
    const ability = this.abilities.forActor(actor);
    if (!conversation || !ability.can('read', subjectOf('Conversation', conversation))) {
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
