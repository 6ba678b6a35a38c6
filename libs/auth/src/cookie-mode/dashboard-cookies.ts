import { Injectable } from '@nestjs/common';

import { Clock } from '@parley/core';

import { TokenPairView } from '../auth.dto';

import { DashboardTokenView } from './cookie-mode.dto';
import { CsrfTokens } from './csrf-tokens';
import { RefreshTokenRecords } from './refresh-token-records';

/** Holds the refresh token; the dashboard's scripts never see it. */
export const REFRESH_COOKIE = '__Host-parley_refresh';
/** Holds the CSRF token where the dashboard's scripts can read it after a page reload. */
export const CSRF_COOKIE = '__Host-parley_csrf';
export const CSRF_HEADER = 'x-csrf-token';
export const CLIENT_HEADER = 'x-client';
export const DASHBOARD_CLIENT = 'dashboard';

export interface CookieRequest {
  headers: Record<string, string | string[] | undefined>;
  /** Parsed by @fastify/cookie (registered in create-app.ts). */
  cookies?: Record<string, string | undefined>;
}

export interface CookieOptions {
  httpOnly: boolean;
  secure: boolean;
  sameSite: 'strict';
  path: string;
  maxAge?: number;
}

/** The part of a Fastify reply with @fastify/cookie that cookie mode writes to. */
export interface CookieReply {
  setCookie(name: string, value: string, options: CookieOptions): unknown;
  clearCookie(name: string, options: CookieOptions): unknown;
}

/**
 * `__Host-` obliges Secure, Path=/ and no Domain, so the cookie belongs to this host alone and a
 * sibling subdomain cannot plant one; SameSite=Strict keeps it off requests other sites start.
 */
const HOST_COOKIE = { secure: true, sameSite: 'strict', path: '/' } as const;

/** True when the caller asked for cookie mode with `X-Client: dashboard`. */
export function wantsCookieMode(request: CookieRequest): boolean {
  const client = request.headers[CLIENT_HEADER];

  return typeof client === 'string' && client.trim().toLowerCase() === DASHBOARD_CLIENT;
}

export function refreshCookieOf(request: CookieRequest): string | undefined {
  const value = request.cookies?.[REFRESH_COOKIE];

  return value === undefined || value === '' ? undefined : value;
}

/** Writes cookie mode's answer: the refresh token and CSRF token as cookies, the rest as JSON. */
@Injectable()
export class DashboardCookies {
  constructor(
    private readonly records: RefreshTokenRecords,
    private readonly csrf: CsrfTokens,
    private readonly clock: Clock,
  ) {}

  /** Moves a fresh pair's refresh token into its cookie; both cookies last as the session does. */
  async deliver(reply: CookieReply, pair: TokenPairView): Promise<DashboardTokenView> {
    const record = await this.records.describe(pair.refreshToken);
    if (!record) {
      throw new Error('A refresh token issued in this request cannot be found');
    }
    const maxAge = Math.max(0, Math.floor((record.expiresAt - this.clock.nowMs()) / 1000));
    const csrfToken = this.csrf.issue(record.sessionId);
    reply.setCookie(REFRESH_COOKIE, pair.refreshToken, { ...HOST_COOKIE, httpOnly: true, maxAge });
    reply.setCookie(CSRF_COOKIE, csrfToken, { ...HOST_COOKIE, httpOnly: false, maxAge });

    return {
      accessToken: pair.accessToken,
      tokenType: pair.tokenType,
      expiresIn: pair.expiresIn,
      csrfToken,
    };
  }

  /** Tells the browser to drop both cookies (Max-Age=0 with the attributes they were set with). */
  clear(reply: CookieReply): void {
    reply.clearCookie(REFRESH_COOKIE, { ...HOST_COOKIE, httpOnly: true });
    reply.clearCookie(CSRF_COOKIE, { ...HOST_COOKIE, httpOnly: false });
  }
}
