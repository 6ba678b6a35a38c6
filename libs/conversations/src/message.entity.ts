import { Column, Entity, PrimaryGeneratedColumn } from 'typeorm';

import { Classified, ClassifiedTable } from '@parley/core';

import { Audited } from '@parley/audit';

export type AuthorType = 'contact' | 'agent' | 'assistant';

@Audited('message')
@ClassifiedTable({
  purpose: 'What the contact, the team and the assistant wrote in a conversation.',
  retention: 'Until the contact is erased.',
})
@Entity({ name: 'messages' })
export class MessageEntity {
  @Classified('internal')
  @PrimaryGeneratedColumn('uuid')
  id: string;

  @Classified('internal')
  @Column({ name: 'organization_id', type: 'uuid' })
  organizationId: string;

  @Classified('internal')
  @Column({ name: 'conversation_id', type: 'uuid' })
  conversationId: string;

  @Classified('internal')
  @Column({ name: 'author_type', type: 'text' })
  authorType: AuthorType;

  @Classified('internal')
  @Column({ name: 'author_id', type: 'uuid', nullable: true })
  authorId: string | null;

  // Sealed under the conversation's contact's key by MessagesService, which knows the contact.
  @Classified('confidential', { keyScope: 'contact' })
  @Column({ type: 'text' })
  body: string;

  @Classified('internal')
  @Column({ name: 'client_message_id', type: 'text', nullable: true })
  clientMessageId: string | null;

  @Classified('internal')
  @Column({ name: 'created_at', type: 'timestamptz' })
  createdAt: Date;
}
