import { randomBytes, randomUUID } from 'node:crypto';

import { Inject, Injectable } from '@nestjs/common';

import { APP_CONFIG, AppConfig, Clock, RequestContext, declareTable } from '@parley/core';

import { SealedValueError } from '../aead';
import { KeyProvider } from '../key-encryption';

declareTable(
  'keyring.data_keys',
  {
    purpose: 'Data key rings: which key seals whose fields, its current and minimum version.',
    retention: "Until the organization is deleted; a contact's ring until the contact is erased.",
  },
  Object.fromEntries(
    [
      'id',
      'organization_id',
      'purpose',
      'subject_id',
      'current_version',
      'min_version',
      'created_at',
      'rotated_at',
      'destroyed_at',
    ].map((column) => [column, { class: 'internal' as const }]),
  ),
);
declareTable(
  'keyring.data_key_versions',
  {
    purpose: 'Each version of each data key, wrapped by the key-encryption key.',
    retention: 'Until the version is retired or its ring destroyed.',
  },
  {
    organization_id: { class: 'internal' },
    key_id: { class: 'internal' },
    version: { class: 'internal' },
    wrapped_key: { class: 'restricted', protection: 'kek-sealed' },
    kek_id: { class: 'internal' },
    created_at: { class: 'internal' },
  },
);

/** What a data key protects: an organization's fields, one contact's fields, or blind indexes. */
export type KeyPurpose = 'organization' | 'contact' | 'blind-index';

/** Anything that runs SQL in the caller's transaction (an EntityManager or a QueryRunner). */
export interface Queryable {
  query(sql: string, parameters?: unknown[]): Promise<unknown>;
}

export interface KeyRing {
  id: string;
  organizationId: string;
  purpose: KeyPurpose;
  subjectId: string | null;
  currentVersion: number;
  minVersion: number;
  destroyed: boolean;
}

export interface DataKey {
  keyId: string;
  version: number;
  material: Buffer;
}

interface RingRow {
  id: string;
  organization_id: string;
  purpose: KeyPurpose;
  subject_id: string | null;
  current_version: number;
  min_version: number;
  destroyed_at: Date | null;
}

interface VersionRow extends RingRow {
  wrapped_key: string | null;
}

interface Cached<T> {
  value: T;
  organizationId: string;
  until: number;
}

const RING_COLUMNS =
  'id, organization_id, purpose, subject_id, current_version, min_version, destroyed_at';

/**
 * Data keys: random AES-256 keys, each in a ring of versions, stored only wrapped by the
 * key-encryption key, in the `keyring` schema under row-level security. A ring's current version
 * seals new values; older versions down to the ring's minimum still open old ones. Unwrapped keys
 * are kept in memory for DATA_KEY_CACHE_SECONDS, and always checked against the organization
 * they belong to before use.
 *
 * Queries run through the caller's own transaction, so they see the caller's tenant only.
 */
@Injectable()
export class DataKeys {
  private readonly rings = new Map<string, Cached<KeyRing>>();
  private readonly materials = new Map<string, Cached<Buffer>>();

  constructor(
    private readonly provider: KeyProvider,
    private readonly clock: Clock,
    @Inject(APP_CONFIG) private readonly config: AppConfig,
    private readonly context: RequestContext,
  ) {}

  /**
   * A cached key is used only inside a transaction of the organization it belongs to: the cache
   * must not reach what row-level security would hide. Outside any tenant context the cache is
   * not used at all.
   */
  private cacheUsable(organizationId: string): boolean {
    return this.context.organizationId === organizationId;
  }

  /** The key that seals new values for this purpose and subject, created on first use. */
  async current(
    db: Queryable,
    organizationId: string,
    purpose: KeyPurpose,
    subjectId: string | null = null,
  ): Promise<DataKey> {
    const ring = await this.ring(db, organizationId, purpose, subjectId);
    if (ring.destroyed) {
      throw new SealedValueError(
        'the data key of this subject has been destroyed',
        'key_destroyed',
      );
    }

    return {
      keyId: ring.id,
      version: ring.currentVersion,
      material: await this.material(db, organizationId, ring.id, ring.currentVersion),
    };
  }

  /** The key that opens a value sealed under `keyId` at `version`, or why it cannot. */
  async forOpening(
    db: Queryable,
    organizationId: string,
    keyId: string,
    version: number,
  ): Promise<Buffer> {
    return this.material(db, organizationId, keyId, version);
  }

  /** The current and minimum version of the ring `keyId`, read fresh (the rewrap asks once per ring). */
  async versionsOf(
    db: Queryable,
    organizationId: string,
    keyId: string,
  ): Promise<{ current: number; min: number }> {
    const rows = (await db.query(
      `select current_version, min_version, destroyed_at from keyring.data_keys
        where organization_id = $1 and id = $2`,
      [organizationId, keyId],
    )) as { current_version: number; min_version: number; destroyed_at: Date | null }[];
    if (!rows[0]) {
      throw new SealedValueError('no data key of this organization has this id', 'key_unavailable');
    }
    if (rows[0].destroyed_at) {
      throw new SealedValueError(
        'the data key of this subject has been destroyed',
        'key_destroyed',
      );
    }

    return { current: rows[0].current_version, min: rows[0].min_version };
  }

  async currentVersionOf(db: Queryable, organizationId: string, keyId: string): Promise<number> {
    return (await this.versionsOf(db, organizationId, keyId)).current;
  }

  /** A subject's ring, if it has one. */
  async find(
    db: Queryable,
    organizationId: string,
    purpose: KeyPurpose,
    subjectId: string | null,
  ): Promise<KeyRing | undefined> {
    const rows = (await db.query(
      `select ${RING_COLUMNS} from keyring.data_keys
        where organization_id = $1 and purpose = $2 and subject_id is not distinct from $3::uuid`,
      [organizationId, purpose, subjectId],
    )) as RingRow[];

    return rows[0] ? toRing(rows[0]) : undefined;
  }

  /**
   * Crypto-shredding: deletes every version of a subject's key and marks its ring destroyed, so
   * nothing sealed under it opens again, in this database or in any copy of it that lacks the
   * keyring. Returns whether there was a key to destroy.
   */
  async destroy(db: Queryable, organizationId: string, purpose: KeyPurpose, subjectId: string) {
    const rows = (await db.query(
      `with ring as (
         update keyring.data_keys set destroyed_at = $4
          where organization_id = $1 and purpose = $2 and subject_id = $3 and destroyed_at is null
          returning id
       ), gone as (
         delete from keyring.data_key_versions v using ring where v.key_id = ring.id returning v.version
       )
       select ring.id, (select count(*) from gone)::int as versions from ring`,
      [organizationId, purpose, subjectId, this.clock.now()],
    )) as { id: string; versions: number }[];
    this.forgetRing(organizationId, purpose, subjectId);
    for (const row of rows) {
      this.forgetKey(row.id);
    }

    return rows.length > 0;
  }

  /**
   * Makes a new version current for new writes in every ring of the organization (blind-index
   * rings excepted: their values are looked up by, so they never change). Returns how many
   * rings were rotated.
   */
  async rotateAll(
    db: Queryable,
    organizationId: string,
    options: { olderThan?: Date; batch?: number } = {},
  ): Promise<number> {
    const batch = options.batch ?? 500;
    let rotated = 0;
    let after = '00000000-0000-0000-0000-000000000000';
    for (;;) {
      // The age test is evaluated again after the row lock is granted, so two instances running
      // the schedule at once rotate each ring once.
      const rings = (await db.query(
        `select ${RING_COLUMNS} from keyring.data_keys
          where organization_id = $1 and purpose <> 'blind-index' and destroyed_at is null and id > $2
            and ($4::timestamptz is null or coalesce(rotated_at, created_at) < $4)
          order by id limit $3 for update`,
        [organizationId, after, batch, options.olderThan ?? null],
      )) as RingRow[];
      for (const row of rings) {
        await this.addVersion(db, toRing(row));
        rotated += 1;
      }
      if (rings.length < batch) {
        return rotated;
      }
      after = rings[rings.length - 1].id;
    }
  }

  /** Rotates one ring (the organization's own, by default). */
  async rotate(
    db: Queryable,
    organizationId: string,
    purpose: Exclude<KeyPurpose, 'blind-index'> = 'organization',
    subjectId: string | null = null,
  ): Promise<number> {
    const ring = await this.ring(db, organizationId, purpose, subjectId, true);

    return this.addVersion(db, ring);
  }

  /**
   * Retires every version below the current one: they stop opening values, and their wrapped
   * material is deleted. The caller must first have re-sealed every value under them (the
   * rewrap does, and checks).
   */
  async retireOldVersions(
    db: Queryable,
    organizationId: string,
    rotatedBefore: Date,
  ): Promise<{ deleted: number; waiting: number }> {
    // A ring rotated after `rotatedBefore` may still be cached by a running instance at its
    // previous version and sealed under it: deleting that version now would lose those values.
    const rows = (await db.query(
      `with raised as (
         update keyring.data_keys set min_version = current_version
          where organization_id = $1 and min_version < current_version and destroyed_at is null
            and (rotated_at is null or rotated_at < $2)
          returning id, min_version
       ), gone as (
         delete from keyring.data_key_versions v using raised
          where v.key_id = raised.id and v.version < raised.min_version
          returning v.key_id
       )
       select key_id,
              (select count(*)::int from keyring.data_keys
                where organization_id = $1 and min_version < current_version
                  and destroyed_at is null and rotated_at >= $2) as waiting
         from gone
       union all
       select null, (select count(*)::int from keyring.data_keys
                      where organization_id = $1 and min_version < current_version
                        and destroyed_at is null and rotated_at >= $2)`,
      [organizationId, rotatedBefore],
    )) as { key_id: string | null; waiting: number }[];
    this.rings.clear();
    let deleted = 0;
    for (const row of rows) {
      if (row.key_id) {
        deleted += 1;
        this.forgetKey(row.key_id);
      }
    }

    return { deleted, waiting: rows[rows.length - 1]?.waiting ?? 0 };
  }

  /**
   * Key-encryption-key rotation: re-wraps every data key version of the organization that is
   * not wrapped by the current key-encryption key. Data keys and the values they seal do not
   * change. Returns how many were re-wrapped.
   */
  async rewrapUnderCurrentKek(db: Queryable, organizationId: string): Promise<number> {
    const current = this.provider.currentKekId();
    const rows = (await db.query(
      `select key_id, version, wrapped_key from keyring.data_key_versions
        where organization_id = $1 and kek_id <> $2 for update`,
      [organizationId, current],
    )) as { key_id: string; version: number; wrapped_key: string }[];
    for (const row of rows) {
      const context = wrapContext(organizationId, row.key_id, row.version);
      const material = await this.provider.unwrap(row.wrapped_key, context);
      await db.query(
        `update keyring.data_key_versions set wrapped_key = $3, kek_id = $4
          where key_id = $1 and version = $2`,
        [row.key_id, row.version, await this.provider.wrap(material, context), current],
      );
    }

    return rows.length;
  }

  /** Drops every cached key and ring (after a rotation done by another process, say). */
  clearCache(): void {
    this.rings.clear();
    this.materials.clear();
  }

  private async ring(
    db: Queryable,
    organizationId: string,
    purpose: KeyPurpose,
    subjectId: string | null,
    fresh = false,
  ): Promise<KeyRing> {
    const cacheKey = `${organizationId}|${purpose}|${subjectId ?? ''}`;
    const cached = this.rings.get(cacheKey);
    if (
      !fresh &&
      cached &&
      cached.until > Date.now() &&
      cached.organizationId === organizationId &&
      this.cacheUsable(organizationId)
    ) {
      return cached.value;
    }
    const ring =
      (await this.find(db, organizationId, purpose, subjectId)) ??
      (await this.create(db, organizationId, purpose, subjectId));
    this.remember(this.rings, cacheKey, organizationId, ring);

    return ring;
  }

  /** A new ring with version 1; when another transaction creates it first, that one wins. */
  private async create(
    db: Queryable,
    organizationId: string,
    purpose: KeyPurpose,
    subjectId: string | null,
  ): Promise<KeyRing> {
    const id = randomUUID();
    const wrapped = await this.provider.wrap(randomBytes(32), wrapContext(organizationId, id, 1));
    await db.query(
      `with ring as (
         insert into keyring.data_keys (id, organization_id, purpose, subject_id, created_at)
         values ($1, $2, $3, $4, $5)
         on conflict do nothing
         returning id, organization_id
       )
       insert into keyring.data_key_versions (organization_id, key_id, version, wrapped_key, kek_id, created_at)
       select organization_id, id, 1, $6, $7, $5 from ring`,
      [
        id,
        organizationId,
        purpose,
        subjectId,
        this.clock.now(),
        wrapped,
        this.provider.currentKekId(),
      ],
    );
    const ring = await this.find(db, organizationId, purpose, subjectId);
    if (!ring) {
      throw new Error('A data key ring could not be created');
    }

    return ring;
  }

  private async addVersion(db: Queryable, ring: KeyRing): Promise<number> {
    const version = ring.currentVersion + 1;
    const wrapped = await this.provider.wrap(
      randomBytes(32),
      wrapContext(ring.organizationId, ring.id, version),
    );
    await db.query(
      `with added as (
         insert into keyring.data_key_versions (organization_id, key_id, version, wrapped_key, kek_id, created_at)
         values ($1, $2, $3, $4, $5, $6)
         returning key_id, version
       )
       update keyring.data_keys k set current_version = added.version, rotated_at = $6
         from added where k.id = added.key_id`,
      [
        ring.organizationId,
        ring.id,
        version,
        wrapped,
        this.provider.currentKekId(),
        this.clock.now(),
      ],
    );
    this.forgetRing(ring.organizationId, ring.purpose, ring.subjectId);

    return version;
  }

  private async material(
    db: Queryable,
    organizationId: string,
    keyId: string,
    version: number,
  ): Promise<Buffer> {
    const cacheKey = `${keyId}|${version}`;
    const cached = this.materials.get(cacheKey);
    if (cached && cached.until > Date.now() && this.cacheUsable(organizationId)) {
      if (cached.organizationId !== organizationId) {
        throw new SealedValueError(
          'no data key of this organization has this id',
          'key_unavailable',
        );
      }

      return cached.value;
    }
    const rows = (await db.query(
      `select k.${RING_COLUMNS.split(', ').join(', k.')}, v.wrapped_key
         from keyring.data_keys k
         left join keyring.data_key_versions v on v.key_id = k.id and v.version = $3
        where k.organization_id = $1 and k.id = $2`,
      [organizationId, keyId, version],
    )) as VersionRow[];
    const row = rows[0];
    if (!row) {
      throw new SealedValueError('no data key of this organization has this id', 'key_unavailable');
    }
    if (row.destroyed_at) {
      throw new SealedValueError(
        'the data key of this subject has been destroyed',
        'key_destroyed',
      );
    }
    if (version < row.min_version) {
      throw new SealedValueError(
        `key version ${version} is retired (the minimum is ${row.min_version})`,
        'key_version_retired',
      );
    }
    if (!row.wrapped_key) {
      throw new SealedValueError(`the data key has no version ${version}`, 'key_unavailable');
    }
    const material = await this.provider.unwrap(
      row.wrapped_key,
      wrapContext(organizationId, keyId, version),
    );
    this.remember(this.materials, cacheKey, organizationId, material);

    return material;
  }

  private remember<T>(map: Map<string, Cached<T>>, key: string, organizationId: string, value: T) {
    const seconds = this.config.dataKeyCacheSeconds;
    if (seconds <= 0) {
      return;
    }
    // A bounded cache: when full, the oldest entries go first.
    if (map.size >= 10_000) {
      const oldest = map.keys().next().value;
      if (oldest !== undefined) {
        map.delete(oldest);
      }
    }
    map.set(key, { value, organizationId, until: Date.now() + seconds * 1000 });
  }

  private forgetRing(organizationId: string, purpose: KeyPurpose, subjectId: string | null): void {
    this.rings.delete(`${organizationId}|${purpose}|${subjectId ?? ''}`);
  }

  private forgetKey(keyId: string): void {
    for (const key of this.materials.keys()) {
      if (key.startsWith(`${keyId}|`)) {
        this.materials.delete(key);
      }
    }
  }
}

/** What a wrapped data key is bound to: it opens only as this version of this organization's key. */
function wrapContext(organizationId: string, keyId: string, version: number): string {
  return `data-key|${organizationId}|${keyId}|${version}`;
}

function toRing(row: RingRow): KeyRing {
  return {
    id: row.id,
    organizationId: row.organization_id,
    purpose: row.purpose,
    subjectId: row.subject_id,
    currentVersion: row.current_version,
    minVersion: row.min_version,
    destroyed: row.destroyed_at !== null,
  };
}
