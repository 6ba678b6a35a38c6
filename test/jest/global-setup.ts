import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import Redis from 'ioredis';
import { Client } from 'pg';

import { MIGRATIONS } from '../../migrations';

import { testDatabaseUrl } from '../support/database-url';
import { RUN_DIR_VARIABLE } from '../support/run-folder';

const CONNECT_TIMEOUT_MS = 5_000;

function adminUrl(url: URL): string {
  const admin = new URL(url.toString());
  admin.pathname = '/postgres';

  return admin.toString();
}

function describeTarget(url: URL): string {
  return `${url.hostname}:${url.port || '5432'}`;
}

/**
 * Makes sure the test database exists before any suite boots a server. Suites never skip for a
 * missing service: when PostgreSQL does not answer, the whole run stops here and says why.
 */
export default async function globalSetup(): Promise<void> {
  const url = new URL(testDatabaseUrl());
  const database = decodeURIComponent(url.pathname.replace(/^\//, ''));
  if (!/^[a-z_][a-z0-9_]*$/.test(database)) {
    throw new Error(
      `TEST_DATABASE_URL must name a plain database (letters, digits, _), got "${database}"`,
    );
  }

  const client = new Client({
    connectionString: adminUrl(url),
    connectionTimeoutMillis: CONNECT_TIMEOUT_MS,
  });
  try {
    await client.connect();
  } catch (error) {
    throw new Error(
      `The end-to-end suites need PostgreSQL at ${describeTarget(url)} (TEST_DATABASE_URL), ` +
        `but it did not answer: ${(error as Error).message}. Start PostgreSQL 15 and run the tests again.`,
      { cause: error },
    );
  }

  try {
    const { rows } = await client.query('select 1 from pg_database where datname = $1', [database]);
    if (rows.length > 0 && (await migratedByAnotherBuild(url)).length > 0) {
      // Another checkout's newer migrations are in it: this build's servers would refuse it.
      process.stderr.write(
        `The test database ${database} holds migrations this checkout does not have; recreating it.\n`,
      );
      await client.query(`drop database "${database}" with (force)`);
      rows.length = 0;
    }
    if (rows.length === 0) {
      await client.query(`create database "${database}"`).catch((error: { code?: string }) => {
        // Two runs starting together may both try; the loser finds it already there.
        if (error.code !== '42P04') {
          throw error;
        }
      });
    }
  } finally {
    await client.end();
  }

  await requireRedis();

  // Workers start after this and inherit the variable; global-teardown.ts reads the folder.
  process.env[RUN_DIR_VARIABLE] = mkdtempSync(join(tmpdir(), 'parley-test-run-'));
}

/** Names in the test database's migrations table that this checkout does not know. */
async function migratedByAnotherBuild(url: URL): Promise<string[]> {
  const client = new Client({
    connectionString: url.toString(),
    connectionTimeoutMillis: CONNECT_TIMEOUT_MS,
  });
  await client.connect();
  try {
    const table = await client.query("select to_regclass('public.schema_migrations') as name");
    if (!table.rows[0].name) {
      return [];
    }
    const known = new Set(MIGRATIONS.map((migration) => migration.name));
    const applied = await client.query<{ name: string }>('select name from schema_migrations');

    return applied.rows.map((row) => row.name).filter((name) => !known.has(name));
  } finally {
    await client.end();
  }
}

/** The suites that run several instances need Redis; without it the run stops here and says so. */
async function requireRedis(): Promise<void> {
  const target = process.env.TEST_REDIS_URL ?? 'redis://127.0.0.1:6379';
  const redis = new Redis(target, {
    lazyConnect: true,
    connectTimeout: CONNECT_TIMEOUT_MS,
    maxRetriesPerRequest: 0,
    retryStrategy: () => null,
  });
  redis.on('error', () => undefined);
  try {
    await redis.connect();
    await redis.ping();
  } catch (error) {
    throw new Error(
      `The end-to-end suites need Redis at ${new URL(target).host} (TEST_REDIS_URL), but it did ` +
        `not answer: ${(error as Error).message.replace(/\.$/, '')}. Start Redis 7 and run the tests again.`,
      { cause: error },
    );
  } finally {
    redis.disconnect();
  }
}
