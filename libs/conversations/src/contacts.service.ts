import { Injectable } from '@nestjs/common';

import { AuditService } from '@parley/audit';
import { NotFoundProblem, RequestContext } from '@parley/core';
import { DataKeys } from '@parley/crypto';
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
    private readonly keys: DataKeys,
    private readonly audit: AuditService,
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

  /** Crypto-shreds the contact's key, then deletes the contact and everything that is theirs. */
  async erase(id: string): Promise<void> {
    const contact = await this.findOrThrow(id);
    const organizationId = this.context.organizationIdOrThrow();
    const manager = this.transactions.manager;
    const destroyed = await this.keys.destroy(manager, organizationId, 'contact', contact.id);
    await manager.query('delete from contacts where id = $1', [contact.id]);
    await this.audit.record(
      organizationId,
      'contact.erased',
      { keyDestroyed: destroyed },
      { type: 'contact', id: contact.id },
    );
  }
}
