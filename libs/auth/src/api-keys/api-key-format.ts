import { randomBytes } from 'node:crypto';

import { randomToken } from '@parley/crypto';

/**
 * `psk_<lookup prefix>_<secret>`: "psk" tells secret scanners and people what it is (widget keys
 * are `pk_`), the prefix of 8 base32 characters (40 bits, not secret) finds the row before the
 * organization is known, and the secret is 32 random bytes in base64url (256 bits).
 */
export const API_KEY_MARK = 'psk_';

const PREFIX_ALPHABET = 'abcdefghijklmnopqrstuvwxyz234567';
const PREFIX_LENGTH = 8;
const SECRET_BYTES = 32;
const API_KEY_PATTERN = /^psk_([a-z2-7]{8})_([A-Za-z0-9_-]{43})$/;

export interface ApiKeyParts {
  lookupPrefix: string;
  secret: string;
}

/** A new lookup prefix; 32 divides 256, so masking a byte keeps every character equally likely. */
export function newLookupPrefix(): string {
  return [...randomBytes(PREFIX_LENGTH)].map((byte) => PREFIX_ALPHABET[byte & 31]).join('');
}

export function newSecret(): string {
  return randomToken(SECRET_BYTES);
}

export function formatApiKey(parts: ApiKeyParts): string {
  return `${API_KEY_MARK}${parts.lookupPrefix}_${parts.secret}`;
}

/** The prefix and secret of a well-formed key, or undefined for anything else. */
export function parseApiKey(presented: string): ApiKeyParts | undefined {
  const match = API_KEY_PATTERN.exec(presented);

  return match ? { lookupPrefix: match[1], secret: match[2] } : undefined;
}
