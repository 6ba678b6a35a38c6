import { Injectable } from '@nestjs/common';
import { EntityManager } from 'typeorm';

import { AuditService } from '@parley/audit';
import { Clock, NotFoundProblem, RequestContext, Role, SessionTerminator } from '@parley/core';
import { FieldCipher, PasswordHasher, PasswordPolicy, passwordContext } from '@parley/crypto';
import { TenantTransactions } from '@parley/database';

import { OrganizationEntity } from './organization.entity';
import { TenancyErrorCode, TenancyProblem, isUniqueViolation } from './tenancy.errors';
import { PASSWORD_MIN_LENGTH, UserView } from './tenancy.dto';
import { UserEntity } from './user.entity';

export function toUserView(user: UserEntity): UserView {
  return {
    id: user.id,
    email: user.email,
    name: user.name,
    role: user.role,
    lastLoginAt: user.lastLoginAt ? user.lastLoginAt.toISOString() : null,
    createdAt: user.createdAt.toISOString(),
  };
}

export interface NewUser {
  email: string;
  name: string;
  role: Role;
  password: string;
}

@Injectable()
export class UsersService {
  constructor(
    private readonly transactions: TenantTransactions,
    private readonly passwords: PasswordHasher,
    private readonly passwordPolicy: PasswordPolicy,
    private readonly context: RequestContext,
    private readonly audit: AuditService,
    private readonly clock: Clock,
    private readonly sessions: SessionTerminator,
    private readonly cipher: FieldCipher,
  ) {}

  private get manager(): EntityManager {
    return this.transactions.manager;
  }

  async create(input: NewUser): Promise<UserEntity> {
    await this.assertPasswordAllowed(input.password, input.email);

    const passwordHash = await this.passwords.hash(input.password);
    const user = this.manager.create(UserEntity, {
      organizationId: this.context.organizationIdOrThrow(),
      email: input.email.toLowerCase(),
      name: input.name,
      role: input.role,
      passwordHash,
      lastLoginAt: null,
    });
    try {
      await this.manager.save(UserEntity, user);
    } catch (error) {
      if (isUniqueViolation(error, 'users_email_per_organization')) {
        throw new TenancyProblem(
          TenancyErrorCode.EmailTaken,
          'A member with this email already exists.',
        );
      }
      throw error;
    }

    return user;
  }

  /**
   * Refuses a new password the organization does not allow: shorter than its passwordMinLength,
   * on the common-password list, or containing the email's name or the organization slug.
   */
  async assertPasswordAllowed(password: string, email: string, field = 'password'): Promise<void> {
    const organization = await this.manager.findOneBy(OrganizationEntity, {
      id: this.context.organizationIdOrThrow(),
    });
    const rules = {
      minLength: organization?.passwordMinLength ?? PASSWORD_MIN_LENGTH,
      context: passwordContext(email, organization?.slug),
    };

    this.passwordPolicy.assertAcceptable(password, rules, field);
  }

  /** Stores a new hash; the caller records the password event, not a generic member change. */
  async updatePasswordHash(id: string, passwordHash: string): Promise<void> {
    await this.manager
      .createQueryBuilder()
      .update(UserEntity)
      .set({ passwordHash })
      .where('id = :id', { id })
      .callListeners(false)
      .execute();
  }

  list(): Promise<UserEntity[]> {
    return this.manager.find(UserEntity, { order: { createdAt: 'ASC', id: 'ASC' } });
  }

  async findOrThrow(id: string): Promise<UserEntity> {
    const user = await this.manager.findOneBy(UserEntity, { id });
    if (!user) {
      throw new NotFoundProblem('user');
    }

    return user;
  }

  /**
   * The member with this email and the password hash, for login only. Emails are sealed, so the
   * lookup goes through their blind index.
   */
  async findWithPasswordHash(email: string): Promise<UserEntity | null> {
    const index = await this.cipher.blindIndex(
      this.manager,
      this.context.organizationIdOrThrow(),
      'email',
      email,
    );

    return this.manager
      .createQueryBuilder(UserEntity, 'user')
      .addSelect('user.passwordHash')
      .where('user.emailIndex = :index', { index })
      .getOne();
  }

  async recordLogin(user: UserEntity): Promise<void> {
    // A login is audited as a login, not as a change to the member.
    await this.manager
      .createQueryBuilder()
      .update(UserEntity)
      .set({ lastLoginAt: this.clock.now() })
      .where('id = :id', { id: user.id })
      .callListeners(false)
      .execute();
  }

  async changeRole(id: string, role: Role): Promise<UserEntity> {
    const user = await this.findOrThrow(id);
    if (user.role === role) {
      return user;
    }
    if (user.role === 'admin') {
      // Locks the admins, so two admins demoting each other at once cannot both see a second one.
      const admins = await this.manager.find(UserEntity, {
        select: { id: true },
        where: { role: 'admin' },
        lock: { mode: 'pessimistic_write' },
      });
      if (admins.length <= 1) {
        throw new TenancyProblem(TenancyErrorCode.LastAdmin, 'The last admin cannot be demoted.');
      }
    }
    const from = user.role;
    user.role = role;
    await this.manager.save(UserEntity, user);
    // A new role starts from a new sign-in: no token issued under the old one stays in use.
    await this.sessions.endAllForUser(user.id, 'role_changed');
    await this.audit.record(
      user.organizationId,
      'user.role_changed',
      { from, to: role },
      { type: 'user', id: user.id },
    );

    return user;
  }
}
