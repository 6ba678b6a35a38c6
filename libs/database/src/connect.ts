import { mkdirSync, openSync, readFileSync, rmSync, writeSync, closeSync } from 'node:fs';
import { join } from 'node:path';

import { Logger } from '@nestjs/common';
import { Client } from 'pg';
import { DataSource, DataSourceOptions, MixedList } from 'typeorm';

import { AppConfig } from '@parley/core';

import { EmbeddedSession, embeddedDriver } from './embedded-pool';

export const MIGRATIONS_TABLE = 'schema_migrations';
/** The role every runtime query runs as; migrations create it and grant it only what it needs. */
export const RUNTIME_ROLE = 'parley_app';
const MIGRATION_LOCK_KEY = 7_270_531;

export interface DatabaseSetup {
  entities: MixedList<Function | string>;
  migrations: MixedList<Function | string>;
}

export interface ConnectedDatabase {
  dataSource: DataSource;
  embedded?: EmbeddedSession;
  close(): Promise<void>;
}

function baseOptions(setup: DatabaseSetup): Partial<DataSourceOptions> {
  return {
    type: 'postgres',
    entities: setup.entities,
    migrations: setup.migrations,
    migrationsTableName: MIGRATIONS_TABLE,
    migrationsRun: false,
    synchronize: false,
    installExtensions: false,
    uuidExtension: 'pgcrypto',
    logging: false,
  } as Partial<DataSourceOptions>;
}

/** What a login can do that the runtime must not: bypass row-level security or own tables. */
export async function probeLogin(
  url: string,
): Promise<{ user: string; canBypass: boolean; reason?: string }> {
  const client = new Client({ connectionString: url });
  await client.connect();
  try {
    const { rows } = await client.query<{
      user: string;
      rolsuper: boolean;
      rolbypassrls: boolean;
      owns: boolean;
    }>(
      `select current_user as user, r.rolsuper, r.rolbypassrls,
              exists (select 1 from pg_tables t where t.schemaname = 'public' and pg_has_role(current_user, t.tableowner, 'USAGE')) as owns
         from pg_roles r where r.rolname = current_user`,
    );
    const row = rows[0];
    if (row.rolsuper) {
      return { user: row.user, canBypass: true, reason: 'is a superuser' };
    }
    if (row.rolbypassrls) {
      return { user: row.user, canBypass: true, reason: 'has BYPASSRLS' };
    }
    if (row.owns) {
      return {
        user: row.user,
        canBypass: true,
        reason: 'owns the tables or inherits from their owner',
      };
    }

    return { user: row.user, canBypass: false };
  } finally {
    await client.end();
  }
}

/** Runs pending migrations as the owner; an advisory lock keeps replicas from racing. */
export async function runMigrations(
  url: string,
  setup: DatabaseSetup,
  logger: Logger,
): Promise<string[]> {
  const owner = new DataSource({ ...baseOptions(setup), url, poolSize: 2 } as DataSourceOptions);
  await owner.initialize();
  const lock = owner.createQueryRunner();
  try {
    await lock.connect();
    await lock.query('select pg_advisory_lock($1)', [MIGRATION_LOCK_KEY]);
    const applied = await owner.runMigrations({ transaction: 'each' });
    if (applied.length > 0) {
      logger.log({ migrations: applied.map((m) => m.name) }, 'migrations applied');
    }

    return applied.map((m) => m.name);
  } finally {
    await lock.query('select pg_advisory_unlock($1)', [MIGRATION_LOCK_KEY]).catch(() => undefined);
    await lock.release();
    await owner.destroy();
  }
}

/** Runs a database step and, when it fails, says which variable's connection failed. */
async function named<T>(variable: string, step: () => Promise<T>): Promise<T> {
  try {
    return await step();
  } catch (error) {
    const message = (error as Error).message;
    throw new Error(message.startsWith(variable) ? message : `${variable}: ${message}`, {
      cause: error,
    });
  }
}

function probe(variable: string, url: string): ReturnType<typeof probeLogin> {
  return named(variable, () => probeLogin(url));
}

async function connectPostgres(
  config: AppConfig,
  setup: DatabaseSetup,
  logger: Logger,
): Promise<ConnectedDatabase> {
  const refuseInProduction = (login: {
    user: string;
    canBypass: boolean;
    reason?: string;
  }): void => {
    if (config.production && login.canBypass) {
      throw new Error(
        `DATABASE_URL logs in as "${login.user}", which ${login.reason} and could bypass row-level security; ` +
          `production needs a login role that is only a member of ${RUNTIME_ROLE}`,
      );
    }
  };
  // Checked before migrating, so production refuses a superuser login without touching the
  // database, and again after, when the tables (and so their owner) exist.
  refuseInProduction(await probe('DATABASE_URL', config.databaseUrl as string));
  const migrationVariable =
    config.databaseMigrationUrl === config.databaseUrl ? 'DATABASE_URL' : 'DATABASE_MIGRATION_URL';
  await named(migrationVariable, () =>
    runMigrations(config.databaseMigrationUrl ?? (config.databaseUrl as string), setup, logger),
  );
  const login = await probe('DATABASE_URL', config.databaseUrl as string);
  refuseInProduction(login);
  const extra: Record<string, unknown> = {};
  if (login.canBypass) {
    logger.warn(
      { login: login.user, runtimeRole: RUNTIME_ROLE },
      `DATABASE_URL logs in as a role that ${login.reason}; assuming ${RUNTIME_ROLE} on every connection`,
    );
    extra.options = `-c role=${RUNTIME_ROLE}`;
  }
  const dataSource = new DataSource({
    ...baseOptions(setup),
    url: config.databaseUrl,
    poolSize: config.databasePoolSize,
    extra,
  } as DataSourceOptions);
  await dataSource.initialize();

  return { dataSource, close: () => dataSource.destroy() };
}

function lockDataDir(dir: string): () => void {
  const lockFile = join(dir, 'parley.pid');
  try {
    const pid = Number(readFileSync(lockFile, 'utf8'));
    if (pid && pid !== process.pid) {
      process.kill(pid, 0);
      throw new Error(
        `PARLEY_DATA_DIR ${dir} is in use by process ${pid}; one server per data folder`,
      );
    }
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code !== 'ENOENT' && code !== 'ESRCH') {
      throw error;
    }
  }
  const fd = openSync(lockFile, 'w');
  writeSync(fd, String(process.pid));
  closeSync(fd);

  return () => rmSync(lockFile, { force: true });
}

async function connectEmbedded(
  config: AppConfig,
  setup: DatabaseSetup,
  logger: Logger,
): Promise<ConnectedDatabase> {
  const dir = join(config.dataDir, 'pglite');
  mkdirSync(dir, { recursive: true });
  const unlock = lockDataDir(config.dataDir);
  const session = await EmbeddedSession.open(dir);
  const dataSource = new DataSource({
    ...baseOptions(setup),
    driver: embeddedDriver(session),
    poolSize: 1,
  } as DataSourceOptions);
  await dataSource.initialize();
  const applied = await dataSource.runMigrations({ transaction: 'each' });
  if (applied.length > 0) {
    logger.log({ migrations: applied.map((m) => m.name) }, 'migrations applied');
  }
  // PGlite logs in as a superuser and is one session: assume the runtime role once, for good.
  const release = await session.acquire();
  try {
    await session.run(`set role ${RUNTIME_ROLE}`);
  } finally {
    release();
  }
  logger.log({ dataDir: config.dataDir }, 'embedded PGlite database ready (single instance)');

  return {
    dataSource,
    embedded: session,
    close: async () => {
      // @nestjs/typeorm destroys the data source on shutdown before this runs.
      if (dataSource.isInitialized) {
        await dataSource.destroy();
      }
      await session.db.close();
      unlock();
    },
  };
}

export function connectDatabase(
  config: AppConfig,
  setup: DatabaseSetup,
  logger: Logger,
): Promise<ConnectedDatabase> {
  return config.databaseUrl
    ? connectPostgres(config, setup, logger)
    : connectEmbedded(config, setup, logger);
}
