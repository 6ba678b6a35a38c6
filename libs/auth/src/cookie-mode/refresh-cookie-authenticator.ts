import { HttpStatus, Inject, Injectable, Logger } from '@nestjs/common';

import { APP_CONFIG, Actor, AppConfig, CommonErrorCode, ProblemException } from '@parley/core';

import { AuthErrorCode, AuthProblem } from '../auth.errors';
import { AuthService } from '../auth.service';
import { SessionsService } from '../sessions.service';

import { CookieModeErrorCode, CookieModeProblem } from './cookie-mode.errors';
import { CsrfTokens } from './csrf-tokens';
import { CSRF_HEADER, CookieRequest, refreshCookieOf, wantsCookieMode } from './dashboard-cookies';
import { RefreshTokenRecord, RefreshTokenRecords } from './refresh-token-records';

/** What the server issues is `prt_` and 43 base64url characters; this only bounds the input. */
const REFRESH_TOKEN_SHAPE = /^[A-Za-z0-9_-]{20,200}$/;

export interface VerifiedRefreshCookie {
  token: string;
  record: RefreshTokenRecord;
}

/**
 * Checks calls that carry the refresh cookie. A browser attaches that cookie by itself, so a call
 * counts only with an allowed Origin and the session's CSRF token in `X-CSRF-Token`, both checked
 * before the token is used: a refused call consumes and rotates nothing.
 */
@Injectable()
export class RefreshCookieAuthenticator {
  private readonly logger = new Logger(RefreshCookieAuthenticator.name);

  constructor(
    @Inject(APP_CONFIG) private readonly config: AppConfig,
    private readonly records: RefreshTokenRecords,
    private readonly csrf: CsrfTokens,
    private readonly sessions: SessionsService,
    private readonly auth: AuthService,
  ) {}

  /** Cookie mode is for the configured dashboard origins only (DASHBOARD_ORIGINS). */
  assertDashboardOrigin(request: CookieRequest): void {
    const origin = request.headers.origin;
    if (typeof origin === 'string' && this.config.dashboardOrigins.includes(origin)) {
      return;
    }
    throw this.refusal(
      CookieModeErrorCode.OriginNotAllowed,
      origin === undefined
        ? 'Cookie mode needs the Origin header of an allowed dashboard.'
        : 'This origin is not an allowed dashboard.',
      request,
    );
  }

  /**
   * The refresh token for a refresh call whose body has none: the cookie's, once verified. With
   * neither, a bearer client gets the validation error it always got, a dashboard a 401.
   */
  async refreshTokenOf(request: CookieRequest): Promise<string> {
    if (refreshCookieOf(request) === undefined) {
      if (wantsCookieMode(request)) {
        throw new AuthProblem(
          AuthErrorCode.InvalidRefreshToken,
          'No refresh cookie was sent; sign in again.',
        );
      }
      throw new ProblemException(HttpStatus.BAD_REQUEST, CommonErrorCode.ValidationFailed, {
        detail: 'Invalid input: send refreshToken, or the refresh cookie in cookie mode.',
        errors: [{ field: 'refreshToken', message: 'refreshToken must be a string' }],
      });
    }

    return (await this.verify(request)).token;
  }

  /** Origin, CSRF header and the token's own record, in that order, all before any use. */
  async verify(request: CookieRequest): Promise<VerifiedRefreshCookie> {
    this.assertDashboardOrigin(request);
    const presented = request.headers[CSRF_HEADER];
    if (typeof presented !== 'string' || presented === '') {
      throw this.csrfRefusal(request);
    }
    const token = refreshCookieOf(request);
    const record =
      token !== undefined && REFRESH_TOKEN_SHAPE.test(token)
        ? await this.records.describe(token)
        : undefined;
    if (token === undefined || !record) {
      throw new AuthProblem(AuthErrorCode.InvalidRefreshToken, 'The refresh cookie is not valid.');
    }
    if (!this.csrf.matches(record.sessionId, presented)) {
      throw this.csrfRefusal(request);
    }

    return { token, record };
  }

  /**
   * The member whose session the refresh cookie names, for routes that accept the cookie in place
   * of an access token (logout). A consumed token is a replay and goes through AuthService's reuse
   * detection, which ends the session exactly as a replayed refresh would.
   */
  async authenticate(
    request: CookieRequest,
  ): Promise<{ actor: Extract<Actor, { type: 'user' }>; organizationId: string }> {
    const { token, record } = await this.verify(request);
    if (record.consumed) {
      await this.auth.refresh(token);
      throw new AuthProblem(AuthErrorCode.RefreshTokenReused, 'This refresh token was used.');
    }
    const session = await this.sessions.findActive(record.organizationId, record.sessionId);
    if (!session || session.subjectType !== 'user' || !session.userId || !session.role) {
      throw new AuthProblem(
        AuthErrorCode.SessionEnded,
        'The session of this cookie has ended; sign in again.',
      );
    }

    return {
      actor: { type: 'user', id: session.userId, role: session.role, sessionId: session.id },
      organizationId: record.organizationId,
    };
  }

  private csrfRefusal(request: CookieRequest): CookieModeProblem {
    return this.refusal(
      CookieModeErrorCode.CsrfTokenInvalid,
      'Send the CSRF token of this session in the X-CSRF-Token header.',
      request,
    );
  }

  /** A refused cookie-mode call may be a cross-site forgery, so it is logged with its Origin. */
  private refusal(
    code: CookieModeErrorCode,
    detail: string,
    request: CookieRequest,
  ): CookieModeProblem {
    const origin = request.headers.origin;
    this.logger.warn(
      { code, origin: typeof origin === 'string' ? origin.slice(0, 200) : undefined },
      'cookie-mode call refused',
    );

    return new CookieModeProblem(code, detail);
  }
}
