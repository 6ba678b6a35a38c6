import {
  Column,
  CreateDateColumn,
  Entity,
  PrimaryGeneratedColumn,
  UpdateDateColumn,
} from 'typeorm';

import { Classified, ClassifiedTable } from '@parley/core';

import { Audited } from '@parley/audit';

export const CONVERSATION_STATUSES = ['open', 'pending', 'resolved', 'closed'] as const;
export type ConversationStatus = (typeof CONVERSATION_STATUSES)[number];

@Audited('conversation')
@ClassifiedTable({
  purpose: 'Support conversations between a contact and the team.',
  retention: 'Until the contact is erased.',
})
@Entity({ name: 'conversations' })
export class ConversationEntity {
  @Classified('internal')
  @PrimaryGeneratedColumn('uuid')
  id: string;

  @Classified('internal')
  @Column({ name: 'organization_id', type: 'uuid' })
  organizationId: string;

  @Classified('internal')
  @Column({ name: 'contact_id', type: 'uuid' })
  contactId: string;

  @Classified('confidential', { keyScope: 'contact', subject: 'contactId' })
  @Column({ type: 'text', nullable: true })
  subject: string | null;

  @Classified('internal')
  @Column({ type: 'text' })
  status: ConversationStatus;

  @Classified('internal')
  @Column({ name: 'assignee_id', type: 'uuid', nullable: true })
  assigneeId: string | null;

  @Classified('internal')
  @CreateDateColumn({ name: 'created_at', type: 'timestamptz' })
  createdAt: Date;

  @Classified('internal')
  @UpdateDateColumn({ name: 'updated_at', type: 'timestamptz' })
  updatedAt: Date;

  @Classified('internal')
  @Column({ name: 'last_message_at', type: 'timestamptz', nullable: true })
  lastMessageAt: Date | null;
}
