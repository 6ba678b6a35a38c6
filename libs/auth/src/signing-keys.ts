import { createPrivateKey, createPublicKey, generateKeyPairSync, KeyObject } from 'node:crypto';

import { Inject, Injectable, Logger, OnModuleDestroy, OnModuleInit } from '@nestjs/common';
import { CryptoKey, JWK, calculateJwkThumbprint, exportJWK, importPKCS8, importSPKI } from 'jose';
import { DataSource } from 'typeorm';

import { APP_CONFIG, AppConfig, Clock, declareTable } from '@parley/core';
import { KeyEncryptionKey, SealedValueError } from '@parley/crypto';

declareTable(
  'signing_keys',
  {
    purpose: 'Token signing keys shared by every instance; public halves are published as JWKS.',
    retention: 'Until the last token a key signed has expired.',
  },
  {
    kid: { class: 'public' },
    algorithm: { class: 'public' },
    public_key_pem: { class: 'public' },
    private_key_sealed: { class: 'restricted', protection: 'kek-sealed' },
    created_at: { class: 'internal' },
    retired_at: { class: 'internal' },
    verify_until: { class: 'internal' },
  },
);

export const SIGNING_ALGORITHM = 'ES256';

/** How often each instance re-reads the key table, so a rotation elsewhere reaches it. */
const RELOAD_INTERVAL_MS = 60_000;
/** Clock skew the verifier tolerates, added to how long a retired key keeps verifying. */
const SKEW_SECONDS = 30;
/** A verifier that meets an unknown key id re-reads the table at most this often. */
const UNKNOWN_KID_RELOAD_MS = 5_000;

export interface SigningKey {
  kid: string;
  privateKey: CryptoKey;
  publicKey: CryptoKey;
  publicJwk: JWK;
  createdAt: Date;
}

interface KeyRow {
  kid: string;
  public_key_pem: string;
  private_key_sealed: string;
  created_at: Date;
  retired_at: Date | null;
  verify_until: Date | null;
}

/**
 * ES256 signing keys, shared by every instance through the signing_keys table. The newest
 * unretired key signs; a retired key keeps verifying until the last token it signed has expired.
 * Rotation happens on `npm run keys:rotate` and when the current key is older than
 * SIGNING_KEY_ROTATION_DAYS.
 */
@Injectable()
export class SigningKeys implements OnModuleInit, OnModuleDestroy {
  private readonly logger = new Logger(SigningKeys.name);
  private current: SigningKey | undefined;
  private verifying = new Map<string, SigningKey>();
  private timer: NodeJS.Timeout | undefined;
  private lastUnknownReload = 0;

  constructor(
    @Inject(APP_CONFIG) private readonly config: AppConfig,
    private readonly dataSource: DataSource,
    private readonly kek: KeyEncryptionKey,
    private readonly clock: Clock,
  ) {}

  async onModuleInit(): Promise<void> {
    if (this.config.jwtPrivateKey) {
      await this.importKey(this.config.jwtPrivateKey);
    }
    await this.reload();
    if (!this.current) {
      await this.rotate('first start');
    }
    this.timer = setInterval(() => {
      void this.refresh().catch((error: Error) =>
        this.logger.warn({ reason: error.message }, 'signing key refresh failed'),
      );
    }, RELOAD_INTERVAL_MS);
    this.timer.unref();
  }

  onModuleDestroy(): void {
    clearInterval(this.timer);
  }

  signingKey(): SigningKey {
    if (!this.current) {
      throw new Error('No signing key is loaded');
    }

    return this.current;
  }

  /**
   * The public key for a key id of this installation that still verifies, or undefined. A key id
   * not seen yet may be a rotation on another instance: the table is read again, at most every
   * few seconds so that made-up key ids cannot turn into a flood of queries.
   */
  async verificationKey(kid: string | undefined): Promise<CryptoKey | undefined> {
    if (!kid) {
      return undefined;
    }
    if (
      !this.verifying.has(kid) &&
      this.clock.nowMs() - this.lastUnknownReload > UNKNOWN_KID_RELOAD_MS
    ) {
      this.lastUnknownReload = this.clock.nowMs();
      await this.reload().catch((error: Error) =>
        this.logger.warn({ reason: error.message }, 'signing key reload failed'),
      );
    }

    return this.verifying.get(kid)?.publicKey;
  }

  /** Every key that still verifies, as a JSON Web Key Set. */
  jwks(): { keys: JWK[] } {
    return { keys: [...this.verifying.values()].map((key) => key.publicJwk) };
  }

  /**
   * Makes a new key current. The previous one stops signing now and keeps verifying for one
   * access-token lifetime plus skew. An advisory lock keeps two instances from rotating at once.
   */
  async rotate(reason: string): Promise<string> {
    const { privateKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    const kid = await this.storeKey(privateKey);
    this.logger.log({ kid, reason }, 'signing key rotated');
    await this.reload();

    return kid;
  }

  private async refresh(): Promise<void> {
    await this.reload();
    const ageMs = this.current ? this.clock.nowMs() - this.current.createdAt.getTime() : Infinity;
    if (ageMs > this.config.signingKeyRotationDays * 86_400_000) {
      await this.rotate('scheduled');
    }
  }

  private async importKey(pem: string): Promise<void> {
    const privateKey = createPrivateKey(pem);
    if (
      privateKey.asymmetricKeyType !== 'ec' ||
      privateKey.asymmetricKeyDetails?.namedCurve !== 'prime256v1'
    ) {
      throw new Error('JWT_PRIVATE_KEY must be a P-256 (ES256) private key');
    }
    const kid = await calculateJwkThumbprint(
      await exportJWK(createPublicKey(privateKey)),
      'sha256',
    );
    const [known] = await this.dataSource.query('select kid from signing_keys where kid = $1', [
      kid,
    ]);
    // Imported once: a key already stored, even retired, is never brought back into service.
    if (!known) {
      await this.storeKey(privateKey);
    }
  }

  /** Stores a key sealed under the KEK and makes it the one that signs. */
  private async storeKey(privateKey: KeyObject): Promise<string> {
    const publicKey = createPublicKey(privateKey);
    const kid = await calculateJwkThumbprint(await exportJWK(publicKey), 'sha256');
    const pem = privateKey.export({ type: 'pkcs8', format: 'pem' }).toString();
    const now = this.clock.now();
    // Another instance may sign with the old key until its next reload, so that wait counts too.
    const verifyUntil = new Date(
      now.getTime() +
        (this.config.accessTokenTtlSeconds + SKEW_SECONDS) * 1000 +
        RELOAD_INTERVAL_MS,
    );
    await this.dataSource.transaction(async (manager) => {
      await manager.query('select pg_advisory_xact_lock(7270532)');
      await manager.query(
        'update signing_keys set retired_at = $1, verify_until = $2 where retired_at is null and kid <> $3',
        [now, verifyUntil, kid],
      );
      await manager.query(
        `insert into signing_keys (kid, algorithm, public_key_pem, private_key_sealed, created_at)
         values ($1, $2, $3, $4, $5)
         on conflict (kid) do nothing`,
        [
          kid,
          SIGNING_ALGORITHM,
          publicKey.export({ type: 'spki', format: 'pem' }).toString(),
          this.kek.seal(Buffer.from(pem), `signing_key:${kid}`),
          now,
        ],
      );
    });

    return kid;
  }

  /**
   * After a key-encryption-key rotation: re-seals every signing key that still verifies under
   * the current key-encryption key, so the previous one can be retired. Returns how many.
   */
  async rewrapUnderCurrentKek(): Promise<number> {
    const current = this.kek.currentKekId();

    return this.dataSource.transaction(async (manager) => {
      await manager.query('select pg_advisory_xact_lock(7270532)');
      const rows: { kid: string; private_key_sealed: string }[] = await manager.query(
        `select kid, private_key_sealed from signing_keys
          where verify_until is null or verify_until > $1 for update`,
        [this.clock.now()],
      );
      let rewrapped = 0;
      for (const row of rows) {
        if (
          row.private_key_sealed.startsWith('kek2.') &&
          this.kek.wrappedUnder(row.private_key_sealed) === current
        ) {
          continue;
        }
        const context = `signing_key:${row.kid}`;
        const pem = this.kek.open(row.private_key_sealed, context);
        await manager.query('update signing_keys set private_key_sealed = $2 where kid = $1', [
          row.kid,
          this.kek.seal(pem, context),
        ]);
        rewrapped += 1;
      }

      return rewrapped;
    });
  }

  /** Re-reads the key table: the newest unretired key signs, every unexpired key verifies. */
  async reload(): Promise<void> {
    const rows: KeyRow[] = await this.dataSource.query(
      `select kid, public_key_pem, private_key_sealed, created_at, retired_at, verify_until
         from signing_keys where verify_until is null or verify_until > $1
        order by created_at desc`,
      [this.clock.now()],
    );
    const verifying = new Map<string, SigningKey>();
    let current: SigningKey | undefined;
    for (const row of rows) {
      const key = this.verifying.get(row.kid) ?? (await this.loadKeyOrSkip(row));
      if (!key) {
        continue;
      }
      verifying.set(row.kid, key);
      if (!current && row.retired_at === null) {
        current = key;
      }
    }
    this.verifying = verifying;
    this.current = current;
  }

  /**
   * A key sealed under another key-encryption key cannot be used. Production stops, since its
   * PARLEY_KEK must be the one the keys were sealed with; a development server ignores the key
   * (its data folder was probably replaced) and rotates to a fresh one.
   */
  private async loadKeyOrSkip(row: KeyRow): Promise<SigningKey | undefined> {
    try {
      return await this.loadKey(row);
    } catch (error) {
      if (!(error instanceof SealedValueError)) {
        throw error;
      }
      if (this.config.production) {
        throw new Error(
          `PARLEY_KEK cannot open signing key ${row.kid}: set the key-encryption key the signing keys were sealed with`,
          { cause: error },
        );
      }
      this.logger.warn(
        { kid: row.kid },
        'ignoring a signing key sealed under another key-encryption key (was PARLEY_KEK changed, or PARLEY_DATA_DIR replaced?)',
      );

      return undefined;
    }
  }

  private async loadKey(row: KeyRow): Promise<SigningKey> {
    const pem = this.kek.open(row.private_key_sealed, `signing_key:${row.kid}`).toString('utf8');
    const publicJwk = await exportJWK(createPublicKey(row.public_key_pem));

    return {
      kid: row.kid,
      privateKey: await importPKCS8(pem, SIGNING_ALGORITHM),
      publicKey: await importSPKI(row.public_key_pem, SIGNING_ALGORITHM),
      publicJwk: { ...publicJwk, kid: row.kid, alg: SIGNING_ALGORITHM, use: 'sig' },
      createdAt: new Date(row.created_at),
    };
  }
}
