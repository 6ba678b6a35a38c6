import { Column, Entity, PrimaryGeneratedColumn } from 'typeorm';

import { Audited } from '@parley/audit';

export type AuthorType = 'contact' | 'agent' | 'assistant';

@Audited('message')
@Entity({ name: 'messages' })
export class MessageEntity {
  @PrimaryGeneratedColumn('uuid')
  id: string;

  @Column({ name: 'organization_id', type: 'uuid' })
  organizationId: string;

  @Column({ name: 'conversation_id', type: 'uuid' })
  conversationId: string;

  @Column({ name: 'author_type', type: 'text' })
  authorType: AuthorType;

  @Column({ name: 'author_id', type: 'uuid', nullable: true })
  authorId: string | null;

  // Known shortcoming: the body is Confidential yet stored in clear until issue 4 seals it.
  @Column({ type: 'text' })
  body: string;

  @Column({ name: 'client_message_id', type: 'text', nullable: true })
  clientMessageId: string | null;

  @Column({ name: 'created_at', type: 'timestamptz' })
  createdAt: Date;
}
