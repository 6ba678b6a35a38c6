import { Column, Entity, PrimaryGeneratedColumn } from 'typeorm';

import { Classified, ClassifiedTable } from '@parley/core';

/** A single-use recovery code, stored only as the SHA-256 digest of its canonical form. */
@ClassifiedTable({
  purpose: 'Single-use recovery codes for a member who lost their second factor.',
  retention: 'Until used or replaced.',
})
@Entity({ name: 'mfa_recovery_codes' })
export class RecoveryCodeEntity {
  @Classified('internal')
  @PrimaryGeneratedColumn('uuid')
  id: string;

  @Classified('internal')
  @Column({ name: 'organization_id', type: 'uuid' })
  organizationId: string;

  @Classified('internal')
  @Column({ name: 'user_id', type: 'uuid' })
  userId: string;

  @Classified('restricted', { protection: 'hashed' })
  @Column({ name: 'code_hash', type: 'bytea' })
  codeHash: Buffer;

  @Classified('internal')
  @Column({ name: 'created_at', type: 'timestamptz' })
  createdAt: Date;

  @Classified('internal')
  @Column({ name: 'used_at', type: 'timestamptz', nullable: true })
  usedAt: Date | null;
}
