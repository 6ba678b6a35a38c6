import { randomInt } from 'node:crypto';

import { tokenDigest } from '@parley/crypto';

export const RECOVERY_CODE_COUNT = 10;

/** Base32 letters and digits, lower case: 16 of them carry 80 bits. */
const ALPHABET = 'abcdefghijklmnopqrstuvwxyz234567';
const GROUPS = 4;
const GROUP_LENGTH = 4;

/** A recovery code as shown (`abcd-efgh-ijkl-mnop`), in any case, hyphens optional. */
export const RECOVERY_CODE_SOURCE = '[a-z2-7]{4}-?[a-z2-7]{4}-?[a-z2-7]{4}-?[a-z2-7]{4}';
const RECOVERY_CODE_PATTERN = new RegExp(`^${RECOVERY_CODE_SOURCE}$`, 'i');

export function isRecoveryCode(code: string): boolean {
  return RECOVERY_CODE_PATTERN.test(code);
}

export function createRecoveryCode(): string {
  const groups: string[] = [];
  for (let group = 0; group < GROUPS; group += 1) {
    let text = '';
    for (let index = 0; index < GROUP_LENGTH; index += 1) {
      text += ALPHABET[randomInt(ALPHABET.length)];
    }
    groups.push(text);
  }

  return groups.join('-');
}

/**
 * The stored digest of a recovery code: SHA-256 of its canonical form (lower case, no hyphens).
 * A fast hash suffices because each code carries 80 random bits.
 */
export function recoveryCodeDigest(code: string): Buffer {
  return tokenDigest(code.replace(/-/g, '').toLowerCase());
}
