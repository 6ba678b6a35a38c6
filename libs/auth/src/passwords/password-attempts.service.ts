import { Injectable } from '@nestjs/common';

import { AuditService, AuditTarget } from '@parley/audit';
import { Metrics, ProblemException, RequestContext } from '@parley/core';
import { PasswordHasher, describeArgon2Parameters } from '@parley/crypto';
import { TenantTransactions } from '@parley/database';
import { LoginAttempt, LoginThrottle } from '@parley/security';
import { UserEntity, UsersService } from '@parley/tenancy';

export interface PasswordAttempt {
  organizationId: string;
  /** The email as typed (lower-cased), whether or not a member has it. */
  email: string;
  /** The member the email names, loaded with its password hash; null when none does. */
  user: UserEntity | null;
  password: string;
}

/**
 * Every password check of a sign-in or a password change goes through here, so each one is
 * counted against the account and the client address, refused while either is locked, and
 * spends the same argon2 work whether the account exists, the password is wrong, or it is
 * locked. Locks and their expiry are audited; an admin can unlock a member.
 */
@Injectable()
export class PasswordAttempts {
  constructor(
    private readonly throttle: LoginThrottle,
    private readonly passwords: PasswordHasher,
    private readonly users: UsersService,
    private readonly transactions: TenantTransactions,
    private readonly audit: AuditService,
    private readonly context: RequestContext,
    private readonly metrics: Metrics,
  ) {}

  /** A sign-in to an organization that does not exist: counted against the address only. */
  async refuseUnknownOrganization(password: string): Promise<void> {
    const attempt: LoginAttempt = { email: '', address: this.context.ip };
    const admission = await this.throttle.admit(attempt);
    await this.passwords.verifyAgainstNothing(password);
    if (!admission.admitted) {
      throw this.refused(admission.refusal);
    }

    await this.throttle.recordFailure(attempt);
  }

  /**
   * True when the password is the member's. Throws 429 (account_locked, too_many_attempts)
   * while the account or the address is locked, even for the right password. With
   * `rehashOutdated`, a right password whose hash has older argon2 parameters is hashed again.
   */
  async verify(
    input: PasswordAttempt,
    options: { rehashOutdated?: boolean } = {},
  ): Promise<boolean> {
    const { organizationId, user } = input;
    const attempt: LoginAttempt = {
      organizationId,
      userId: user?.id,
      email: input.email,
      address: this.context.ip,
    };
    const target: AuditTarget | undefined = user ? { type: 'user', id: user.id } : undefined;

    const admission = await this.throttle.admit(attempt);
    if (admission.lockExpired) {
      await this.audit.record(
        organizationId,
        'auth.account_unlocked',
        { reason: 'expired', wasLocked: true },
        target,
        null,
      );
    }
    if (!admission.admitted) {
      await this.passwords.verifyAgainstNothing(input.password);
      throw this.refused(admission.refusal);
    }

    const valid = user
      ? await this.passwords.verify(user.passwordHash, input.password)
      : await this.passwords.verifyAgainstNothing(input.password);
    if (!valid || !user) {
      const outcome = await this.throttle.recordFailure(attempt);
      if (outcome.lock) {
        await this.audit.record(
          organizationId,
          'auth.account_locked',
          {
            until: outcome.lock.until === null ? null : new Date(outcome.lock.until).toISOString(),
            lockSeconds: outcome.lock.seconds,
            consecutiveFailures: outcome.lock.consecutiveFailures,
          },
          target,
          null,
        );
      }

      return false;
    }

    await this.throttle.recordSuccess({ ...attempt, organizationId });
    if (options.rehashOutdated) {
      await this.rehashIfOutdated(user, input.password);
    }

    return true;
  }

  /** An admin's unlock of a member of the current organization; audited even when not locked. */
  async unlock(userId: string): Promise<void> {
    const organizationId = this.context.organizationIdOrThrow();
    const user = await this.users.findOrThrow(userId);
    const { wasLocked } = await this.throttle.unlockMember(organizationId, user.id);

    await this.audit.record(
      organizationId,
      'auth.account_unlocked',
      { reason: 'admin', wasLocked },
      { type: 'user', id: user.id },
    );
  }

  /** After a right password: stores a hash under ARGON2_PARAMETERS when the stored one differs. */
  private async rehashIfOutdated(user: UserEntity, password: string): Promise<void> {
    if (!this.passwords.needsRehash(user.passwordHash)) {
      return;
    }
    const from = describeArgon2Parameters(user.passwordHash);
    const passwordHash = await this.passwords.hash(password);

    await this.transactions.run(user.organizationId, async () => {
      await this.users.updatePasswordHash(user.id, passwordHash);
      await this.audit.record(
        user.organizationId,
        'auth.password_rehashed',
        { from, to: describeArgon2Parameters(passwordHash) },
        { type: 'user', id: user.id },
        { type: 'user', id: user.id, role: user.role, sessionId: '' },
      );
    });
    user.passwordHash = passwordHash;
  }

  private refused(refusal: ProblemException): ProblemException {
    this.metrics.authFailures.inc({ code: refusal.code });

    return refusal;
  }
}
