import { createHash, hkdfSync, randomBytes } from 'node:crypto';
import { chmodSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

import { Inject, Injectable, Logger } from '@nestjs/common';

import { APP_CONFIG, AppConfig, ConfigError, isKeyText } from '@parley/core';

import { AES_256_GCM, SealedValueError, aesGcmOpen, aesGcmSeal } from './aead';

/** Sealed before key ids existed: always the current key, no id in the value. */
const LEGACY_PREFIX = 'kek1';
const PREFIX = 'kek2';
const KEK_ID = /^[0-9a-f]{16}$/;
const SUBKEY_PURPOSE = /^[a-z][a-z0-9-]{1,39}$/;
const SUBKEY_SALT = Buffer.from('parley kek subkey v1', 'utf8');

/**
 * Where key-encryption keys live. The local provider below holds them in memory from the
 * environment or a key file; a cloud KMS provider would implement the same four calls, with
 * wrap and unwrap going to the KMS, so nothing else changes.
 */
export abstract class KeyProvider {
  abstract readonly name: string;
  /** The id of the key new wraps use. */
  abstract currentKekId(): string;
  /** Every key id this provider can still unwrap with, the current one first. */
  abstract kekIds(): string[];
  abstract wrap(key: Buffer, context: string): Promise<string>;
  abstract unwrap(wrapped: string, context: string): Promise<Buffer>;
  /** The id of the key that wrapped `wrapped`, without unwrapping it. */
  abstract wrappedUnder(wrapped: string): string;
}

/** A short public name for a key: it identifies the key without revealing anything about it. */
export function kekIdOf(key: Buffer): string {
  return createHash('sha256')
    .update('parley kek id v1\0', 'utf8')
    .update(key)
    .digest('hex')
    .slice(0, 16);
}

/**
 * The local key-encryption keys: PARLEY_KEK (or the first line of PARLEY_KEK_FILE) is current,
 * PARLEY_KEK_PREVIOUS (or the file's further lines) still unwrap what was wrapped before a
 * rotation. Production must supply them; elsewhere a development key is generated once into the
 * data folder. Each wrapped value names the key that wrapped it and binds what it protects.
 */
@Injectable()
export class KeyEncryptionKey extends KeyProvider {
  readonly name = 'local';
  private readonly logger = new Logger(KeyEncryptionKey.name);
  private keys: Map<string, Buffer> | undefined;
  private current: string | undefined;

  constructor(@Inject(APP_CONFIG) private readonly config: AppConfig) {
    super();
  }

  currentKekId(): string {
    this.load();

    return this.current as string;
  }

  kekIds(): string[] {
    this.load();

    return [...(this.keys as Map<string, Buffer>).keys()];
  }

  async wrap(key: Buffer, context: string): Promise<string> {
    return this.seal(key, context);
  }

  async unwrap(wrapped: string, context: string): Promise<Buffer> {
    return this.open(wrapped, context);
  }

  wrappedUnder(wrapped: string): string {
    const [prefix, kekId] = wrapped.split('.');
    if (prefix === LEGACY_PREFIX) {
      // Unknown without opening it; report it as not under the current key, so it is re-wrapped.
      return 'kek1';
    }
    if (prefix !== PREFIX || !kekId || !KEK_ID.test(kekId)) {
      throw new SealedValueError('not a wrapped key of a known version', 'unsupported_version');
    }

    return kekId;
  }

  /** Seals `plaintext` under the current key; `context` (what it is and whose) must match to open. */
  seal(plaintext: Buffer, context: string): string {
    const kekId = this.currentKekId();
    const sealed = aesGcmSeal(this.material(kekId), plaintext, aadFor(kekId, context));

    return [
      PREFIX,
      kekId,
      sealed.nonce.toString('base64url'),
      Buffer.concat([sealed.ciphertext, sealed.tag]).toString('base64url'),
    ].join('.');
  }

  open(value: string, context: string): Buffer {
    const parts = value.split('.');
    if (parts[0] === LEGACY_PREFIX && parts.length === 3) {
      // kek1 values do not say which key sealed them: try each key this provider holds.
      const sealed = Buffer.from(parts[2], 'base64url');
      const nonce = Buffer.from(parts[1], 'base64url');
      let refusal: unknown;
      for (const kekId of this.kekIds()) {
        try {
          return this.openParts(kekId, nonce, sealed, Buffer.from(context, 'utf8'));
        } catch (error) {
          refusal = error;
        }
      }
      throw refusal;
    }
    if (parts[0] !== PREFIX || parts.length !== 4) {
      throw new SealedValueError('not a wrapped key of a known version', 'unsupported_version');
    }
    const [, kekId, nonceText, sealedText] = parts;
    if (!KEK_ID.test(kekId)) {
      throw new SealedValueError('malformed key id');
    }

    return this.openParts(
      kekId,
      Buffer.from(nonceText, 'base64url'),
      Buffer.from(sealedText, 'base64url'),
      aadFor(kekId, context),
    );
  }

  /**
   * A 32-byte key for one purpose (`csrf`, ...), derived from the current key with HKDF-SHA256,
   * so a feature needs no secret of its own and one purpose's key reveals nothing about another's.
   * It changes when the current key-encryption key changes: use it only for short-lived values.
   */
  deriveKey(purpose: string): Buffer {
    if (!SUBKEY_PURPOSE.test(purpose)) {
      throw new Error(`A key purpose is lower-case letters, digits and hyphens, not "${purpose}"`);
    }

    return Buffer.from(
      hkdfSync('sha256', this.material(this.currentKekId()), SUBKEY_SALT, `parley:${purpose}`, 32),
    );
  }

  private openParts(kekId: string, nonce: Buffer, sealed: Buffer, aad: Buffer): Buffer {
    if (sealed.length < AES_256_GCM.tagBytes) {
      throw new SealedValueError('malformed');
    }

    return aesGcmOpen(
      this.material(kekId),
      nonce,
      sealed.subarray(0, sealed.length - AES_256_GCM.tagBytes),
      sealed.subarray(sealed.length - AES_256_GCM.tagBytes),
      aad,
    );
  }

  private material(kekId: string): Buffer {
    this.load();
    const key = (this.keys as Map<string, Buffer>).get(kekId);
    if (!key) {
      throw new SealedValueError(
        `key-encryption key ${kekId} is not configured (PARLEY_KEK_PREVIOUS lists retired keys)`,
        'key_unavailable',
      );
    }

    return key;
  }

  private load(): void {
    if (this.keys) {
      return;
    }
    const texts = this.keyTexts();
    const keys = new Map<string, Buffer>();
    for (const text of texts) {
      const key = Buffer.from(text, 'base64');
      keys.set(kekIdOf(key), key);
    }
    this.current = kekIdOf(Buffer.from(texts[0], 'base64'));
    this.keys = keys;
  }

  private keyTexts(): string[] {
    if (this.config.kekFile) {
      let lines: string[];
      try {
        lines = readFileSync(this.config.kekFile, 'utf8')
          .split(/\r?\n/)
          .map((line) => line.trim())
          .filter((line) => line !== '' && !line.startsWith('#'));
      } catch (error) {
        throw new ConfigError('PARLEY_KEK_FILE', `cannot be read: ${(error as Error).message}`);
      }
      if (lines.length === 0 || !lines.every(isKeyText)) {
        throw new ConfigError(
          'PARLEY_KEK_FILE',
          'must hold one 32-byte base64 key per line, the current one first',
        );
      }

      return [...lines, ...this.config.kekPrevious];
    }
    const current = this.config.kek ?? this.developmentKey();

    return [current, ...(this.config.kekPrevious ?? [])];
  }

  private developmentKey(): string {
    const dir = join(this.config.dataDir, 'secrets');
    const file = join(dir, 'key-encryption-key');
    if (existsSync(file)) {
      return readFileSync(file, 'utf8').trim();
    }
    mkdirSync(dir, { recursive: true, mode: 0o700 });
    const key = randomBytes(32).toString('base64');
    writeFileSync(file, key, { mode: 0o600 });
    chmodSync(file, 0o600);
    this.logger.warn(
      { file },
      'generated a development key-encryption key; set PARLEY_KEK in production',
    );

    return key;
  }
}

function aadFor(kekId: string, context: string): Buffer {
  return Buffer.from(`${PREFIX}|${kekId}|${context}`, 'utf8');
}
