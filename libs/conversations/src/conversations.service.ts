import { Injectable } from '@nestjs/common';

import { AbilityFactory, subjectOf } from '@parley/authz';
import { ForbiddenProblem, NotFoundProblem, RequestContext } from '@parley/core';
import { TenantTransactions } from '@parley/database';
import { UsersService } from '@parley/tenancy';

import { ContactsService } from './contacts.service';
import { ConversationEntity } from './conversation.entity';
import { ConversationsErrorCode, ConversationsProblem } from './conversations.errors';
import { ListConversationsQuery, UpdateConversationDto } from './conversations.dto';

@Injectable()
export class ConversationsService {
  constructor(
    private readonly transactions: TenantTransactions,
    private readonly context: RequestContext,
    private readonly contacts: ContactsService,
    private readonly users: UsersService,
    private readonly abilities: AbilityFactory,
  ) {}

  async open(contactId: string, subject: string | undefined): Promise<ConversationEntity> {
    await this.contacts.findOrThrow(contactId);
    const conversation = this.transactions.manager.create(ConversationEntity, {
      organizationId: this.context.organizationIdOrThrow(),
      contactId,
      subject: subject ?? null,
      status: 'open',
      assigneeId: null,
      lastMessageAt: null,
    });

    return this.transactions.manager.save(ConversationEntity, conversation);
  }

  list(query: ListConversationsQuery): Promise<ConversationEntity[]> {
    return this.transactions.manager.find(ConversationEntity, {
      where: query.status ? { status: query.status } : {},
      order: { createdAt: 'DESC', id: 'DESC' },
      take: query.limit ?? 50,
    });
  }

  /** The conversation if the caller may read it; 404 otherwise, so ids reveal nothing. */
  async findReadableOrThrow(id: string): Promise<ConversationEntity> {
    const conversation = await this.transactions.manager.findOneBy(ConversationEntity, { id });
    const ability = this.abilities.forActor(this.context.actor);
    if (!conversation || !ability.can('read', subjectOf('Conversation', conversation))) {
      throw new NotFoundProblem('conversation');
    }

    return conversation;
  }

  async update(id: string, changes: UpdateConversationDto): Promise<ConversationEntity> {
    const conversation = await this.findReadableOrThrow(id);
    const actor = this.context.actor;
    const ability = this.abilities.forActor(actor);
    if (!ability.can('update', subjectOf('Conversation', conversation))) {
      throw new ForbiddenProblem('Agents change only conversations assigned to them or to nobody.');
    }
    if (changes.assigneeId !== undefined && changes.assigneeId !== conversation.assigneeId) {
      let assigneeRole: string | undefined;
      if (changes.assigneeId !== null) {
        const assignee = await this.users.findOrThrow(changes.assigneeId).catch(() => {
          throw new ConversationsProblem(
            ConversationsErrorCode.AssigneeNotMember,
            'The assignee is not a member of this organization.',
            422,
          );
        });
        assigneeRole = assignee.role;
      }
      const target = { ...conversation, assigneeId: changes.assigneeId };
      if (!ability.can('update', subjectOf('Conversation', target))) {
        throw new ConversationsProblem(
          ConversationsErrorCode.AssignOthersForbidden,
          'Agents assign conversations only to themselves.',
          403,
        );
      }
      // A viewer never writes: assigned, the conversation would have no agent able to answer.
      if (assigneeRole === 'viewer') {
        throw new ConversationsProblem(
          ConversationsErrorCode.AssigneeCannotAnswer,
          'A viewer cannot be assigned a conversation: viewers never write in one.',
          422,
        );
      }
      conversation.assigneeId = changes.assigneeId;
    }
    if (changes.status !== undefined) {
      conversation.status = changes.status;
    }

    return this.transactions.manager.save(ConversationEntity, conversation);
  }
}
