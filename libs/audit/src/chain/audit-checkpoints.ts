import {
  KeyObject,
  createHash,
  createPrivateKey,
  createPublicKey,
  generateKeyPairSync,
  sign,
  verify,
} from 'node:crypto';

import {
  HttpStatus,
  Inject,
  Injectable,
  Logger,
  OnApplicationBootstrap,
  OnApplicationShutdown,
} from '@nestjs/common';
import { DataSource } from 'typeorm';

import {
  APP_CONFIG,
  AppConfig,
  Clock,
  ProblemException,
  declareTable,
  RepeatingJob,
  repeatEvery,
} from '@parley/core';
import { KeyEncryptionKey } from '@parley/crypto';
import { TenantTransactions } from '@parley/database';

import { AuditChain } from './audit-chain';

declareTable(
  'audit_checkpoint_keys',
  {
    purpose: 'Ed25519 keys that sign audit checkpoints; the public halves verify them.',
    retention: 'Kept while any checkpoint they signed is kept.',
  },
  {
    kid: { class: 'public' },
    algorithm: { class: 'public' },
    public_key_pem: { class: 'public' },
    private_key_sealed: { class: 'restricted', protection: 'kek-sealed' },
    created_at: { class: 'internal' },
  },
);
declareTable(
  'audit_checkpoints',
  {
    purpose: "Signed heads of each organization's audit chain, so a rewrite is detectable.",
    retention: 'Kept with the audit trail.',
  },
  Object.fromEntries(
    ['id', 'organization_id', 'seq', 'hash', 'signed_at', 'kid', 'signature'].map((column) => [
      column,
      { class: 'internal' as const },
    ]),
  ),
);
declareTable(
  'audit_chain_heads',
  {
    purpose:
      "The last linked entry of each organization's audit chain, kept by parley_audit_chain.",
    retention: 'While the organization exists.',
  },
  {
    organization_id: { class: 'internal' },
    seq: { class: 'internal' },
    hash: { class: 'internal' },
    updated_at: { class: 'internal' },
  },
);

export const CHECKPOINT_FORMAT = 'parley-audit-checkpoint/v1';

export interface Checkpoint {
  organizationId: string;
  seq: number;
  /** Hex SHA-256 of the chain's entry `seq`. */
  hash: string;
  signedAt: string;
  kid: string;
  /** Ed25519 signature over `checkpointPayload(...)`, base64url. */
  signature: string;
}

export interface CheckpointKeyView {
  kid: string;
  alg: 'Ed25519';
  publicKeyPem: string;
  /** The same key as a JWK (OKP, Ed25519). */
  jwk: { kty: string; crv: string; x: string };
  createdAt: string;
}

/** The exact bytes a checkpoint signs: format, organization, sequence number, hash and time. */
export function checkpointPayload(checkpoint: Omit<Checkpoint, 'kid' | 'signature'>): Buffer {
  return Buffer.from(
    [
      CHECKPOINT_FORMAT,
      checkpoint.organizationId,
      String(checkpoint.seq),
      checkpoint.hash,
      checkpoint.signedAt,
    ].join('\n'),
    'utf8',
  );
}

/** Checks a checkpoint's signature against public keys held by the verifier; no database needed. */
export function checkpointSignatureValid(
  checkpoint: Checkpoint,
  publicKeys: Map<string, KeyObject>,
): boolean {
  const key = publicKeys.get(checkpoint.kid);
  if (!key) {
    return false;
  }
  try {
    return verify(
      null,
      checkpointPayload(checkpoint),
      key,
      Buffer.from(checkpoint.signature, 'base64url'),
    );
  } catch {
    return false;
  }
}

interface KeyRow {
  kid: string;
  public_key_pem: string;
  private_key_sealed: string;
  created_at: Date;
}

interface CheckpointRow {
  organization_id: string;
  seq: string;
  hash: Buffer;
  signed_at: Date;
  kid: string;
  signature: Buffer;
}

const FIRST_RUN_DELAY_MS = 60_000;

/**
 * Signed checkpoints of every organization's chain head. The signing key is Ed25519, created on
 * first use and kept sealed under the key-encryption key; its public half is published at
 * /.well-known/parley-audit-keys.json. Each checkpoint is stored, and written to the log stream,
 * where it leaves the database owner's reach: a chain rewritten after it no longer matches.
 */
@Injectable()
export class AuditCheckpoints implements OnApplicationBootstrap, OnApplicationShutdown {
  private readonly logger = new Logger('AuditCheckpoints');
  private signing: { kid: string; privateKey: KeyObject } | undefined;
  private job: RepeatingJob | undefined;

  constructor(
    private readonly dataSource: DataSource,
    private readonly transactions: TenantTransactions,
    private readonly chain: AuditChain,
    private readonly kek: KeyEncryptionKey,
    private readonly clock: Clock,
    @Inject(APP_CONFIG) private readonly config: AppConfig,
  ) {}

  onApplicationBootstrap(): void {
    const minutes = this.config.auditCheckpointMinutes;
    if (minutes === 0) {
      return;
    }
    this.job = repeatEvery({
      firstDelayMs: FIRST_RUN_DELAY_MS,
      intervalMs: minutes * 60_000,
      work: () => this.checkpointAll(),
      onError: (error) => this.logger.error({ err: error }, 'scheduled audit checkpoints failed'),
    });
  }

  async onApplicationShutdown(): Promise<void> {
    await this.job?.stop();
  }

  /** Signs the head of every organization whose chain grew since its last checkpoint. */
  async checkpointAll(): Promise<number> {
    const rows: { id: string }[] = await this.dataSource.query(
      'select parley_organization_ids() as id',
    );
    let signed = 0;
    for (const { id } of rows) {
      const [latest] = await this.list(id, 1);
      const head = await this.chain.head(id);
      if (head && (!latest || latest.seq < head.seq)) {
        await this.create(id);
        signed += 1;
      }
    }

    return signed;
  }

  /** Signs the organization's current head now. */
  async create(organizationId: string): Promise<Checkpoint> {
    const head = await this.chain.head(organizationId);
    if (!head) {
      throw new ProblemException(HttpStatus.CONFLICT, 'audit_chain_empty', {
        detail: 'The audit trail has no entry to sign yet.',
      });
    }

    return this.sign(organizationId, head.seq, head.hash, true);
  }

  /** A checkpoint of an arbitrary entry (for an export's last line); stored like any other. */
  async sign(
    organizationId: string,
    seq: number,
    hash: string,
    publish = true,
  ): Promise<Checkpoint> {
    // Through the organization's transaction: on the embedded database a second connection
    // would wait for the one session that transaction holds.
    const key = await this.transactions.run(organizationId, (manager) => this.signingKey(manager));
    const unsigned = {
      organizationId,
      seq,
      hash,
      signedAt: this.clock.now().toISOString(),
    };
    const checkpoint: Checkpoint = {
      ...unsigned,
      kid: key.kid,
      signature: sign(null, checkpointPayload(unsigned), key.privateKey).toString('base64url'),
    };
    await this.transactions.run(organizationId, (manager) =>
      manager.query(
        `insert into audit_checkpoints (organization_id, seq, hash, signed_at, kid, signature)
         values ($1, $2, $3, $4, $5, $6)`,
        [
          organizationId,
          seq,
          Buffer.from(hash, 'hex'),
          new Date(checkpoint.signedAt),
          checkpoint.kid,
          Buffer.from(checkpoint.signature, 'base64url'),
        ],
      ),
    );
    if (publish) {
      // The log stream is where the checkpoint leaves the database's reach.
      this.logger.log({ checkpoint }, 'audit checkpoint');
    }

    return checkpoint;
  }

  async list(organizationId: string, limit = 100): Promise<Checkpoint[]> {
    const rows: CheckpointRow[] = await this.transactions.run(organizationId, (manager) =>
      manager.query(
        `select organization_id, seq, hash, signed_at, kid, signature from audit_checkpoints
          where organization_id = $1 order by signed_at desc, seq desc limit $2`,
        [organizationId, limit],
      ),
    );

    return rows.map(toCheckpoint);
  }

  /** Every checkpoint key, for verifiers. */
  async publicKeys(
    db: { query(sql: string, parameters?: unknown[]): Promise<unknown> } = this.dataSource,
  ): Promise<CheckpointKeyView[]> {
    const read = async () =>
      (await db.query(
        'select kid, public_key_pem, created_at from audit_checkpoint_keys order by created_at',
      )) as KeyRow[];
    let rows = await read();
    if (rows.length === 0) {
      // The first key is made on first use; the public halves never need the private ones.
      await this.signingKey(db);
      rows = await read();
    }

    return rows.map((row) => {
      const jwk = createPublicKey(row.public_key_pem).export({ format: 'jwk' }) as {
        kty: string;
        crv: string;
        x: string;
      };

      return {
        kid: row.kid,
        alg: 'Ed25519' as const,
        publicKeyPem: row.public_key_pem,
        jwk: { kty: jwk.kty, crv: jwk.crv, x: jwk.x },
        createdAt: new Date(row.created_at).toISOString(),
      };
    });
  }

  async publicKeyMap(
    db: { query(sql: string, parameters?: unknown[]): Promise<unknown> } = this.dataSource,
  ): Promise<Map<string, KeyObject>> {
    return new Map(
      (await this.publicKeys(db)).map((key) => [key.kid, createPublicKey(key.publicKeyPem)]),
    );
  }

  /**
   * Checks stored checkpoints against the chain as it is now: each must carry a valid signature
   * and name the hash the chain holds at its sequence number. Returns the first that does not.
   */
  async check(
    organizationId: string,
    checkpoints?: Checkpoint[],
  ): Promise<{ checked: number; failed?: { checkpoint: Checkpoint; reason: string } }> {
    const keys = await this.transactions.run(organizationId, (manager) =>
      this.publicKeyMap(manager),
    );
    const list = checkpoints ?? (await this.list(organizationId));
    let checked = 0;
    for (const checkpoint of list) {
      if (checkpoint.organizationId !== organizationId) {
        return { checked, failed: { checkpoint, reason: 'it names another organization' } };
      }
      if (!checkpointSignatureValid(checkpoint, keys)) {
        return { checked, failed: { checkpoint, reason: 'its signature does not verify' } };
      }
      const entry = await this.chain.entryAt(organizationId, checkpoint.seq);
      if (!entry || entry.hash.toString('hex') !== checkpoint.hash) {
        return {
          checked,
          failed: {
            checkpoint,
            reason: `the chain no longer holds the entry ${checkpoint.seq} signed at ${checkpoint.signedAt}`,
          },
        };
      }
      checked += 1;
    }

    return { checked };
  }

  /**
   * After a key-encryption-key rotation: re-seals every checkpoint signing key under the current
   * key-encryption key, so the previous one can be retired. Returns how many.
   */
  async rewrapUnderCurrentKek(): Promise<number> {
    const current = this.kek.currentKekId();

    return this.dataSource.transaction(async (manager) => {
      const rows: KeyRow[] = await manager.query(
        'select kid, private_key_sealed from audit_checkpoint_keys for update',
      );
      let rewrapped = 0;
      for (const row of rows) {
        if (this.kek.wrappedUnder(row.private_key_sealed) === current) {
          continue;
        }
        const context = `audit_checkpoint_key:${row.kid}`;
        await manager.query(
          'update audit_checkpoint_keys set private_key_sealed = $2 where kid = $1',
          [row.kid, this.kek.seal(this.kek.open(row.private_key_sealed, context), context)],
        );
        rewrapped += 1;
      }

      return rewrapped;
    });
  }

  private async signingKey(
    db: { query(sql: string, parameters?: unknown[]): Promise<unknown> } = this.dataSource,
  ): Promise<{ kid: string; privateKey: KeyObject }> {
    if (this.signing) {
      return this.signing;
    }
    const rows = (await db.query(
      `select kid, public_key_pem, private_key_sealed, created_at from audit_checkpoint_keys
        order by created_at desc limit 1`,
    )) as KeyRow[];
    if (rows[0]) {
      const pem = this.kek.open(rows[0].private_key_sealed, `audit_checkpoint_key:${rows[0].kid}`);
      this.signing = { kid: rows[0].kid, privateKey: createPrivateKey(pem.toString('utf8')) };

      return this.signing;
    }
    const { privateKey, publicKey } = generateKeyPairSync('ed25519');
    const publicPem = publicKey.export({ type: 'spki', format: 'pem' }).toString();
    const kid = createHash('sha256')
      .update(publicKey.export({ type: 'spki', format: 'der' }))
      .digest()
      .subarray(0, 16)
      .toString('base64url');
    const privatePem = privateKey.export({ type: 'pkcs8', format: 'pem' }).toString();
    await db.query(
      `insert into audit_checkpoint_keys (kid, algorithm, public_key_pem, private_key_sealed)
       values ($1, 'Ed25519', $2, $3) on conflict (kid) do nothing`,
      [kid, publicPem, this.kek.seal(Buffer.from(privatePem), `audit_checkpoint_key:${kid}`)],
    );
    // Another instance may have created one first: use whichever is newest.
    this.signing = undefined;
    const again = (await db.query(
      `select kid, public_key_pem, private_key_sealed, created_at from audit_checkpoint_keys
        order by created_at desc limit 1`,
    )) as KeyRow[];
    const pem = this.kek.open(again[0].private_key_sealed, `audit_checkpoint_key:${again[0].kid}`);
    this.signing = { kid: again[0].kid, privateKey: createPrivateKey(pem.toString('utf8')) };

    return this.signing;
  }
}

function toCheckpoint(row: CheckpointRow): Checkpoint {
  return {
    organizationId: row.organization_id,
    seq: Number(row.seq),
    hash: row.hash.toString('hex'),
    signedAt: new Date(row.signed_at).toISOString(),
    kid: row.kid,
    signature: row.signature.toString('base64url'),
  };
}
