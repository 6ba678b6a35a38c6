import { createCipheriv, createDecipheriv, hkdfSync, randomBytes } from 'node:crypto';
import { chmodSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

import { Inject, Injectable, Logger } from '@nestjs/common';

import { APP_CONFIG, AppConfig } from '@parley/core';

const SEALED_PREFIX = 'kek1';
const NONCE_BYTES = 12;
const TAG_BYTES = 16;
const SUBKEY_PURPOSE = /^[a-z][a-z0-9-]{1,39}$/;
const SUBKEY_SALT = Buffer.from('parley kek subkey v1', 'utf8');

export class SealedValueError extends Error {
  constructor(reason: string) {
    super(`Sealed value refused: ${reason}`);
    this.name = 'SealedValueError';
  }
}

/**
 * The local key-encryption key (PARLEY_KEK, 32 bytes in base64). It wraps keys the server keeps
 * in the database, such as token signing keys, with AES-256-GCM bound to what they protect.
 * Production must supply it; elsewhere a development key is generated once into the data folder.
 */
@Injectable()
export class KeyEncryptionKey {
  private readonly logger = new Logger(KeyEncryptionKey.name);
  private key: Buffer | undefined;

  constructor(@Inject(APP_CONFIG) private readonly config: AppConfig) {}

  /** Seals `plaintext`; `context` (what the value is and whose) must match when it is opened. */
  seal(plaintext: Buffer, context: string): string {
    const nonce = randomBytes(NONCE_BYTES);
    const cipher = createCipheriv('aes-256-gcm', this.material(), nonce, {
      authTagLength: TAG_BYTES,
    });
    cipher.setAAD(Buffer.from(context, 'utf8'));
    const sealed = Buffer.concat([cipher.update(plaintext), cipher.final(), cipher.getAuthTag()]);

    return `${SEALED_PREFIX}.${nonce.toString('base64url')}.${sealed.toString('base64url')}`;
  }

  open(value: string, context: string): Buffer {
    const [prefix, nonceText, sealedText, extra] = value.split('.');
    if (prefix !== SEALED_PREFIX || !nonceText || !sealedText || extra !== undefined) {
      throw new SealedValueError('not a sealed value of this version');
    }
    const nonce = Buffer.from(nonceText, 'base64url');
    const sealed = Buffer.from(sealedText, 'base64url');
    if (nonce.length !== NONCE_BYTES || sealed.length < TAG_BYTES) {
      throw new SealedValueError('malformed');
    }
    const decipher = createDecipheriv('aes-256-gcm', this.material(), nonce, {
      authTagLength: TAG_BYTES,
    });
    decipher.setAAD(Buffer.from(context, 'utf8'));
    decipher.setAuthTag(sealed.subarray(sealed.length - TAG_BYTES));
    try {
      return Buffer.concat([
        decipher.update(sealed.subarray(0, sealed.length - TAG_BYTES)),
        decipher.final(),
      ]);
    } catch {
      throw new SealedValueError('it was altered, moved, or sealed under another key');
    }
  }

  /**
   * A 32-byte key for one purpose (`csrf`, ...), derived from this key with HKDF-SHA256, so a
   * feature needs no secret of its own and one purpose's key reveals nothing about another's.
   * It changes when PARLEY_KEK changes.
   */
  deriveKey(purpose: string): Buffer {
    if (!SUBKEY_PURPOSE.test(purpose)) {
      throw new Error(`A key purpose is lower-case letters, digits and hyphens, not "${purpose}"`);
    }

    return Buffer.from(hkdfSync('sha256', this.material(), SUBKEY_SALT, `parley:${purpose}`, 32));
  }

  private material(): Buffer {
    this.key ??= this.config.kek ? Buffer.from(this.config.kek, 'base64') : this.developmentKey();

    return this.key;
  }

  private developmentKey(): Buffer {
    const dir = join(this.config.dataDir, 'secrets');
    const file = join(dir, 'key-encryption-key');
    if (existsSync(file)) {
      return Buffer.from(readFileSync(file, 'utf8').trim(), 'base64');
    }
    mkdirSync(dir, { recursive: true, mode: 0o700 });
    const key = randomBytes(32);
    writeFileSync(file, key.toString('base64'), { mode: 0o600 });
    chmodSync(file, 0o600);
    this.logger.warn(
      { file },
      'generated a development key-encryption key; set PARLEY_KEK in production',
    );

    return key;
  }
}
