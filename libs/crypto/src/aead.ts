import { createCipheriv, createDecipheriv, randomFillSync } from 'node:crypto';

/** The only AES-GCM shape Parley seals with and opens: 256-bit key, 96-bit nonce, 128-bit tag. */
export const AES_256_GCM = { keyBytes: 32, nonceBytes: 12, tagBytes: 16 } as const;

export class SealedValueError extends Error {
  constructor(
    reason: string,
    /** A stable machine code for what was wrong. */
    readonly code:
      | 'malformed'
      | 'unsupported_version'
      | 'wrong_size'
      | 'authentication_failed'
      | 'key_unavailable'
      | 'key_destroyed'
      | 'key_version_retired' = 'malformed',
  ) {
    super(`Sealed value refused: ${reason}`);
    this.name = 'SealedValueError';
  }
}

export interface AesGcmSealed {
  nonce: Buffer;
  ciphertext: Buffer;
  tag: Buffer;
}

/** Nonces handed out per refill of the pool below. */
const NONCES_PER_REFILL = 256;

let noncePool = Buffer.alloc(0);
let nonceOffset = 0;

/**
 * A fresh 96-bit random nonce. Asking the CSPRNG for 12 bytes at a time cost about 2 µs a call,
 * most of it the call itself, so the bytes come from a pool refilled 3 KB at a time; each slice
 * is handed out once and the pool is replaced, never rewritten, when it runs out.
 */
export function freshNonce(): Buffer {
  if (nonceOffset + AES_256_GCM.nonceBytes > noncePool.length) {
    noncePool = randomFillSync(Buffer.alloc(AES_256_GCM.nonceBytes * NONCES_PER_REFILL));
    nonceOffset = 0;
  }
  const nonce = noncePool.subarray(nonceOffset, nonceOffset + AES_256_GCM.nonceBytes);
  nonceOffset += AES_256_GCM.nonceBytes;

  return nonce;
}

/** Seals with a fresh random nonce (or the one given, for test vectors only). */
export function aesGcmSeal(
  key: Buffer,
  plaintext: Buffer,
  aad: Buffer,
  nonce: Buffer = freshNonce(),
): AesGcmSealed {
  assertSize('key', key, AES_256_GCM.keyBytes);
  assertSize('nonce', nonce, AES_256_GCM.nonceBytes);
  const cipher = createCipheriv('aes-256-gcm', key, nonce, { authTagLength: AES_256_GCM.tagBytes });
  cipher.setAAD(aad);
  const ciphertext = Buffer.concat([cipher.update(plaintext), cipher.final()]);

  return { nonce, ciphertext, tag: cipher.getAuthTag() };
}

/**
 * Opens a sealed value. Any key, nonce or tag of another size is refused before decryption is
 * tried (GCM accepts shorter tags, which make forgery easier), and a failed check says only that
 * it failed.
 */
export function aesGcmOpen(
  key: Buffer,
  nonce: Buffer,
  ciphertext: Buffer,
  tag: Buffer,
  aad: Buffer,
): Buffer {
  assertSize('key', key, AES_256_GCM.keyBytes);
  assertSize('nonce', nonce, AES_256_GCM.nonceBytes);
  assertSize('tag', tag, AES_256_GCM.tagBytes);
  const decipher = createDecipheriv('aes-256-gcm', key, nonce, {
    authTagLength: AES_256_GCM.tagBytes,
  });
  decipher.setAAD(aad);
  decipher.setAuthTag(tag);
  try {
    const clear = decipher.update(ciphertext);
    // GCM releases every byte in update(); final() only checks the tag.
    decipher.final();

    return clear;
  } catch {
    throw new SealedValueError(
      'it was altered, moved, or sealed under another key',
      'authentication_failed',
    );
  }
}

function assertSize(what: string, value: Buffer, bytes: number): void {
  if (value.length !== bytes) {
    throw new SealedValueError(
      `the ${what} must be ${bytes} bytes, not ${value.length}`,
      'wrong_size',
    );
  }
}
