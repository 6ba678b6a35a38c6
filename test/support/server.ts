import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';

import { NestFastifyApplication } from '@nestjs/platform-fastify';

import { AppConfig, loadConfig, loggerParams } from '@parley/core';

import { createApp } from '../../apps/api/src/create-app';

import { ApiClient } from './api-client';
import { testDatabaseUrl } from './database-url';
import { LogCapture } from './log-capture';
import { RunLogFile, recordSocketSends } from './run-record';
import { TEST_TLS_CERT_FILE, TEST_TLS_KEY_FILE } from './tls';

export interface StartServerOptions {
  /** Run on embedded PGlite (no DATABASE_URL) instead of the shared test PostgreSQL. */
  embedded?: boolean;
  /** Reuse a data folder (to boot twice on the same one); it is then left in place on close. */
  dataDir?: string;
  /** Extra configuration variables; they override the test defaults. */
  env?: Record<string, string | undefined>;
  /** Serve HTTPS and WSS with the self-signed certificate in test/fixtures/tls/. */
  tls?: boolean;
}

export interface TestServer {
  /** `https://127.0.0.1:<port>` when the server has a certificate, `http://` otherwise. */
  baseUrl: string;
  /** The certificate clients must trust when the server speaks TLS (its own, self-signed). */
  ca: string | undefined;
  app: NestFastifyApplication;
  config: AppConfig;
  dataDir: string;
  /** Everything the server logged (shared with any server of the same file still running). */
  logs: LogCapture;
  api: ApiClient;
  /** Every password sent and token received through `api`; none may appear in the logs. */
  secrets: Set<string>;
  close(): Promise<void>;
}

/** A fresh folder for one server's embedded database and generated development secrets. */
export function temporaryDataDir(): string {
  return mkdtempSync(join(tmpdir(), 'parley-test-'));
}

/**
 * nestjs-pino 5.2 builds one pino-http instance per process, on first use, and keeps it: a second
 * server booted in the same test file would log into the first one's capture, at its level.
 * Before a server boots alone, the library's own test-only reset (not exported from its index)
 * is called and the new root logger is built at once with this server's settings, so nothing in
 * between logs into a missing logger. Servers running side by side in one file cannot be told
 * apart by nestjs-pino, so they share one capture and each one's log check reads all of it.
 */
async function freshNestPino(config: AppConfig, logs: LogCapture): Promise<void> {
  const directory = dirname(require.resolve('nestjs-pino'));
  const pinoLogger = (await import(join(directory, 'PinoLogger.js'))) as {
    __resetOutOfContextForTests?: () => void;
  };
  const rootLogger = (await import(join(directory, 'rootLogger.js'))) as {
    ensureRootLogger?: (params: unknown) => unknown;
  };
  if (
    typeof pinoLogger.__resetOutOfContextForTests !== 'function' ||
    typeof rootLogger.ensureRootLogger !== 'function'
  ) {
    throw new Error(
      'nestjs-pino changed its test hooks; update freshNestPino in test/support/server.ts',
    );
  }
  pinoLogger.__resetOutOfContextForTests();
  rootLogger.ensureRootLogger(loggerParams(config, logs).pinoHttp);
}

/** A fixed key-encryption key for tests only; never used outside this folder. */
const TEST_KEK = Buffer.alloc(32, 7).toString('base64');

const liveServers = new Set<TestServer>();

/** Boots the real server in this process on a random port of 127.0.0.1. */
export async function startServer(options: StartServerOptions = {}): Promise<TestServer> {
  const ownsDataDir = options.dataDir === undefined;
  const dataDir = options.dataDir ?? temporaryDataDir();
  const env: Record<string, string | undefined> = {
    NODE_ENV: 'test',
    HOST: '127.0.0.1',
    PORT: '0',
    DATABASE_URL: options.embedded ? undefined : testDatabaseUrl(),
    DATABASE_POOL_SIZE: '4',
    PARLEY_DATA_DIR: dataDir,
    LOG_LEVEL: 'debug',
    SIGNUP_ENABLED: 'true',
    DEMO_SEED: 'false',
    OPENAPI_ENABLED: 'true',
    // Ended sessions must stop their tokens at once, not up to a second later.
    SESSION_CACHE_MS: '0',
    // Every test server shares the signing keys in the database, so they share the key that seals them.
    PARLEY_KEK: TEST_KEK,
    // Every suite signs in from 127.0.0.1 into one shared database: the per-address block would
    // soon stop them all. test/brute-force.e2e-spec.ts sets its own limit and client addresses.
    LOGIN_ADDRESS_FAILURE_LIMIT: '1000000',
    // Each suite moves its own clock over one shared database: a server's minute escalation pass
    // would escalate other suites' incidents. test/incidents.e2e-spec.ts runs its passes itself.
    INCIDENT_ESCALATION_CHECK_SECONDS: '0',
    ...(options.tls ? { TLS_CERT_FILE: TEST_TLS_CERT_FILE, TLS_KEY_FILE: TEST_TLS_KEY_FILE } : {}),
    ...options.env,
  };
  const config = loadConfig(env as NodeJS.ProcessEnv);
  const alongside = [...liveServers][0];
  const logs = alongside?.logs ?? new LogCapture(RunLogFile.open());
  recordSocketSends();

  let app: NestFastifyApplication | undefined;
  try {
    if (!alongside) {
      await freshNestPino(config, logs);
    }
    app = await createApp({ config, logDestination: logs });
    await app.listen({ port: 0, host: '127.0.0.1' });
  } catch (error) {
    await app?.close().catch(() => undefined);
    if (ownsDataDir) {
      rmSync(dataDir, { recursive: true, force: true });
    }
    const tail = logs.lines.slice(-20).join('');
    throw new Error(`The test server did not start: ${(error as Error).message}\n${tail}`, {
      cause: error,
    });
  }

  const address = app.getHttpServer().address();
  if (!address || typeof address !== 'object') {
    throw new Error('The test server is not listening on a TCP port');
  }
  const ca = config.tlsCert;
  const baseUrl = `${ca === undefined ? 'http' : 'https'}://127.0.0.1:${address.port}`;
  const secrets = alongside?.secrets ?? new Set<string>();
  const started = app;
  let closed = false;

  const server: TestServer = {
    baseUrl,
    ca,
    app: started,
    config,
    dataDir,
    logs,
    api: new ApiClient(baseUrl, secrets, ca),
    secrets,
    async close() {
      if (closed) {
        return;
      }
      closed = true;
      liveServers.delete(server);
      await started.close();
      if (![...liveServers].some((other) => other.logs === logs)) {
        logs.close();
      }
      if (ownsDataDir) {
        rmSync(dataDir, { recursive: true, force: true });
      }
    },
  };
  liveServers.add(server);

  return server;
}
