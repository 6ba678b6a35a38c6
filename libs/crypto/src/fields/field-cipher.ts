import { createHmac } from 'node:crypto';

import { Inject, Injectable, Logger } from '@nestjs/common';

import { APP_CONFIG, AppConfig } from '@parley/core';

import { SealedValueError, aesGcmOpen, aesGcmSeal } from '../aead';
import { SealBinding, envelopeAad, formatEnvelope, parseEnvelope } from '../envelope';
import { DataKeys, KeyPurpose, Queryable } from './data-keys';

export type { SealBinding } from '../envelope';

/** Whose key seals a value: the organization's own, or one contact's (erasable on its own). */
export type SealScope = { purpose: 'organization' } | { purpose: 'contact'; contactId: string };

/**
 * Seals and opens single field values with envelope encryption: AES-256-GCM under a data key,
 * bound to the organization, table, column and row the value belongs to. Every sealed column
 * in the database also carries a CHECK constraint that refuses anything else, so a value that
 * skipped this class cannot be stored.
 */
@Injectable()
export class FieldCipher {
  private readonly logger = new Logger(FieldCipher.name);
  private readonly nullCipher: boolean;

  constructor(
    private readonly keys: DataKeys,
    @Inject(APP_CONFIG) config: AppConfig,
  ) {
    this.nullCipher = config.benchUnsafeNullCipher && !config.production;
    if (this.nullCipher) {
      this.logger.warn(
        'BENCH_UNSAFE_NULL_CIPHER is on: field values are stored without encryption; benchmarks only',
      );
    }
  }

  async seal(
    db: Queryable,
    scope: SealScope,
    binding: SealBinding,
    clear: string,
  ): Promise<string> {
    const key = await this.keys.current(
      db,
      binding.organizationId,
      scope.purpose,
      scope.purpose === 'contact' ? scope.contactId : null,
    );

    return this.sealWith(key, binding, clear);
  }

  /** Seals several values of one row under one key lookup. */
  async sealMany(
    db: Queryable,
    scope: SealScope,
    binding: Omit<SealBinding, 'column'>,
    values: Record<string, string>,
  ): Promise<Record<string, string>> {
    const key = await this.keys.current(
      db,
      binding.organizationId,
      scope.purpose,
      scope.purpose === 'contact' ? scope.contactId : null,
    );
    const sealed: Record<string, string> = {};
    for (const [column, clear] of Object.entries(values)) {
      sealed[column] = this.sealWith(key, { ...binding, column }, clear);
    }

    return sealed;
  }

  /** Opens a value; throws SealedValueError (with a code) when it cannot or must not open. */
  async open(db: Queryable, binding: SealBinding, sealed: string): Promise<string> {
    const [clear] = await this.openMany(db, [binding], [sealed]);

    return clear;
  }

  /**
   * Opens several values, in order, looking each key version among them up once; refuses as
   * open() does, with the first value that does not open.
   */
  async openMany(db: Queryable, bindings: SealBinding[], sealed: string[]): Promise<string[]> {
    if (bindings.length !== sealed.length) {
      throw new Error('openMany needs one binding per value');
    }
    const envelopes = sealed.map((value) => parseEnvelope(value));
    const materials = new Map<string, Buffer>();
    for (const [index, envelope] of envelopes.entries()) {
      const { organizationId } = bindings[index];
      const reference = `${organizationId}|${envelope.keyId}|${envelope.version}`;
      if (!materials.has(reference)) {
        materials.set(
          reference,
          await this.keys.forOpening(db, organizationId, envelope.keyId, envelope.version),
        );
      }
    }

    return envelopes.map((envelope, index) => {
      const binding = bindings[index];
      if (this.nullCipher) {
        return envelope.ciphertext.toString('utf8');
      }
      const material = materials.get(
        `${binding.organizationId}|${envelope.keyId}|${envelope.version}`,
      ) as Buffer;

      return aesGcmOpen(
        material,
        envelope.nonce,
        envelope.ciphertext,
        envelope.tag,
        envelopeAad(binding, envelope.keyId, envelope.version),
      ).toString('utf8');
    });
  }

  /** Opens a value that may be null. */
  async openNullable(db: Queryable, binding: SealBinding, sealed: string | null) {
    return sealed === null ? null : this.open(db, binding, sealed);
  }

  /**
   * Opens the sealed column of rows read by raw SQL in place: `read(row)` says where each value
   * belongs; a null value or a row without an id stays as it is.
   */
  async openRows<T extends object>(
    db: Queryable,
    rows: T[],
    key: keyof T & string,
    read: (row: T) => { organizationId: string; table: string; column: string; rowId: unknown },
  ): Promise<T[]> {
    for (const row of rows) {
      const sealed = (row as Record<string, unknown>)[key];
      const place = read(row);
      if (typeof sealed !== 'string' || typeof place.rowId !== 'string') {
        continue;
      }
      (row as Record<string, unknown>)[key] = await this.open(
        db,
        { ...place, rowId: place.rowId },
        sealed,
      );
    }

    return rows;
  }

  /**
   * Re-seals a value under the current version of the same key, or returns null when it already
   * is. `currentVersion` is the ring's current version, which the caller looks up once per ring.
   */
  async reseal(
    db: Queryable,
    binding: SealBinding,
    sealed: string,
    currentVersion: (keyId: string) => Promise<number>,
  ): Promise<string | null> {
    const envelope = parseEnvelope(sealed);
    const version = await currentVersion(envelope.keyId);
    if (envelope.version >= version) {
      return null;
    }
    const clear = await this.open(db, binding, sealed);
    const material = await this.keys.forOpening(
      db,
      binding.organizationId,
      envelope.keyId,
      version,
    );

    return this.sealWith({ keyId: envelope.keyId, version, material }, binding, clear);
  }

  /**
   * A blind index: a keyed HMAC-SHA256 of the normalized value under the organization's own
   * blind-index key, so an exact lookup (a contact by email) needs no clear text in the
   * database and one organization's index says nothing about another's.
   */
  async blindIndex(
    db: Queryable,
    organizationId: string,
    field: string,
    value: string,
  ): Promise<Buffer> {
    const key = await this.keys.current(db, organizationId, 'blind-index' as KeyPurpose, null);

    return createHmac('sha256', key.material)
      .update(`${field}\0`, 'utf8')
      .update(normalizeForIndex(value), 'utf8')
      .digest();
  }

  private sealWith(
    key: { keyId: string; version: number; material: Buffer },
    binding: SealBinding,
    clear: string,
  ): string {
    if (typeof clear !== 'string') {
      throw new SealedValueError('only text values are sealed');
    }
    const aad = envelopeAad(binding, key.keyId, key.version);
    const plaintext = Buffer.from(clear, 'utf8');
    if (this.nullCipher) {
      return formatEnvelope({
        keyId: key.keyId,
        version: key.version,
        nonce: Buffer.alloc(12),
        ciphertext: plaintext,
        tag: Buffer.alloc(16),
      });
    }
    const sealed = aesGcmSeal(key.material, plaintext, aad);

    return formatEnvelope({ keyId: key.keyId, version: key.version, ...sealed });
  }
}

/** Exact-match lookups ignore case and surrounding space, the way people type emails. */
export function normalizeForIndex(value: string): string {
  return value.trim().normalize('NFC').toLowerCase();
}
