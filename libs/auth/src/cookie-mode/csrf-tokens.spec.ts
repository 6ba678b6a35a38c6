import { AppConfig } from '@parley/core';
import { KeyEncryptionKey } from '@parley/crypto';

import { CsrfTokens } from './csrf-tokens';

function keyEncryptionKey(fill: number): KeyEncryptionKey {
  return new KeyEncryptionKey({ kek: Buffer.alloc(32, fill).toString('base64') } as AppConfig);
}

const SESSION = '0b5d6c1e-6f0a-4d7e-9f43-2a1c3b4d5e6f';
const OTHER_SESSION = '0b5d6c1e-6f0a-4d7e-9f43-2a1c3b4d5e70';

describe('CSRF tokens of cookie mode', () => {
  const tokens = new CsrfTokens(keyEncryptionKey(7));

  it('gives one session the same token on every instance that shares the key', () => {
    const elsewhere = new CsrfTokens(keyEncryptionKey(7));

    expect(tokens.issue(SESSION)).toMatch(/^[A-Za-z0-9_-]{43}$/);
    expect(elsewhere.issue(SESSION)).toBe(tokens.issue(SESSION));
    expect(elsewhere.matches(SESSION, tokens.issue(SESSION))).toBe(true);
  });

  it("refuses another session's token, a token under another key, and anything malformed", () => {
    const token = tokens.issue(SESSION);
    const underOtherKey = new CsrfTokens(keyEncryptionKey(8)).issue(SESSION);

    expect(tokens.matches(OTHER_SESSION, token)).toBe(false);
    expect(tokens.matches(SESSION, underOtherKey)).toBe(false);
    expect(tokens.matches(SESSION, undefined)).toBe(false);
    expect(tokens.matches(SESSION, '')).toBe(false);
    expect(tokens.matches(SESSION, `${token}=`)).toBe(false);
    expect(tokens.matches(SESSION, token.slice(0, 42))).toBe(false);
  });
});

describe('KeyEncryptionKey.deriveKey', () => {
  it('derives a distinct, stable 32-byte key per purpose', () => {
    const key = keyEncryptionKey(7);

    expect(key.deriveKey('csrf')).toHaveLength(32);
    expect(key.deriveKey('csrf').equals(keyEncryptionKey(7).deriveKey('csrf'))).toBe(true);
    expect(key.deriveKey('csrf').equals(key.deriveKey('webhooks'))).toBe(false);
    expect(key.deriveKey('csrf').equals(keyEncryptionKey(8).deriveKey('csrf'))).toBe(false);
    expect(key.deriveKey('csrf').equals(Buffer.alloc(32, 7))).toBe(false);
  });

  it('refuses a purpose that is not a plain lower-case name', () => {
    const key = keyEncryptionKey(7);

    expect(() => key.deriveKey('')).toThrow();
    expect(() => key.deriveKey('CSRF')).toThrow();
    expect(() => key.deriveKey('csrf:v2')).toThrow();
  });
});
