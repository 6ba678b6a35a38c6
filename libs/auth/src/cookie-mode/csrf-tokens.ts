import { createHmac } from 'node:crypto';

import { Injectable } from '@nestjs/common';

import { KeyEncryptionKey, constantTimeEqual } from '@parley/crypto';

/** base64url of a SHA-256 HMAC: 43 characters. */
export const CSRF_TOKEN_PATTERN = /^[A-Za-z0-9_-]{43}$/;

/**
 * CSRF tokens of cookie mode, bound to one session: HMAC-SHA256 of the session id under a key
 * derived from the key-encryption key. Every instance computes the same token without storing
 * it, the token stays the same across refreshes of the session, and a token of one session is
 * worth nothing for another. Changing PARLEY_KEK invalidates them all: dashboards sign in again.
 */
@Injectable()
export class CsrfTokens {
  private key: Buffer | undefined;

  constructor(private readonly keyEncryptionKey: KeyEncryptionKey) {}

  issue(sessionId: string): string {
    this.key ??= this.keyEncryptionKey.deriveKey('csrf');

    return createHmac('sha256', this.key).update(`csrf:v1:${sessionId}`).digest('base64url');
  }

  /** Constant-time check of a presented token against the one of `sessionId`. */
  matches(sessionId: string, presented: string | undefined): boolean {
    if (presented === undefined || !CSRF_TOKEN_PATTERN.test(presented)) {
      return false;
    }

    return constantTimeEqual(Buffer.from(this.issue(sessionId)), Buffer.from(presented));
  }
}
