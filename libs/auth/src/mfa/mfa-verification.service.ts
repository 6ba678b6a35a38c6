import { HttpStatus, Injectable } from '@nestjs/common';
import { IsNull } from 'typeorm';

import { AuditService } from '@parley/audit';
import { Clock, Role } from '@parley/core';
import { TenantTransactions } from '@parley/database';
import { OrganizationsService } from '@parley/tenancy';

import { MfaErrorCode, MfaProblem } from './mfa.errors';
import { RecoveryCodeEntity } from './recovery-code.entity';
import { isRecoveryCode, recoveryCodeDigest } from './recovery-codes';
import { isTotpCode, matchTotpStep } from './totp';
import { TotpFactorEntity } from './totp-factor.entity';

/** Wrong codes in a row at login before TOTP locks; each further one doubles the lock. */
export const MFA_FAILURES_BEFORE_LOCK = 5;
const LOCK_BASE_SECONDS = 60;
const LOCK_MAX_SECONDS = 3600;

export interface LoginMember {
  id: string;
  role: Role;
}

export interface LoginMfaOutcome {
  /** The organization requires MFA for the member's role and the member has not enrolled yet. */
  enrollmentPending: boolean;
}

/** What became of a code: used up, refused, or not tried because TOTP is locked until then. */
export type CodeCheck = { accepted: true } | { accepted: false; lockedUntil?: Date };

type LoginCheck =
  | { outcome: 'not_needed' | 'enrollment_pending' | 'code_missing' | 'verified' }
  | { outcome: 'locked'; until: Date }
  | { outcome: 'wrong_code' | 'reused_code'; lock?: { until: Date; failures: number } };

/**
 * Checks second factors: a TOTP code (each time step accepted once) or a single-use recovery
 * code. Wrong codes at login are counted per factor and lock TOTP for a doubling while, since a
 * caller who reaches this step already knows the password. Recovery codes (80 random bits) are
 * still checked during a lock, so the member can get in while someone else is guessing.
 * Every method runs in the caller's tenant transaction, except `verifyAtLogin`, which opens its
 * own so a refused code is counted and audited even though the login then fails.
 */
@Injectable()
export class MfaVerificationService {
  constructor(
    private readonly transactions: TenantTransactions,
    private readonly organizations: OrganizationsService,
    private readonly audit: AuditService,
    private readonly clock: Clock,
  ) {}

  /** The member's TOTP factor, pending or confirmed, with its secret. */
  factorWithSecret(userId: string): Promise<TotpFactorEntity | null> {
    return this.transactions.manager
      .createQueryBuilder(TotpFactorEntity, 'factor')
      .addSelect('factor.secret')
      .where('factor.userId = :userId', { userId })
      .getOne();
  }

  async activeFactor(userId: string): Promise<TotpFactorEntity | null> {
    const factor = await this.factorWithSecret(userId);

    return factor?.confirmedAt ? factor : null;
  }

  /** Accepts a TOTP code or an unused recovery code for a confirmed factor, using it up. */
  async acceptCode(factor: TotpFactorEntity, code: string): Promise<CodeCheck> {
    if (isRecoveryCode(code)) {
      return { accepted: await this.useRecoveryCode(factor, code) };
    }
    const lockedUntil = factor.lockedUntil ? new Date(factor.lockedUntil) : null;
    if (lockedUntil && lockedUntil.getTime() > this.clock.nowMs()) {
      return { accepted: false, lockedUntil };
    }
    const step = await matchTotpStep(
      factor.secret,
      code,
      this.clock.nowSeconds(),
      factor.lastUsedStep,
    );
    if (step === undefined) {
      return { accepted: false };
    }
    // Decided in the database, so two requests racing with one code cannot both pass.
    const [rows]: [{ id: string }[], number] = await this.transactions.manager.query(
      `update mfa_totp_factors
          set last_used_step = $2, failed_attempts = 0, locked_until = null
        where id = $1 and (last_used_step is null or last_used_step < $2)
      returning id`,
      [factor.id, step],
    );

    return { accepted: rows.length > 0 };
  }

  /**
   * Called once the password is proven. Without a factor and without a policy that requires one,
   * nothing more is asked; a member the policy covers who has not enrolled signs in to a session
   * limited to enrollment; a member with a factor must give a code.
   */
  async verifyAtLogin(
    organizationId: string,
    member: LoginMember,
    code: string | undefined,
  ): Promise<LoginMfaOutcome> {
    const check = await this.transactions.run(organizationId, () =>
      this.checkAtLogin(member, code),
    );
    if (check.outcome === 'code_missing') {
      throw new MfaProblem(
        MfaErrorCode.MfaRequired,
        'This account uses multi-factor authentication; send mfaCode with the login.',
        HttpStatus.UNAUTHORIZED,
      );
    }
    if (check.outcome === 'locked') {
      throw this.lockedProblem(check.until);
    }
    if (check.outcome === 'wrong_code' || check.outcome === 'reused_code') {
      await this.auditFailure(organizationId, member, check);
      throw new MfaProblem(
        MfaErrorCode.InvalidMfaCode,
        'The MFA code is wrong, expired or already used.',
        HttpStatus.UNAUTHORIZED,
      );
    }

    return { enrollmentPending: check.outcome === 'enrollment_pending' };
  }

  lockedProblem(until: Date): MfaProblem {
    const seconds = Math.max(1, Math.ceil((until.getTime() - this.clock.nowMs()) / 1000));

    return new MfaProblem(
      MfaErrorCode.MfaLocked,
      `Too many wrong MFA codes; try again in ${seconds} s or use a recovery code.`,
      HttpStatus.TOO_MANY_REQUESTS,
      seconds,
    );
  }

  private async checkAtLogin(member: LoginMember, code: string | undefined): Promise<LoginCheck> {
    const factor = await this.activeFactor(member.id);
    if (!factor) {
      const organization = await this.organizations.currentOrThrow();

      return {
        outcome: organization.mfaRequiredRoles.includes(member.role)
          ? 'enrollment_pending'
          : 'not_needed',
      };
    }
    if (code === undefined || code === '') {
      return { outcome: 'code_missing' };
    }
    const check = await this.acceptCode(factor, code);
    if (check.accepted) {
      return { outcome: 'verified' };
    }
    if (check.lockedUntil) {
      return { outcome: 'locked', until: check.lockedUntil };
    }

    // A valid code refused only because its step was used is a replay worth telling apart.
    const replayed =
      isTotpCode(code) &&
      (await matchTotpStep(factor.secret, code, this.clock.nowSeconds(), null)) !== undefined;

    return {
      outcome: replayed ? 'reused_code' : 'wrong_code',
      lock: await this.countFailure(factor),
    };
  }

  /** Counts one more wrong code; from the threshold on, locks TOTP for a doubling while. */
  private async countFailure(
    factor: TotpFactorEntity,
  ): Promise<{ until: Date; failures: number } | undefined> {
    const manager = this.transactions.manager;
    const [rows]: [{ failed_attempts: number }[], number] = await manager.query(
      `update mfa_totp_factors set failed_attempts = failed_attempts + 1
        where id = $1
      returning failed_attempts`,
      [factor.id],
    );
    const failures = rows[0]?.failed_attempts ?? 0;
    if (failures < MFA_FAILURES_BEFORE_LOCK) {
      return undefined;
    }
    const seconds = Math.min(
      LOCK_BASE_SECONDS * 2 ** (failures - MFA_FAILURES_BEFORE_LOCK),
      LOCK_MAX_SECONDS,
    );
    const until = new Date(this.clock.nowMs() + seconds * 1000);
    await manager.query('update mfa_totp_factors set locked_until = $2 where id = $1', [
      factor.id,
      until,
    ]);

    return { until, failures };
  }

  private async auditFailure(
    organizationId: string,
    member: LoginMember,
    check: { outcome: 'wrong_code' | 'reused_code'; lock?: { until: Date; failures: number } },
  ): Promise<void> {
    const target = { type: 'user', id: member.id };
    await this.audit.record(
      organizationId,
      'auth.mfa_failed',
      { reason: check.outcome },
      target,
      null,
    );
    if (check.lock) {
      await this.audit.record(
        organizationId,
        'auth.mfa_locked',
        { until: check.lock.until.toISOString(), consecutiveFailures: check.lock.failures },
        target,
        null,
      );
    }
  }

  private async useRecoveryCode(factor: TotpFactorEntity, code: string): Promise<boolean> {
    const manager = this.transactions.manager;
    const [rows]: [{ id: string }[], number] = await manager.query(
      `update mfa_recovery_codes set used_at = $3
        where user_id = $1 and code_hash = $2 and used_at is null
      returning id`,
      [factor.userId, recoveryCodeDigest(code), this.clock.now()],
    );
    if (rows.length === 0) {
      return false;
    }
    await manager.query(
      'update mfa_totp_factors set failed_attempts = 0, locked_until = null where id = $1',
      [factor.id],
    );
    const remaining = await manager.countBy(RecoveryCodeEntity, {
      userId: factor.userId,
      usedAt: IsNull(),
    });
    await this.audit.record(
      factor.organizationId,
      'mfa.recovery_code_used',
      { remaining },
      { type: 'user', id: factor.userId },
    );

    return true;
  }
}
