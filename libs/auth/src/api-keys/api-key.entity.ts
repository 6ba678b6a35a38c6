import { Column, Entity, PrimaryGeneratedColumn } from 'typeorm';

import { Classified, ClassifiedTable } from '@parley/core';

/**
 * An API key. The secret itself is never stored: only its SHA-256 digest, and the previous
 * digest while a rotation's overlap lasts. Not @Audited: creation, rotation and revocation are
 * explicit audit events, and the last-use columns change too often to audit.
 */
@ClassifiedTable({
  purpose: 'API keys for integrations, with their scopes and lifetime.',
  retention: 'Until revoked or expired.',
})
@Entity({ name: 'api_keys' })
export class ApiKeyEntity {
  @Classified('internal')
  @PrimaryGeneratedColumn('uuid')
  id: string;

  @Classified('internal')
  @Column({ name: 'organization_id', type: 'uuid' })
  organizationId: string;

  @Classified('internal')
  @Column({ type: 'text' })
  name: string;

  @Classified('internal')
  @Column({ name: 'lookup_prefix', type: 'text' })
  lookupPrefix: string;

  @Classified('restricted', { protection: 'hashed' })
  @Column({ name: 'secret_hash', type: 'bytea', select: false })
  secretHash: Buffer;

  @Classified('restricted', { protection: 'hashed' })
  @Column({ name: 'previous_secret_hash', type: 'bytea', nullable: true, select: false })
  previousSecretHash: Buffer | null;

  @Classified('internal')
  @Column({ name: 'previous_valid_until', type: 'timestamptz', nullable: true })
  previousValidUntil: Date | null;

  @Classified('internal')
  @Column({ type: 'text', array: true })
  scopes: string[];

  @Classified('internal')
  @Column({ name: 'created_by', type: 'uuid', nullable: true })
  createdBy: string | null;

  @Classified('internal')
  @Column({ name: 'created_at', type: 'timestamptz' })
  createdAt: Date;

  @Classified('internal')
  @Column({ name: 'expires_at', type: 'timestamptz' })
  expiresAt: Date;

  @Classified('internal')
  @Column({ name: 'rotated_at', type: 'timestamptz', nullable: true })
  rotatedAt: Date | null;

  @Classified('internal')
  @Column({ name: 'revoked_at', type: 'timestamptz', nullable: true })
  revokedAt: Date | null;

  @Classified('internal')
  @Column({ name: 'last_used_at', type: 'timestamptz', nullable: true })
  lastUsedAt: Date | null;

  @Classified('internal')
  @Column({ name: 'last_used_ip', type: 'text', nullable: true })
  lastUsedIp: string | null;
}
