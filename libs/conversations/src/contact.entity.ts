import {
  Column,
  CreateDateColumn,
  Entity,
  PrimaryGeneratedColumn,
  UpdateDateColumn,
} from 'typeorm';

import { Classified, ClassifiedTable } from '@parley/core';

import { Audited } from '@parley/audit';

@Audited('contact')
@ClassifiedTable({
  purpose: 'The customers who contact support.',
  retention: 'Until the contact is erased.',
})
@Entity({ name: 'contacts' })
export class ContactEntity {
  @Classified('internal')
  @PrimaryGeneratedColumn('uuid')
  id: string;

  @Classified('internal')
  @Column({ name: 'organization_id', type: 'uuid' })
  organizationId: string;

  @Classified('confidential', { keyScope: 'contact', subject: 'id', blindIndex: 'emailIndex' })
  @Column({ type: 'text', nullable: true })
  email: string | null;

  @Classified('confidential', {
    protection: 'blind-index',
    purpose: 'Find a contact by email, and keep emails unique, without storing them in clear.',
  })
  @Column({ name: 'email_index', type: 'bytea', nullable: true })
  emailIndex: Buffer | null;

  @Classified('confidential', { keyScope: 'contact', subject: 'id' })
  @Column({ type: 'text', nullable: true })
  name: string | null;

  @Classified('confidential', { keyScope: 'contact', subject: 'id' })
  @Column({ type: 'text', nullable: true })
  phone: string | null;

  @Classified('internal')
  @CreateDateColumn({ name: 'created_at', type: 'timestamptz' })
  createdAt: Date;

  @Classified('internal')
  @UpdateDateColumn({ name: 'updated_at', type: 'timestamptz' })
  updatedAt: Date;
}
