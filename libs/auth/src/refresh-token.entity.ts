import { Column, Entity, PrimaryGeneratedColumn } from 'typeorm';

import { Classified, ClassifiedTable } from '@parley/core';

/** A refresh token is stored only as its SHA-256 digest and is consumed by its first use. */
@ClassifiedTable({
  purpose: 'Single-use refresh tokens of a session.',
  retention: 'Until the session ends.',
})
@Entity({ name: 'refresh_tokens' })
export class RefreshTokenEntity {
  @Classified('internal')
  @PrimaryGeneratedColumn('uuid')
  id: string;

  @Classified('internal')
  @Column({ name: 'organization_id', type: 'uuid' })
  organizationId: string;

  @Classified('internal')
  @Column({ name: 'session_id', type: 'uuid' })
  sessionId: string;

  @Classified('restricted', { protection: 'hashed' })
  @Column({ name: 'token_hash', type: 'bytea' })
  tokenHash: Buffer;

  @Classified('internal')
  @Column({ name: 'created_at', type: 'timestamptz' })
  createdAt: Date;

  @Classified('internal')
  @Column({ name: 'expires_at', type: 'timestamptz' })
  expiresAt: Date;

  @Classified('internal')
  @Column({ name: 'consumed_at', type: 'timestamptz', nullable: true })
  consumedAt: Date | null;
}
