import { Injectable } from '@nestjs/common';

import { NotFoundProblem, RequestContext } from '@parley/core';
import { TenantTransactions } from '@parley/database';
import { isUniqueViolation } from '@parley/tenancy';

import { ContactEntity } from './contact.entity';
import { ConversationsErrorCode, ConversationsProblem } from './conversations.errors';
import { CreateContactDto } from './conversations.dto';

@Injectable()
export class ContactsService {
  constructor(
    private readonly transactions: TenantTransactions,
    private readonly context: RequestContext,
  ) {}

  async create(input: CreateContactDto): Promise<ContactEntity> {
    const contact = this.transactions.manager.create(ContactEntity, {
      organizationId: this.context.organizationIdOrThrow(),
      email: input.email,
      name: input.name,
      phone: input.phone ?? null,
    });
    try {
      return await this.transactions.manager.save(ContactEntity, contact);
    } catch (error) {
      if (isUniqueViolation(error, 'contacts_email_per_organization')) {
        throw new ConversationsProblem(
          ConversationsErrorCode.ContactEmailTaken,
          'A contact with this email already exists.',
        );
      }
      throw error;
    }
  }

  /** A contact for a widget visitor, known by nothing but its id until it tells us more. */
  createAnonymous(): Promise<ContactEntity> {
    const contact = this.transactions.manager.create(ContactEntity, {
      organizationId: this.context.organizationIdOrThrow(),
      email: null,
      name: null,
      phone: null,
    });

    return this.transactions.manager.save(ContactEntity, contact);
  }

  async findOrThrow(id: string): Promise<ContactEntity> {
    const contact = await this.transactions.manager.findOneBy(ContactEntity, { id });
    if (!contact) {
      throw new NotFoundProblem('contact');
    }

    return contact;
  }
}
