import { Injectable } from '@nestjs/common';

import { AuditService } from '@parley/audit';
import { ProblemException, RequestContext } from '@parley/core';
import { PasswordHasher } from '@parley/crypto';
import { CommittedRefusal } from '@parley/database';
import { UserEntity, UsersService } from '@parley/tenancy';

import { SessionsService } from '../sessions.service';

import { PasswordAttempts } from './password-attempts.service';
import { PasswordChangeErrorCode, PasswordChangeProblem } from './passwords.errors';
import { ChangePasswordDto } from './passwords.dto';

/**
 * A member changes their own password: the current one is checked like a sign-in (a wrong one
 * counts against the account), the new one meets the organization's policy, and every other
 * session of the member ends. Runs in the request's tenant transaction.
 */
@Injectable()
export class PasswordChangeService {
  constructor(
    private readonly attempts: PasswordAttempts,
    private readonly users: UsersService,
    private readonly passwords: PasswordHasher,
    private readonly sessions: SessionsService,
    private readonly audit: AuditService,
    private readonly context: RequestContext,
  ) {}

  async change(input: ChangePasswordDto): Promise<void> {
    const actor = this.context.actor;
    if (actor?.type !== 'user' || !actor.sessionId) {
      throw new PasswordChangeProblem(
        PasswordChangeErrorCode.NotAMember,
        'Only a signed-in member can change their password, not an API key.',
      );
    }
    const organizationId = this.context.organizationIdOrThrow();
    const member = await this.users.findOrThrow(actor.id);
    const user = await this.users.findWithPasswordHash(member.email);

    const valid = await this.verifyCurrent(organizationId, member.email, user, input);
    if (!valid || !user) {
      await this.audit.record(
        organizationId,
        'auth.password_change_failed',
        { reason: 'wrong_password' },
        { type: 'user', id: member.id },
      );
      // The failed attempt and its audit entry must outlive this refusal.
      throw new CommittedRefusal(
        new PasswordChangeProblem(
          PasswordChangeErrorCode.InvalidCurrentPassword,
          'The current password is wrong.',
        ),
      );
    }

    await this.users.assertPasswordAllowed(input.newPassword, user.email, 'newPassword');
    const passwordHash = await this.passwords.hash(input.newPassword);
    await this.users.updatePasswordHash(user.id, passwordHash);

    const ended = await this.sessions.endAllForUser(user.id, 'password_changed', actor.sessionId);
    await this.audit.record(
      organizationId,
      'auth.password_changed',
      { sessionsEnded: ended.length },
      { type: 'user', id: user.id },
    );
  }

  private async verifyCurrent(
    organizationId: string,
    email: string,
    user: UserEntity | null,
    input: ChangePasswordDto,
  ): Promise<boolean> {
    try {
      return await this.attempts.verify({
        organizationId,
        email,
        user,
        password: input.currentPassword,
      });
    } catch (error) {
      // A lock refusal keeps what the check wrote (an expired lock's audit entry, say).
      throw error instanceof ProblemException ? new CommittedRefusal(error) : error;
    }
  }
}
