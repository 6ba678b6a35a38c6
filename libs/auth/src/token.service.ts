import { randomUUID } from 'node:crypto';

import { Inject, Injectable } from '@nestjs/common';
import { JWTPayload, SignJWT, decodeProtectedHeader, errors, jwtVerify } from 'jose';

import { APP_CONFIG, AppConfig, Clock } from '@parley/core';

import { AuthErrorCode, AuthProblem } from './auth.errors';
import { SIGNING_ALGORITHM, SigningKeys } from './signing-keys';

/** RFC 9068 access tokens; visitor tokens carry their own type so neither passes as the other. */
export const ACCESS_TOKEN_TYPE = 'at+jwt';
export const VISITOR_TOKEN_TYPE = 'visitor+jwt';
const VISITOR_AUDIENCE_SUFFIX = ':widget';

export type TokenKind = 'access' | 'visitor';

export interface TokenClaims {
  kind: TokenKind;
  subject: string;
  organizationId: string;
  sessionId: string;
  expiresAt: number;
}

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

/** Verified tokens kept so a hot token is not re-verified on every request; bounded in size. */
const VERIFIED_CACHE_LIMIT = 20_000;

@Injectable()
export class TokenService {
  private readonly verified = new Map<string, TokenClaims>();

  constructor(
    @Inject(APP_CONFIG) private readonly config: AppConfig,
    private readonly keys: SigningKeys,
    private readonly clock: Clock,
  ) {}

  get accessTokenTtl(): number {
    return this.config.accessTokenTtlSeconds;
  }

  get visitorTokenTtl(): number {
    return this.config.visitorTokenTtlSeconds;
  }

  signAccess(input: {
    userId: string;
    organizationId: string;
    sessionId: string;
  }): Promise<string> {
    return this.sign(
      ACCESS_TOKEN_TYPE,
      this.config.jwtAudience,
      this.config.accessTokenTtlSeconds,
      {
        sub: input.userId,
        org: input.organizationId,
        sid: input.sessionId,
      },
    );
  }

  signVisitor(input: {
    contactId: string;
    organizationId: string;
    sessionId: string;
  }): Promise<string> {
    return this.sign(VISITOR_TOKEN_TYPE, this.visitorAudience, this.config.visitorTokenTtlSeconds, {
      sub: input.contactId,
      org: input.organizationId,
      sid: input.sessionId,
    });
  }

  /** The kind a token claims to be, read from its unverified header; verify() then proves it. */
  kindOf(token: string): TokenKind | undefined {
    try {
      const { typ } = decodeProtectedHeader(token);

      return typ === ACCESS_TOKEN_TYPE
        ? 'access'
        : typ === VISITOR_TOKEN_TYPE
          ? 'visitor'
          : undefined;
    } catch {
      return undefined;
    }
  }

  /** Verifies signature, algorithm, key id, issuer, audience, type and times (30 s skew). */
  async verify(token: string, kind: TokenKind): Promise<TokenClaims> {
    const cached = this.verified.get(token);
    if (cached && cached.kind === kind) {
      if (cached.expiresAt + 30 > this.clock.nowSeconds()) {
        return cached;
      }
      this.verified.delete(token);
    }
    const claims = await this.verifyUncached(token, kind);
    if (this.verified.size >= VERIFIED_CACHE_LIMIT) {
      this.verified.clear();
    }
    this.verified.set(token, claims);

    return claims;
  }

  private async verifyUncached(token: string, kind: TokenKind): Promise<TokenClaims> {
    const audience = kind === 'access' ? this.config.jwtAudience : this.visitorAudience;
    const typ = kind === 'access' ? ACCESS_TOKEN_TYPE : VISITOR_TOKEN_TYPE;
    let payload: JWTPayload;
    try {
      ({ payload } = await jwtVerify(
        token,
        async (header) => {
          const key = await this.keys.verificationKey(header.kid);
          if (!key) {
            throw new AuthProblem(
              AuthErrorCode.InvalidToken,
              'The token was not signed by a key of this server.',
            );
          }

          return key;
        },
        {
          algorithms: [SIGNING_ALGORITHM],
          issuer: this.config.jwtIssuer,
          audience,
          typ,
          clockTolerance: 30,
          currentDate: this.clock.now(),
          requiredClaims: ['exp', 'iat', 'nbf', 'sub', 'jti'],
        },
      ));
    } catch (error) {
      if (error instanceof errors.JWTExpired) {
        throw new AuthProblem(
          AuthErrorCode.TokenExpired,
          'The token has expired; refresh it or sign in again.',
        );
      }
      throw new AuthProblem(AuthErrorCode.InvalidToken, 'The token is not valid.');
    }
    const { sub, org, sid, exp } = payload as JWTPayload & { org?: unknown; sid?: unknown };
    if (
      typeof sub !== 'string' ||
      !UUID.test(sub) ||
      typeof org !== 'string' ||
      !UUID.test(org) ||
      typeof sid !== 'string' ||
      !UUID.test(sid)
    ) {
      throw new AuthProblem(AuthErrorCode.InvalidToken, 'The token is not valid.');
    }

    return { kind, subject: sub, organizationId: org, sessionId: sid, expiresAt: exp as number };
  }

  private get visitorAudience(): string {
    return `${this.config.jwtAudience}${VISITOR_AUDIENCE_SUFFIX}`;
  }

  private sign(
    typ: string,
    audience: string,
    ttlSeconds: number,
    claims: Record<string, string>,
  ): Promise<string> {
    const key = this.keys.signingKey();
    const now = this.clock.nowSeconds();

    return new SignJWT(claims)
      .setProtectedHeader({ alg: SIGNING_ALGORITHM, kid: key.kid, typ })
      .setIssuer(this.config.jwtIssuer)
      .setAudience(audience)
      .setIssuedAt(now)
      .setNotBefore(now)
      .setExpirationTime(now + ttlSeconds)
      .setJti(randomUUID())
      .sign(key.privateKey);
  }
}
