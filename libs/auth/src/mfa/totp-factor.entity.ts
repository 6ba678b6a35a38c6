import { Column, Entity, PrimaryGeneratedColumn } from 'typeorm';

import { Classified, ClassifiedTable } from '@parley/core';

/** A bigint column read back as a number; TOTP time steps stay far below 2^53. */
const bigintAsNumber = {
  to: (value: number | null) => value,
  from: (value: string | null) => (value === null ? null : Number(value)),
};

/**
 * A member's TOTP factor: pending from enrollment until a first code confirms it. One per member.
 * Not @Audited: the MFA service records explicit events, and no change entry names the secret.
 */
@ClassifiedTable({
  purpose: "A member's second factor (TOTP).",
  retention: 'Until the member removes or resets the factor.',
})
@Entity({ name: 'mfa_totp_factors' })
export class TotpFactorEntity {
  @Classified('internal')
  @PrimaryGeneratedColumn('uuid')
  id: string;

  @Classified('internal')
  @Column({ name: 'organization_id', type: 'uuid' })
  organizationId: string;

  @Classified('internal')
  @Column({ name: 'user_id', type: 'uuid' })
  userId: string;

  // Restricted: sealed by the data-protection work (issue 4)
  @Classified('restricted')
  @Column({ type: 'text', select: false })
  secret: string;

  @Classified('internal')
  @Column({ name: 'confirmed_at', type: 'timestamptz', nullable: true })
  confirmedAt: Date | null;

  /** The last time step a code was accepted for; codes of this step or earlier are refused. */
  @Classified('internal')
  @Column({ name: 'last_used_step', type: 'bigint', nullable: true, transformer: bigintAsNumber })
  lastUsedStep: number | null;

  /** Wrong codes at login since the last right one; enough of them lock TOTP for a while. */
  @Classified('internal')
  @Column({ name: 'failed_attempts', type: 'integer', default: 0 })
  failedAttempts: number;

  @Classified('internal')
  @Column({ name: 'locked_until', type: 'timestamptz', nullable: true })
  lockedUntil: Date | null;

  @Classified('internal')
  @Column({ name: 'created_at', type: 'timestamptz' })
  createdAt: Date;
}
