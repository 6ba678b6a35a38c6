import { Injectable } from '@nestjs/common';

import { AuditService } from '@parley/audit';
import { AbilityFactory, subjectOf } from '@parley/authz';
import { Clock, ForbiddenProblem, RequestContext } from '@parley/core';
import { TenantTransactions } from '@parley/database';

import { ConversationEntity } from './conversation.entity';
import { ConversationsService } from './conversations.service';
import { MessageView } from './conversations.dto';
import { AuthorType, MessageEntity } from './message.entity';
import { MessageBroadcaster } from './message-broadcaster';
import { toMessageView } from './views';

export interface SendResult {
  message: MessageView;
  duplicate: boolean;
}

@Injectable()
export class MessagesService {
  constructor(
    private readonly transactions: TenantTransactions,
    private readonly context: RequestContext,
    private readonly conversations: ConversationsService,
    private readonly abilities: AbilityFactory,
    private readonly audit: AuditService,
    private readonly broadcaster: MessageBroadcaster,
    private readonly clock: Clock,
  ) {}

  /**
   * Stores a message from the caller and broadcasts it once the transaction commits. A retried
   * send with the same clientMessageId returns the stored message and writes nothing.
   */
  async send(conversationId: string, body: string, clientMessageId?: string): Promise<SendResult> {
    const conversation = await this.conversations.findReadableOrThrow(conversationId);
    const author = this.authorOrThrow(conversation);
    const manager = this.transactions.manager;
    const inserted = await manager
      .createQueryBuilder()
      .insert()
      .into(MessageEntity)
      .values({
        organizationId: conversation.organizationId,
        conversationId,
        authorType: author.type,
        authorId: author.id,
        body,
        clientMessageId: clientMessageId ?? null,
        createdAt: this.clock.now(),
      })
      .orIgnore()
      .returning('*')
      .callListeners(false)
      .execute();
    const row = (inserted.raw as Record<string, unknown>[])[0];
    if (!row) {
      const existing = await manager.findOneByOrFail(MessageEntity, {
        conversationId,
        authorType: author.type,
        authorId: author.id,
        clientMessageId: clientMessageId as string,
      });

      return { message: toMessageView(existing), duplicate: true };
    }
    const message = toMessageView(
      manager.create(MessageEntity, {
        id: row.id as string,
        conversationId,
        authorType: author.type,
        authorId: author.id,
        body,
        createdAt: row.created_at as Date,
      }),
    );
    await this.audit.write(manager, {
      organizationId: conversation.organizationId,
      action: 'message.created',
      target: { type: 'message', id: message.id },
      metadata: { conversationId },
    });
    this.transactions.afterCommit(() => this.broadcaster.publish(message));

    return { message, duplicate: false };
  }

  async list(conversationId: string, limit: number, after?: string): Promise<MessageView[]> {
    await this.conversations.findReadableOrThrow(conversationId);
    const builder = this.transactions.manager
      .createQueryBuilder(MessageEntity, 'message')
      .where('message.conversationId = :conversationId', { conversationId })
      .orderBy('message.createdAt', 'ASC')
      .addOrderBy('message.id', 'ASC')
      .limit(limit);
    if (after) {
      builder.andWhere(
        '(message.createdAt, message.id) > (select m.created_at, m.id from messages m where m.id = :after)',
        { after },
      );
    }

    return (await builder.getMany()).map(toMessageView);
  }

  private authorOrThrow(conversation: ConversationEntity): { type: AuthorType; id: string } {
    const actor = this.context.actor;
    const ability = this.abilities.forActor(actor);
    const record = subjectOf('Message', {
      organizationId: conversation.organizationId,
      conversationContactId: conversation.contactId,
      conversationAssigneeId: conversation.assigneeId,
    });
    if (!actor || actor.type === 'system' || !ability.can('create', record)) {
      throw new ForbiddenProblem(
        actor?.type === 'user' && actor.role === 'viewer'
          ? 'Viewers read conversations but never write in them.'
          : 'You may not write in this conversation.',
      );
    }

    return actor.type === 'visitor'
      ? { type: 'contact', id: actor.contactId }
      : { type: 'agent', id: actor.id };
  }
}
