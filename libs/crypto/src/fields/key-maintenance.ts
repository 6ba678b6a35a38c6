import {
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
  fieldMarksOf,
  isProtectedClass,
  RepeatingJob,
  repeatEvery,
} from '@parley/core';
import { TenantTransactions } from '@parley/database';

import { SealedValueError } from '../aead';
import { parseEnvelope } from '../envelope';
import { DataKeys, Queryable } from './data-keys';
import { FieldCipher } from './field-cipher';

/** One table's sealed columns, as the rewrap walks them. */
export interface SealedTable {
  table: string;
  columns: string[];
}

export interface RewrapProgress {
  organizationId: string;
  table: string;
  /** Rows read so far in this table, values re-sealed, and values that could not be opened. */
  scanned: number;
  resealed: number;
  unreadable: number;
}

export interface RewrapReport {
  organizations: number;
  scanned: number;
  resealed: number;
  /** Values that no longer open (altered, moved, or under a retired version): never re-sealed. */
  unreadable: number;
  /**
   * Keys rotated too recently to retire: a running instance may still seal with their previous
   * version for up to DATA_KEY_CACHE_SECONDS.
   */
  waiting: number;
  /** Values still sealed under a version older than their key's current one. */
  remaining: number;
  /** Whether old versions were retired (only when `retire` was asked and nothing remained). */
  retired: boolean;
  seconds: number;
}

const FIRST_RUN_DELAY_MS = 5 * 60_000;
const INTERVAL_MS = 60 * 60_000;
const NIL_UUID = '00000000-0000-0000-0000-000000000000';
/** Beyond DATA_KEY_CACHE_SECONDS, how long after a rotation its previous version may retire. */
const RETIRE_MARGIN_SECONDS = 5;

/**
 * Key maintenance: scheduled data-key rotation (DATA_KEY_ROTATION_DAYS), the background rewrap
 * that re-seals old values under their key's current version in small batches, and retiring
 * old versions once nothing needs them. Batches lock rows with SKIP LOCKED, so traffic never
 * waits for the rewrap; a row a request holds is simply picked up by the next pass.
 */
@Injectable()
export class KeyMaintenance implements OnApplicationBootstrap, OnApplicationShutdown {
  private readonly logger = new Logger(KeyMaintenance.name);
  private job: RepeatingJob | undefined;

  constructor(
    private readonly dataSource: DataSource,
    private readonly transactions: TenantTransactions,
    private readonly keys: DataKeys,
    private readonly cipher: FieldCipher,
    private readonly clock: Clock,
    @Inject(APP_CONFIG) private readonly config: AppConfig,
  ) {}

  onApplicationBootstrap(): void {
    if (this.config.dataKeyRotationDays === 0) {
      return;
    }
    this.job = repeatEvery({
      firstDelayMs: FIRST_RUN_DELAY_MS,
      intervalMs: INTERVAL_MS,
      work: () => this.scheduled(),
      onError: (error) => this.logger.error({ err: error }, 'scheduled key maintenance failed'),
    });
  }

  async onApplicationShutdown(): Promise<void> {
    await this.job?.stop();
  }

  /** Every table with sealed columns, from the classification marks of the entities. */
  sealedTables(): SealedTable[] {
    const tables: SealedTable[] = [];
    for (const metadata of this.dataSource.entityMetadatas) {
      if (typeof metadata.target !== 'function') {
        continue;
      }
      const columns: string[] = [];
      for (const [property, mark] of fieldMarksOf(metadata.target)) {
        const protection = mark.protection ?? (isProtectedClass(mark.class) ? 'sealed' : 'none');
        const column = metadata.findColumnWithPropertyName(property);
        if (protection === 'sealed' && column) {
          columns.push(column.databaseName);
        }
      }
      if (columns.length > 0) {
        tables.push({ table: metadata.tableName, columns });
      }
    }

    return tables;
  }

  /**
   * Key-encryption-key rotation: re-wraps every data key that the current key-encryption key did
   * not wrap. The data keys, and every value they seal, stay as they are.
   */
  async rewrapUnderCurrentKek(organizationIds?: string[]): Promise<number> {
    let rewrapped = 0;
    for (const organizationId of organizationIds ?? (await this.organizationIds())) {
      rewrapped += await this.transactions.run(organizationId, (manager) =>
        this.keys.rewrapUnderCurrentKek(manager, organizationId),
      );
    }

    return rewrapped;
  }

  async organizationIds(): Promise<string[]> {
    const rows: { id: string }[] = await this.dataSource.query(
      'select parley_organization_ids() as id',
    );

    return rows.map((row) => row.id);
  }

  /** `npm run keys:rotate-data`: a new current version for every data key of every organization. */
  async rotateAll(organizationIds?: string[]): Promise<number> {
    let rings = 0;
    for (const organizationId of organizationIds ?? (await this.organizationIds())) {
      rings += await this.transactions.run(organizationId, (manager) =>
        this.keys.rotateAll(manager, organizationId),
      );
    }

    return rings;
  }

  /**
   * Re-seals every value whose key has a newer version, one batch per transaction; with
   * `retire`, then raises each key's minimum version so the old versions stop opening and their
   * material is deleted, but only if nothing still needs them.
   */
  async rewrap(
    options: {
      organizationIds?: string[];
      retire?: boolean;
      onProgress?: (progress: RewrapProgress) => void;
    } = {},
  ): Promise<RewrapReport> {
    const started = Date.now();
    const report: RewrapReport = {
      organizations: 0,
      scanned: 0,
      resealed: 0,
      unreadable: 0,
      waiting: 0,
      remaining: 0,
      retired: false,
      seconds: 0,
    };
    const organizationIds = options.organizationIds ?? (await this.organizationIds());
    let retiredEverywhere = options.retire === true;
    for (const organizationId of organizationIds) {
      report.organizations += 1;
      for (const table of this.sealedTables()) {
        const progress = await this.rewrapTable(organizationId, table, options.onProgress);
        report.scanned += progress.scanned;
        report.resealed += progress.resealed;
        report.unreadable += progress.unreadable;
      }
      const remaining = await this.countOutdated(organizationId);
      report.remaining += remaining;
      if (options.retire) {
        if (remaining === 0) {
          const cutoff = new Date(
            this.clock.nowMs() - (this.config.dataKeyCacheSeconds + RETIRE_MARGIN_SECONDS) * 1000,
          );
          const retired = await this.transactions.run(organizationId, (manager) =>
            this.keys.retireOldVersions(manager, organizationId, cutoff),
          );
          report.waiting += retired.waiting;
          if (retired.waiting > 0) {
            retiredEverywhere = false;
          }
        } else {
          retiredEverywhere = false;
        }
      }
    }
    report.retired = retiredEverywhere;
    report.seconds = (Date.now() - started) / 1000;
    this.logger.log({ ...report }, 'rewrap finished');

    return report;
  }

  /**
   * How many sealed values of the organization are under an older version than their key's
   * current one, and could still be re-sealed (a value under a retired version cannot).
   */
  async countOutdated(organizationId: string): Promise<number> {
    return this.transactions.run(organizationId, async (manager) => {
      const versions = this.versionsLookup(manager, organizationId);
      let outdated = 0;
      for (const { table, columns } of this.sealedTables()) {
        let after = NIL_UUID;
        for (;;) {
          const rows: Record<string, string | null>[] = await manager.query(
            `select id, ${columns.join(', ')} from ${table}
              where organization_id = $1 and id > $2 order by id limit 1000`,
            [organizationId, after],
          );
          for (const row of rows) {
            for (const column of columns) {
              const value = row[column];
              if (typeof value === 'string') {
                const envelope = parseEnvelope(value);
                const ring = await versions(envelope.keyId);
                if (envelope.version < ring.current && envelope.version >= ring.min) {
                  outdated += 1;
                }
              }
            }
          }
          if (rows.length < 1000) {
            break;
          }
          after = rows[rows.length - 1].id as string;
        }
      }

      return outdated;
    });
  }

  private async scheduled(): Promise<void> {
    const olderThan = new Date(this.clock.nowMs() - this.config.dataKeyRotationDays * 86_400_000);
    let rotated = 0;
    for (const organizationId of await this.organizationIds()) {
      rotated += await this.transactions.run(organizationId, (manager) =>
        this.keys.rotateAll(manager, organizationId, { olderThan }),
      );
    }
    if (rotated > 0) {
      this.logger.log({ rings: rotated }, 'scheduled data-key rotation');
      await this.rewrap();
    }
  }

  private async rewrapTable(
    organizationId: string,
    { table, columns }: SealedTable,
    onProgress?: (progress: RewrapProgress) => void,
  ): Promise<RewrapProgress> {
    const progress: RewrapProgress = {
      organizationId,
      table,
      scanned: 0,
      resealed: 0,
      unreadable: 0,
    };
    let after = NIL_UUID;
    for (;;) {
      const batch = await this.transactions.run(organizationId, async (manager) => {
        const current = this.versionLookup(manager, organizationId);
        const rows: Record<string, string | null>[] = await manager.query(
          `select id, ${columns.join(', ')} from ${table}
            where organization_id = $1 and id > $2 order by id limit $3
            for update skip locked`,
          [organizationId, after, this.config.rewrapBatchSize],
        );
        let resealed = 0;
        let unreadable = 0;
        for (const row of rows) {
          const changes: Record<string, string> = {};
          for (const column of columns) {
            const value = row[column];
            if (typeof value !== 'string') {
              continue;
            }
            const binding = { organizationId, table, column, rowId: row.id as string };
            try {
              const fresh = await this.cipher.reseal(manager, binding, value, current);
              if (fresh !== null) {
                changes[column] = fresh;
              }
            } catch (error) {
              if (!(error instanceof SealedValueError)) {
                throw error;
              }
              // One value that no longer opens must not stop the rest from being re-sealed.
              unreadable += 1;
              this.logger.warn(
                { table, column, rowId: row.id, code: error.code },
                'rewrap skipped a value that does not open',
              );
            }
          }
          const names = Object.keys(changes);
          if (names.length > 0) {
            await manager.query(
              `update ${table} set ${names.map((name, i) => `${name} = $${i + 2}`).join(', ')}
                where id = $1`,
              [row.id, ...names.map((name) => changes[name])],
            );
            resealed += names.length;
          }
        }

        return { rows, resealed, unreadable };
      });
      progress.scanned += batch.rows.length;
      progress.resealed += batch.resealed;
      progress.unreadable += batch.unreadable;
      onProgress?.({ ...progress });
      if (batch.rows.length < this.config.rewrapBatchSize) {
        break;
      }
      after = batch.rows[batch.rows.length - 1].id as string;
    }
    // Rows a request held were skipped; the count of outdated values after the pass shows them.
    return progress;
  }

  /** The current version of each ring, read once per ring per transaction. */
  private versionLookup(db: Queryable, organizationId: string) {
    const versions = this.versionsLookup(db, organizationId);

    return async (keyId: string): Promise<number> => (await versions(keyId)).current;
  }

  /** The current and minimum version of each ring, read once per ring per transaction. */
  private versionsLookup(db: Queryable, organizationId: string) {
    const versions = new Map<string, Promise<{ current: number; min: number }>>();

    return (keyId: string): Promise<{ current: number; min: number }> => {
      let version = versions.get(keyId);
      if (!version) {
        version = this.keys.versionsOf(db, organizationId, keyId).catch((error: unknown) => {
          // A destroyed (or unknown) key's values can never be re-sealed; they count as current.
          if (
            error instanceof SealedValueError &&
            (error.code === 'key_destroyed' || error.code === 'key_unavailable')
          ) {
            return { current: 0, min: 0 };
          }
          throw error;
        });
        versions.set(keyId, version);
      }

      return version;
    };
  }
}
