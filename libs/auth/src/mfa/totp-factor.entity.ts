import { Column, Entity, PrimaryGeneratedColumn } from 'typeorm';

/** A bigint column read back as a number; TOTP time steps stay far below 2^53. */
const bigintAsNumber = {
  to: (value: number | null) => value,
  from: (value: string | null) => (value === null ? null : Number(value)),
};

/**
 * A member's TOTP factor: pending from enrollment until a first code confirms it. One per member.
 * Not @Audited: the MFA service records explicit events, and no change entry names the secret.
 */
@Entity({ name: 'mfa_totp_factors' })
export class TotpFactorEntity {
  @PrimaryGeneratedColumn('uuid')
  id: string;

  @Column({ name: 'organization_id', type: 'uuid' })
  organizationId: string;

  @Column({ name: 'user_id', type: 'uuid' })
  userId: string;

  // Restricted: sealed by the data-protection work (issue 4)
  @Column({ type: 'text', select: false })
  secret: string;

  @Column({ name: 'confirmed_at', type: 'timestamptz', nullable: true })
  confirmedAt: Date | null;

  /** The last time step a code was accepted for; codes of this step or earlier are refused. */
  @Column({ name: 'last_used_step', type: 'bigint', nullable: true, transformer: bigintAsNumber })
  lastUsedStep: number | null;

  /** Wrong codes at login since the last right one; enough of them lock TOTP for a while. */
  @Column({ name: 'failed_attempts', type: 'integer', default: 0 })
  failedAttempts: number;

  @Column({ name: 'locked_until', type: 'timestamptz', nullable: true })
  lockedUntil: Date | null;

  @Column({ name: 'created_at', type: 'timestamptz' })
  createdAt: Date;
}
