import { randomUUID } from 'node:crypto';

import { HttpStatus, Injectable } from '@nestjs/common';

import { AuditService } from '@parley/audit';
import { Clock, NotFoundProblem, RequestContext } from '@parley/core';
import { FieldCipher } from '@parley/crypto';
import { TenantTransactions } from '@parley/database';
import { OrganizationsService, UsersService } from '@parley/tenancy';

import { SessionsService } from '../sessions.service';

import { RecoveryCodesView, TotpEnrollmentView } from './mfa.dto';
import { MfaErrorCode, MfaProblem } from './mfa.errors';
import { MfaVerificationService } from './mfa-verification.service';
import { RecoveryCodeEntity } from './recovery-code.entity';
import { RECOVERY_CODE_COUNT, createRecoveryCode, recoveryCodeDigest } from './recovery-codes';
import { createTotpSecret, matchTotpStep, totpUri } from './totp';
import { TotpFactorEntity } from './totp-factor.entity';

/** Enrollment, removal and admin reset of a member's TOTP factor and recovery codes. */
@Injectable()
export class MfaService {
  constructor(
    private readonly transactions: TenantTransactions,
    private readonly users: UsersService,
    private readonly organizations: OrganizationsService,
    private readonly sessions: SessionsService,
    private readonly verification: MfaVerificationService,
    private readonly audit: AuditService,
    private readonly clock: Clock,
    private readonly context: RequestContext,
    private readonly cipher: FieldCipher,
  ) {}

  /** Starts (or restarts) enrollment with a new secret; the factor stays pending until confirmed. */
  async startTotpEnrollment(): Promise<TotpEnrollmentView> {
    const { userId, organizationId } = this.currentMember();
    const [user, organization] = await Promise.all([
      this.users.findOrThrow(userId),
      this.organizations.currentOrThrow(),
    ]);
    const secret = createTotpSecret();
    // The secret is sealed bound to its row, so the row's id must be known first: a pending
    // factor keeps its id when enrollment restarts.
    const existing: { id: string; confirmed_at: Date | null }[] =
      await this.transactions.manager.query(
        'select id, confirmed_at from mfa_totp_factors where organization_id = $1 and user_id = $2',
        [organizationId, userId],
      );
    if (existing[0]?.confirmed_at) {
      throw this.alreadyEnrolled();
    }
    const id = existing[0]?.id ?? randomUUID();
    const sealed = await this.cipher.seal(
      this.transactions.manager,
      { purpose: 'organization' },
      { organizationId, table: 'mfa_totp_factors', column: 'secret', rowId: id },
      secret,
    );
    // One statement, so a second start while the first is pending replaces it, never a confirmed
    // one, and never a row whose id the secret was not sealed for.
    const rows: { id: string }[] = await this.transactions.manager.query(
      `insert into mfa_totp_factors (id, organization_id, user_id, secret, created_at)
       values ($5, $1, $2, $3, $4)
       on conflict (organization_id, user_id) do update
         set secret = excluded.secret, created_at = excluded.created_at, last_used_step = null
         where mfa_totp_factors.confirmed_at is null and mfa_totp_factors.id = excluded.id
       returning id`,
      [organizationId, userId, sealed, this.clock.now(), id],
    );
    if (rows.length === 0) {
      throw new MfaProblem(
        MfaErrorCode.EnrollmentNotStarted,
        'The enrollment changed meanwhile; start it again.',
        HttpStatus.CONFLICT,
      );
    }
    await this.audit.record(
      organizationId,
      'mfa.enrollment_started',
      { method: 'totp' },
      { type: 'user', id: userId },
    );

    return { otpauthUri: totpUri(secret, `${organization.slug}:${user.email}`), secret };
  }

  private alreadyEnrolled(): MfaProblem {
    return new MfaProblem(
      MfaErrorCode.AlreadyEnrolled,
      'An authenticator is already enrolled; remove it before enrolling another.',
      HttpStatus.CONFLICT,
    );
  }

  /** Confirms the pending factor with a first code and returns new recovery codes, once. */
  async confirmTotpEnrollment(code: string): Promise<RecoveryCodesView> {
    const { userId, organizationId, sessionId } = this.currentMember();
    const factor = await this.verification.factorWithSecret(userId);
    if (!factor || factor.confirmedAt) {
      throw new MfaProblem(
        factor ? MfaErrorCode.AlreadyEnrolled : MfaErrorCode.EnrollmentNotStarted,
        factor
          ? 'The authenticator is already confirmed.'
          : 'Start enrollment with POST /api/v1/me/mfa/totp first.',
        HttpStatus.CONFLICT,
      );
    }
    const step = await matchTotpStep(factor.secret, code, this.clock.nowSeconds(), null);
    if (step === undefined) {
      throw this.codeRefused();
    }
    const [confirmed]: [{ id: string }[], number] = await this.transactions.manager.query(
      `update mfa_totp_factors set confirmed_at = $2, last_used_step = $3
        where id = $1 and confirmed_at is null and created_at = $4
      returning id`,
      [factor.id, this.clock.now(), step, factor.createdAt],
    );
    if (confirmed.length === 0) {
      throw new MfaProblem(
        MfaErrorCode.EnrollmentNotStarted,
        'The enrollment changed meanwhile; start it again.',
        HttpStatus.CONFLICT,
      );
    }
    const recoveryCodes = await this.replaceRecoveryCodes(organizationId, userId);
    await this.sessions.completeMfaEnrollment(sessionId);
    await this.audit.record(
      organizationId,
      'mfa.enrolled',
      { method: 'totp' },
      { type: 'user', id: userId },
    );

    return { recoveryCodes };
  }

  /** Removes the caller's factor and recovery codes; a current code or a recovery code proves it. */
  async removeTotp(code: string): Promise<void> {
    const { userId, organizationId } = this.currentMember();
    const factor = await this.verification.activeFactor(userId);
    if (!factor) {
      throw new MfaProblem(
        MfaErrorCode.NotEnrolled,
        'No authenticator is enrolled.',
        HttpStatus.CONFLICT,
      );
    }
    // Wrong codes here are not counted towards the lock: the refusal rolls the request's
    // transaction back. The caller already holds a session, and the API rate limit bounds guessing.
    const check = await this.verification.acceptCode(factor, code);
    if (!check.accepted) {
      throw check.lockedUntil
        ? this.verification.lockedProblem(check.lockedUntil)
        : this.codeRefused();
    }
    await this.deleteFactors(userId);
    await this.audit.record(
      organizationId,
      'mfa.removed',
      { method: 'totp' },
      { type: 'user', id: userId },
    );
  }

  /** An admin's reset: the member's factor and codes are deleted and every session of theirs ends. */
  async resetForUser(userId: string): Promise<void> {
    const user = await this.users.findOrThrow(userId);
    const hadFactor = await this.deleteFactors(user.id);
    const ended = await this.sessions.endAllForUser(user.id, 'mfa_reset');
    await this.audit.record(
      user.organizationId,
      'mfa.reset',
      { hadFactor, sessionsEnded: ended.length },
      { type: 'user', id: user.id },
    );
  }

  private currentMember(): { userId: string; organizationId: string; sessionId: string } {
    const actor = this.context.actor;
    if (actor?.type !== 'user') {
      throw new NotFoundProblem('user');
    }

    return {
      userId: actor.id,
      organizationId: this.context.organizationIdOrThrow(),
      sessionId: actor.sessionId,
    };
  }

  private codeRefused(): MfaProblem {
    return new MfaProblem(
      MfaErrorCode.InvalidMfaCode,
      'The code is wrong, expired or already used.',
      HttpStatus.UNPROCESSABLE_ENTITY,
    );
  }

  private async replaceRecoveryCodes(organizationId: string, userId: string): Promise<string[]> {
    const manager = this.transactions.manager;
    const codes = Array.from({ length: RECOVERY_CODE_COUNT }, createRecoveryCode);
    const now = this.clock.now();
    await manager.delete(RecoveryCodeEntity, { userId });
    await manager.insert(
      RecoveryCodeEntity,
      codes.map((code) => ({
        organizationId,
        userId,
        codeHash: recoveryCodeDigest(code),
        createdAt: now,
        usedAt: null,
      })),
    );

    return codes;
  }

  /** Deletes the member's factor and recovery codes; true when there was a factor. */
  private async deleteFactors(userId: string): Promise<boolean> {
    const manager = this.transactions.manager;
    await manager.delete(RecoveryCodeEntity, { userId });
    const deleted = await manager.delete(TotpFactorEntity, { userId });

    return (deleted.affected ?? 0) > 0;
  }
}
