import { CanActivate, ExecutionContext, Injectable } from '@nestjs/common';
import { Reflector } from '@nestjs/core';

import { POLICY_KEY, RoutePolicy } from '@parley/authz';
import { Actor, Clock, Metrics, ProblemException, RequestContext } from '@parley/core';

import { effectiveMemberActor } from './access/effective-role';
import { ApiKeyAuthenticator } from './api-keys/api-key-authenticator';
import { API_KEY_MARK } from './api-keys/api-key-format';
import { AuthErrorCode, AuthProblem } from './auth.errors';
import { REFRESH_COOKIE_ROUTE } from './cookie-mode/cookie-mode.decorator';
import { refreshCookieOf } from './cookie-mode/dashboard-cookies';
import { RefreshCookieAuthenticator } from './cookie-mode/refresh-cookie-authenticator';
import { MFA_ENROLLMENT_ROUTE } from './mfa/mfa-enrollment-route.decorator';
import { MfaErrorCode, MfaProblem } from './mfa/mfa.errors';
import { SessionsService } from './sessions.service';
import { TokenKind, TokenService } from './token.service';

interface HttpRequestLike {
  headers: Record<string, string | string[] | undefined>;
  query?: Record<string, unknown>;
  actor?: Actor;
  ip?: string;
}

export interface SocketAuthState {
  actor?: Actor;
  organizationId?: string;
  expiresAt?: number;
}

const QUERY_TOKEN_KEYS = ['token', 'access_token', 'accessToken', 'api_key', 'apiKey'];

/** A caller that holds a session: members and visitors, never API keys. */
export type SessionActor = Extract<Actor, { sessionId: string }>;

/** True when any query value, under any name, looks like one of our API keys. */
function hasApiKeyInQuery(query: Record<string, unknown>): boolean {
  return Object.values(query)
    .flat()
    .some((value) => typeof value === 'string' && value.startsWith(API_KEY_MARK));
}

/**
 * Resolves the caller of every HTTP request and socket event: verifies the bearer token, then
 * checks that the session it names is still active; a member acts with the higher role of a
 * running elevation while it lasts. Routes marked public need no token; a token sent in the
 * query string is refused everywhere. Routes marked AcceptsRefreshCookie
 * (logout) also take cookie mode's refresh cookie, checked with its CSRF token and Origin.
 * `Authorization: ApiKey <key>` is resolved by ApiKeyAuthenticator, on HTTP only.
 */
@Injectable()
export class AuthenticationGuard implements CanActivate {
  constructor(
    private readonly reflector: Reflector,
    private readonly tokens: TokenService,
    private readonly sessions: SessionsService,
    private readonly context: RequestContext,
    private readonly clock: Clock,
    private readonly metrics: Metrics,
    private readonly apiKeys: ApiKeyAuthenticator,
    private readonly refreshCookies: RefreshCookieAuthenticator,
  ) {}

  async canActivate(context: ExecutionContext): Promise<boolean> {
    try {
      return await this.resolveCaller(context);
    } catch (error) {
      this.metrics.authFailures.inc({
        code: error instanceof ProblemException ? error.code : 'error',
      });
      throw error;
    }
  }

  private async resolveCaller(context: ExecutionContext): Promise<boolean> {
    const policy = this.reflector.getAllAndOverride<RoutePolicy | undefined>(POLICY_KEY, [
      context.getHandler(),
      context.getClass(),
    ]);
    if (context.getType() === 'ws') {
      return this.checkSocket(context.switchToWs().getClient<{ data: SocketAuthState }>().data);
    }
    const request = context.switchToHttp().getRequest<HttpRequestLike>();
    const userAgent = request.headers['user-agent'];
    this.context.setClient(
      request.ip,
      typeof userAgent === 'string' ? userAgent.slice(0, 256) : undefined,
    );
    if (
      request.query &&
      (QUERY_TOKEN_KEYS.some((key) => key in (request.query as object)) ||
        hasApiKeyInQuery(request.query))
    ) {
      throw new AuthProblem(
        AuthErrorCode.TokenInQuery,
        'Credentials are never accepted in the query string.',
        400,
      );
    }
    if (!policy || policy.audience.includes('public')) {
      return true;
    }
    const header = request.headers.authorization;
    if (typeof header === 'string' && /^ApiKey /i.test(header)) {
      const resolved = await this.apiKeys.authenticate(header.slice('ApiKey '.length), policy);
      request.actor = resolved.actor;
      this.context.setOrganization(resolved.organizationId);
      this.context.setActor(resolved.actor);

      return true;
    }
    if (
      header === undefined &&
      refreshCookieOf(request) !== undefined &&
      this.reflector.get<boolean | undefined>(REFRESH_COOKIE_ROUTE, context.getHandler()) === true
    ) {
      const resolved = await this.refreshCookies.authenticate(request);
      request.actor = resolved.actor;
      this.context.setOrganization(resolved.organizationId);
      this.context.setActor(resolved.actor);

      return true;
    }
    const match =
      typeof header === 'string' ? /^Bearer ([A-Za-z0-9_\-.]{20,4096})$/.exec(header) : null;
    if (!match) {
      throw new AuthProblem(
        AuthErrorCode.InvalidToken,
        'Send a valid access token as "Authorization: Bearer <token>".',
      );
    }
    const accepted: TokenKind[] = policy.audience.flatMap((audience) =>
      audience === 'user'
        ? ['access' as const]
        : audience === 'visitor'
          ? ['visitor' as const]
          : [],
    );
    const allowMfaPending =
      this.reflector.get<boolean | undefined>(MFA_ENROLLMENT_ROUTE, context.getHandler()) === true;
    const actor = await this.authenticate(match[1], accepted, { allowMfaPending });
    request.actor = actor.actor;
    this.context.setOrganization(actor.organizationId);
    this.context.setActor(actor.actor);

    return true;
  }

  /** Verifies a token of one of the accepted kinds and the session it names. */
  async authenticate(
    token: string,
    accepted: TokenKind[],
    options: { allowMfaPending?: boolean } = {},
  ): Promise<{ actor: SessionActor; organizationId: string; expiresAt: number }> {
    const kind = this.tokens.kindOf(token);
    if (!kind) {
      throw new AuthProblem(AuthErrorCode.InvalidToken, 'The token is not valid.');
    }
    if (!accepted.includes(kind)) {
      throw new AuthProblem(
        AuthErrorCode.TokenNotAccepted,
        'This kind of token is not accepted here.',
      );
    }
    const claims = await this.tokens.verify(token, kind);
    const session = await this.sessions.findActive(claims.organizationId, claims.sessionId);
    if (!session) {
      throw new AuthProblem(
        AuthErrorCode.SessionEnded,
        'The session of this token has ended; sign in again.',
      );
    }
    if (
      kind === 'access' &&
      session.subjectType === 'user' &&
      session.userId === claims.subject &&
      session.role
    ) {
      // Sockets never allow it: a session waiting for MFA enrollment may only enroll over HTTP.
      if (session.mfaPending && !options.allowMfaPending) {
        throw new MfaProblem(
          MfaErrorCode.EnrollmentRequired,
          'Your organization requires MFA: enroll with POST /api/v1/me/mfa/totp first.',
          403,
        );
      }

      return {
        actor: effectiveMemberActor(claims.subject, session, session.role, this.clock.nowMs()),
        organizationId: claims.organizationId,
        expiresAt: claims.expiresAt,
      };
    }
    if (
      kind === 'visitor' &&
      session.subjectType === 'visitor' &&
      session.contactId === claims.subject
    ) {
      return {
        actor: {
          type: 'visitor',
          id: claims.subject,
          contactId: claims.subject,
          sessionId: session.id,
        },
        organizationId: claims.organizationId,
        expiresAt: claims.expiresAt,
      };
    }
    throw new AuthProblem(AuthErrorCode.InvalidToken, 'The token is not valid.');
  }

  private async checkSocket(state: SocketAuthState | undefined): Promise<boolean> {
    const actor = state?.actor;
    if (!actor || actor.type === 'system' || actor.type === 'apiKey' || !state.organizationId) {
      throw new AuthProblem(AuthErrorCode.InvalidToken, 'This socket is not authenticated.');
    }
    if (state.expiresAt !== undefined && state.expiresAt * 1000 <= this.clock.nowMs()) {
      throw new AuthProblem(AuthErrorCode.TokenExpired, 'The token of this socket has expired.');
    }
    const session = await this.sessions.findActive(state.organizationId, actor.sessionId);
    if (!session) {
      throw new AuthProblem(AuthErrorCode.SessionEnded, 'The session of this socket has ended.');
    }
    if (actor.type === 'user' && session.role) {
      const current = effectiveMemberActor(actor.id, session, session.role, this.clock.nowMs());
      if (current.role !== actor.role || current.elevation?.id !== actor.elevation?.id) {
        state.actor = current;
      }
    }

    return true;
  }
}
