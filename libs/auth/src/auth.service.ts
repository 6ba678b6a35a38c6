import { Inject, Injectable, Logger } from '@nestjs/common';
import { DataSource } from 'typeorm';

import { AuditService } from '@parley/audit';
import { APP_CONFIG, AppConfig, Clock, RequestContext } from '@parley/core';
import { randomToken, tokenDigest } from '@parley/crypto';
import { TenantTransactions } from '@parley/database';
import { BlockedAddresses } from '@parley/security';
import { OrganizationsService, UserEntity, UsersService } from '@parley/tenancy';

import { AuthErrorCode, AuthProblem } from './auth.errors';
import { LoginDto, SignupDto, SignupView, TokenPairView } from './auth.dto';
import { MfaVerificationService } from './mfa/mfa-verification.service';
import { PasswordAttempts } from './passwords/password-attempts.service';
import { RefreshTokenEntity } from './refresh-token.entity';
import { SessionsService } from './sessions.service';
import { TokenService } from './token.service';

const REFRESH_TOKEN_PREFIX = 'prt_';

@Injectable()
export class AuthService {
  private readonly logger = new Logger(AuthService.name);

  constructor(
    @Inject(APP_CONFIG) private readonly config: AppConfig,
    private readonly dataSource: DataSource,
    private readonly transactions: TenantTransactions,
    private readonly organizations: OrganizationsService,
    private readonly users: UsersService,
    private readonly sessions: SessionsService,
    private readonly tokens: TokenService,
    private readonly audit: AuditService,
    private readonly passwordAttempts: PasswordAttempts,
    private readonly context: RequestContext,
    private readonly clock: Clock,
    private readonly mfa: MfaVerificationService,
    private readonly blocked: BlockedAddresses,
  ) {}

  async signup(input: SignupDto): Promise<SignupView> {
    if (!this.config.signupEnabled) {
      throw new AuthProblem(
        AuthErrorCode.SignupDisabled,
        'Sign-up is disabled on this server.',
        403,
      );
    }

    return this.organizations.create(
      { slug: input.organizationSlug, name: input.organizationName },
      async (organization) => {
        const user = await this.users.create({
          email: input.email,
          name: input.name,
          role: 'admin',
          password: input.password,
        });
        this.context.setActor({ type: 'user', id: user.id, role: 'admin', sessionId: '' });
        await this.audit.record(
          organization.id,
          'auth.signup',
          { role: 'admin' },
          { type: 'user', id: user.id },
        );
        const pair = await this.startSession(user);

        return {
          organization: { id: organization.id, slug: organization.slug },
          user: { id: user.id, email: user.email, role: user.role },
          ...pair,
        };
      },
    );
  }

  /** The same refusal, after the same argon2 work, for an unknown organization, account or password. */
  async login(input: LoginDto): Promise<TokenPairView> {
    const refusal = new AuthProblem(
      AuthErrorCode.InvalidCredentials,
      'The organization, email or password is wrong.',
    );
    const organizationId = await this.organizations.idBySlug(input.organizationSlug);
    if (!organizationId) {
      await this.passwordAttempts.refuseUnknownOrganization(input.password);
      throw refusal;
    }
    await this.blocked.refuse(organizationId, this.context.ip);
    const user = await this.transactions.run(organizationId, () =>
      this.users.findWithPasswordHash(input.email),
    );
    // Counted per account and address; 429 while either is locked, even for the right password.
    const valid = await this.passwordAttempts.verify(
      { organizationId, email: input.email, user, password: input.password },
      { rehashOutdated: true },
    );
    if (!user || !valid) {
      await this.audit.record(
        organizationId,
        'auth.login_failed',
        { reason: user ? 'wrong_password' : 'unknown_account' },
        user ? { type: 'user', id: user.id } : undefined,
        null,
      );
      throw refusal;
    }

    // Asked only once the password is proven, so a guesser learns nothing from it.
    const mfa = await this.mfa.verifyAtLogin(organizationId, user, input.mfaCode);

    return this.transactions.run(organizationId, async () => {
      this.context.setActor({ type: 'user', id: user.id, role: user.role, sessionId: '' });
      const pair = await this.startSession(user, mfa.enrollmentPending);
      // Last, so the member's row is locked only for the commit: concurrent sign-ins of one
      // member (several devices, a script) waited for each other's whole session setup.
      await this.users.recordLogin(user);

      return pair;
    });
  }

  /** Consumes a refresh token atomically; a token presented twice ends its whole session. */
  async refresh(refreshToken: string): Promise<TokenPairView> {
    const refusal = new AuthProblem(
      AuthErrorCode.InvalidRefreshToken,
      'The refresh token is not valid.',
    );
    if (!refreshToken.startsWith(REFRESH_TOKEN_PREFIX)) {
      throw refusal;
    }
    const digest = tokenDigest(refreshToken);
    const rows: { id: string | null }[] = await this.dataSource.query(
      'select parley_organization_by_refresh_token($1) as id',
      [digest],
    );
    const organizationId = rows[0]?.id;
    if (!organizationId) {
      throw refusal;
    }
    await this.blocked.refuse(organizationId, this.context.ip);
    const outcome = await this.transactions.run(organizationId, async (manager) => {
      const now = this.clock.now();
      // TypeORM 1 answers a raw UPDATE with [rows, affected count], not with the rows alone.
      const [consumed]: [{ session_id: string }[], number] = await manager.query(
        `update refresh_tokens set consumed_at = $2
          where token_hash = $1 and consumed_at is null and expires_at > $2
        returning session_id`,
        [digest, now],
      );
      if (consumed.length === 0) {
        const [token] = await manager.query(
          `select session_id, consumed_at from refresh_tokens where token_hash = $1`,
          [digest],
        );
        if (token?.consumed_at) {
          await this.sessions.end(token.session_id, 'refresh_token_reused');
          await this.audit.record(
            organizationId,
            'auth.refresh_token_reused',
            { sessionId: token.session_id },
            { type: 'session', id: token.session_id },
            null,
          );

          return { reused: true as const };
        }

        return { invalid: true as const };
      }
      const session = await this.sessions.findActive(organizationId, consumed[0].session_id);
      if (!session || !session.userId) {
        return { invalid: true as const };
      }
      this.context.setActor({
        type: 'user',
        id: session.userId,
        role: session.role ?? 'viewer',
        sessionId: session.id,
      });
      await this.audit.record(
        organizationId,
        'auth.token_refreshed',
        { sessionId: session.id },
        { type: 'session', id: session.id },
      );

      return {
        pair: await this.issuePair(organizationId, session.userId, session.id, session.expiresAt),
      };
    });
    if ('reused' in outcome) {
      this.logger.warn({ organizationId }, 'refresh token reused; session ended');
      throw new AuthProblem(
        AuthErrorCode.RefreshTokenReused,
        'This refresh token was already used; the session has been ended.',
      );
    }
    if ('invalid' in outcome) {
      throw refusal;
    }

    return outcome.pair;
  }

  async logout(organizationId: string, sessionId: string): Promise<void> {
    await this.transactions.run(organizationId, async () => {
      await this.sessions.end(sessionId, 'logout');
      await this.audit.record(
        organizationId,
        'auth.logout',
        { sessionId },
        { type: 'session', id: sessionId },
      );
    });
  }

  private async startSession(user: UserEntity, mfaPending = false): Promise<TokenPairView> {
    // The organization's policy sets how long a login lasts, refreshes included.
    const organization = await this.organizations.currentOrThrow();
    const session = await this.sessions.start(
      { userId: user.id, mfaPending },
      organization.sessionAbsoluteHours * 3600,
    );
    this.context.setActor({ type: 'user', id: user.id, role: user.role, sessionId: session.id });
    await this.audit.record(
      user.organizationId,
      'auth.login_succeeded',
      { sessionId: session.id },
      { type: 'user', id: user.id },
    );

    return this.issuePair(user.organizationId, user.id, session.id, session.expiresAt.getTime());
  }

  private async issuePair(
    organizationId: string,
    userId: string,
    sessionId: string,
    sessionExpiresAt: number,
  ): Promise<TokenPairView> {
    const refreshToken = randomToken(32, REFRESH_TOKEN_PREFIX);
    await this.transactions.manager.insert(RefreshTokenEntity, {
      organizationId,
      sessionId,
      tokenHash: tokenDigest(refreshToken),
      createdAt: this.clock.now(),
      expiresAt: new Date(sessionExpiresAt),
      consumedAt: null,
    });
    const accessToken = await this.tokens.signAccess({ userId, organizationId, sessionId });

    return {
      accessToken,
      refreshToken,
      tokenType: 'Bearer',
      expiresIn: this.tokens.accessTokenTtl,
    };
  }
}
