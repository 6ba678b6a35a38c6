import { ChildProcess, spawn } from 'node:child_process';
import { createHash, randomBytes, randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { AddressInfo, createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { performance } from 'node:perf_hooks';

// The bench reaches the server's own code through the path aliases, which `nest build` rewrites
// into relative requires of dist/libs/*: these are the primitives FieldCipher seals with.
import { CONFIG_SCHEMA } from '@parley/core';
import {
  aesGcmOpen,
  aesGcmSeal,
  envelopeAad,
  formatEnvelope,
  parseEnvelope,
  SealBinding,
} from '@parley/crypto';

import { findUpwards, sleep } from './client-kit';

// The encryption part of scripts/bench.ts: what sealing and opening cost in this process, the
// Parley servers the bench starts itself (with and without BENCH_UNSAFE_NULL_CIPHER) and the
// data-key rotation and rewrap run against the encrypted server's database.

const SEALING_RUNS = 5;

const SEALING_RUN_MS = 1_000;

const SEALING_WARMUP_MS = 200;

const SEALING_BATCH = 64;

const SERVER_START_TIMEOUT_MS = 60_000;

const SERVER_STOP_TIMEOUT_MS = 10_000;

const REWRAP_TIMEOUT_MS = 120_000;

const OUTPUT_TAIL_CHARS = 4_000;

// A fixed key-encryption key: the bench databases keep the signing keys and data keys it wraps
// from one run to the next. It protects nothing but benchmark data.
const BENCH_KEK = createHash('sha256')
  .update('parley bench key-encryption key; protects benchmark data only')
  .digest('base64');

/** The settings both bench servers share; only BENCH_UNSAFE_NULL_CIPHER tells them apart. */
const SERVER_SETTINGS: Record<string, string> = {
  NODE_ENV: 'development',
  HOST: '127.0.0.1',
  LOG_LEVEL: 'warn',
  DEMO_SEED: 'false',
  SIGNUP_ENABLED: 'true',
  PARLEY_KEK: BENCH_KEK,
  RATE_LIMIT_PER_MINUTE: '1000000',
  CREDENTIAL_RATE_LIMIT_PER_MINUTE: '1000000',
  LOGIN_ADDRESS_FAILURE_LIMIT: '1000000',
  SOCKET_EVENTS_PER_SECOND: '100000',
  SOCKET_EVENT_BURST: '100000',
};

const FIELD_TEXT = 'ada.lovelace.1843@analytical-engine.test';

const MESSAGE_SENTENCE =
  'Hello, my order arrived damaged and I would like a replacement or a refund, please. ';

export interface SealingFigure {
  operation: string;
  bytes: number;
  microsecondsPerOperation: number;
  operationsPerSecond: number;
  /** Operations per second of each run; the figure is their median. */
  runs: number[];
}

export interface SealingSettings {
  runs: number;
  runMs: number;
  binding: string;
}

export interface BenchServer {
  name: string;
  url: string;
  databaseUrl: string;
  nullCipher: boolean;
  environment: NodeJS.ProcessEnv;
  stop(): Promise<ServerStop>;
}

export interface ServerStop {
  exitCode: number | null;
  signal: NodeJS.Signals | null;
  /** Whether it had to be killed because it did not stop on SIGTERM. */
  forced: boolean;
}

export interface RewrapResult {
  command: string;
  rotatedKeys: number;
  resealed: number;
  organizations: number;
  rowsRead: number;
  remaining: number;
  /** The rewrap's own time, as keys-data prints it (one decimal). */
  seconds: number;
  valuesPerSecond: number;
  /** The whole command, Nest start and rotation included. */
  wallSeconds: number;
  summary: string;
}

const spawned = new Set<ChildProcess>();

/** Kills whatever this module started and has not stopped yet (the bench's last resort). */
export function killSpawnedProcesses(): void {
  for (const child of spawned) {
    child.kill('SIGKILL');
  }
}

/**
 * Seals and opens, in this process, one short field and one 1 KB message body exactly as
 * FieldCipher does (envelopeAad + aesGcmSeal + formatEnvelope; parseEnvelope + envelopeAad +
 * aesGcmOpen), with the data key already in memory as it is on a warm server.
 */
export function measureSealing(): { settings: SealingSettings; figures: SealingFigure[] } {
  const key = randomBytes(32);
  const keyId = randomUUID();
  const version = 1;
  const organizationId = randomUUID();
  const messageBody = MESSAGE_SENTENCE.repeat(Math.ceil(1024 / MESSAGE_SENTENCE.length)).slice(
    0,
    1024,
  );
  const cases: { name: string; binding: SealBinding; clear: string }[] = [
    {
      name: 'field',
      binding: { organizationId, table: 'contacts', column: 'email', rowId: randomUUID() },
      clear: FIELD_TEXT,
    },
    {
      name: 'message body',
      binding: { organizationId, table: 'messages', column: 'body', rowId: randomUUID() },
      clear: messageBody,
    },
  ];

  const seal = (binding: SealBinding, clear: string): string => {
    const aad = envelopeAad(binding, keyId, version);
    const sealed = aesGcmSeal(key, Buffer.from(clear, 'utf8'), aad);

    return formatEnvelope({ keyId, version, ...sealed });
  };
  const open = (binding: SealBinding, value: string): string => {
    const envelope = parseEnvelope(value);
    const aad = envelopeAad(binding, envelope.keyId, envelope.version);

    return aesGcmOpen(key, envelope.nonce, envelope.ciphertext, envelope.tag, aad).toString('utf8');
  };

  const figures: SealingFigure[] = [];
  for (const { name, binding, clear } of cases) {
    const bytes = Buffer.byteLength(clear, 'utf8');
    const sealed = seal(binding, clear);
    if (open(binding, sealed) !== clear) {
      throw new Error(`sealing ${name}: the opened value differs from the sealed one`);
    }
    figures.push(
      timeOperation(`seal ${name}`, bytes, () => seal(binding, clear)),
      timeOperation(`open ${name}`, bytes, () => open(binding, sealed)),
    );
  }

  return {
    settings: {
      runs: SEALING_RUNS,
      runMs: SEALING_RUN_MS,
      binding: 'organization, table, column, row id, key id and version, as FieldCipher binds',
    },
    figures,
  };
}

function timeOperation(operation: string, bytes: number, run: () => string): SealingFigure {
  const loop = (milliseconds: number) => {
    let operations = 0;
    let length = 0;
    const started = performance.now();
    let elapsed: number;
    do {
      for (let index = 0; index < SEALING_BATCH; index += 1) {
        length += run().length;
      }
      operations += SEALING_BATCH;
      elapsed = performance.now() - started;
    } while (elapsed < milliseconds);
    if (length === 0) {
      throw new Error(`${operation} produced nothing`);
    }

    return (operations / elapsed) * 1000;
  };

  loop(SEALING_WARMUP_MS);
  const runs = Array.from({ length: SEALING_RUNS }, () => loop(SEALING_RUN_MS));
  const perSecond = median(runs);

  return {
    operation,
    bytes,
    microsecondsPerOperation: round(1_000_000 / perSecond, 3),
    operationsPerSecond: Math.round(perSecond),
    runs: runs.map((value) => Math.round(value)),
  };
}

/**
 * The database of the server without encryption: the bench database's name with `_nullcipher`.
 * It cannot share the encrypted server's database: the rewrap re-seals every organization there
 * with the real cipher, and a value the null cipher wrote fails its authentication.
 */
export function nullCipherDatabaseUrl(databaseUrl: string): string {
  const url = new URL(databaseUrl);
  const name = decodeURIComponent(url.pathname.replace(/^\//, ''));
  url.pathname = `/${name}_nullcipher`;

  return url.toString();
}

/**
 * Starts a Parley server from dist/apps/api/src/main.js on a free 127.0.0.1 port, with the
 * bench settings and nothing else inherited from this shell's Parley variables, and waits
 * until GET /health/ready answers 200.
 */
export async function startParleyServer(options: {
  name: string;
  databaseUrl: string;
  nullCipher: boolean;
}): Promise<BenchServer> {
  return launchParleyServer({
    name: options.name,
    databaseUrl: options.databaseUrl,
    nullCipher: options.nullCipher,
    environment: (local) => serverEnvironment(options.databaseUrl, options.nullCipher, local),
  });
}

/**
 * Spawns dist/apps/api/src/main.js with `environment(local)`, where `local` holds the port and
 * the data folder chosen here, and waits until GET /health/ready answers 200; a server that
 * exits, cannot start or is not ready in time is an error that quotes the end of its output.
 */
export async function launchParleyServer(options: {
  name: string;
  databaseUrl: string;
  nullCipher: boolean;
  environment: (local: { PORT: string; PARLEY_DATA_DIR: string }) => NodeJS.ProcessEnv;
}): Promise<BenchServer> {
  const distRoot = dirname(__dirname);
  const mainPath = join(distRoot, 'apps', 'api', 'src', 'main.js');
  const projectRoot = dirname(findUpwards(__dirname, 'package.json'));
  const port = await findFreePort();
  const dataDir = mkdtempSync(join(tmpdir(), `parley-bench-${options.name}-`));
  const environment = options.environment({ PORT: String(port), PARLEY_DATA_DIR: dataDir });
  const url = `http://127.0.0.1:${port}`;

  const child = spawn(process.execPath, [mainPath], {
    cwd: projectRoot,
    env: environment,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  spawned.add(child);
  const stdout = captureTail(child.stdout);
  const stderr = captureTail(child.stderr);
  let spawnError: Error | undefined;
  const exited = new Promise<ServerStop>((resolve) => {
    child.once('exit', (exitCode, signal) => {
      spawned.delete(child);
      resolve({ exitCode, signal, forced: false });
    });
    // A process that could not be spawned may never emit 'exit'.
    child.once('error', (error) => {
      spawnError = error;
      spawned.delete(child);
      resolve({ exitCode: null, signal: null, forced: false });
    });
  });

  let stopping: Promise<ServerStop> | undefined;
  const stop = (): Promise<ServerStop> => {
    stopping ??= (async () => {
      let forced = false;
      if (child.exitCode === null && child.signalCode === null) {
        child.kill('SIGTERM');
        const timer = setTimeout(() => {
          forced = true;
          child.kill('SIGKILL');
        }, SERVER_STOP_TIMEOUT_MS);
        await exited;
        clearTimeout(timer);
      }
      rmSync(dataDir, { recursive: true, force: true });

      return { ...(await exited), forced };
    })();

    return stopping;
  };

  const describeFailure = (reason: string) => {
    const tail = stderr().trim() || stdout().trim() || '(it printed nothing)';

    return new Error(
      `the ${options.name} Parley server (${mainPath}, port ${port}) ${reason}; ` +
        `the end of its output:\n${indent(tail)}`,
    );
  };

  const deadline = performance.now() + SERVER_START_TIMEOUT_MS;
  for (;;) {
    if (spawnError) {
      await stop();
      throw describeFailure(`could not be started: ${spawnError.message}`);
    }
    if (child.exitCode !== null || child.signalCode !== null) {
      const how = await exited;
      await stop();
      throw describeFailure(
        `exited with ${how.signal ? `signal ${how.signal}` : `code ${how.exitCode}`} before it was ready`,
      );
    }
    if (await isReady(url)) {
      break;
    }
    if (performance.now() > deadline) {
      await stop();
      throw describeFailure(`was not ready within ${SERVER_START_TIMEOUT_MS / 1000} s`);
    }
    await sleep(200);
  }

  return {
    name: options.name,
    url,
    databaseUrl: options.databaseUrl,
    nullCipher: options.nullCipher,
    environment,
    stop,
  };
}

/**
 * `node dist/apps/api/src/keys-data.js rotate` with the server's settings: a new version of
 * every data key in the database, then every value re-sealed under it. It reports the rewrap's
 * own time, which excludes the Nest start and the rotation.
 */
export async function runRewrap(server: BenchServer): Promise<RewrapResult> {
  const scriptPath = join(dirname(__dirname), 'apps', 'api', 'src', 'keys-data.js');
  const projectRoot = dirname(findUpwards(__dirname, 'package.json'));
  const environment = { ...server.environment };
  delete environment.PORT;
  const started = performance.now();

  const child = spawn(process.execPath, [scriptPath, 'rotate'], {
    cwd: projectRoot,
    env: environment,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  spawned.add(child);
  let output = '';
  child.stdout.setEncoding('utf8');
  child.stdout.on('data', (chunk: string) => {
    output += chunk;
  });
  const stderr = captureTail(child.stderr);

  const result = await new Promise<{ code: number | null; signal: NodeJS.Signals | null }>(
    (resolve, reject) => {
      const timer = setTimeout(() => {
        child.kill('SIGKILL');
        reject(new Error(`keys-data rotate did not finish within ${REWRAP_TIMEOUT_MS / 1000} s`));
      }, REWRAP_TIMEOUT_MS);
      child.once('error', (error) => {
        clearTimeout(timer);
        reject(error);
      });
      child.once('exit', (code, signal) => {
        clearTimeout(timer);
        resolve({ code, signal });
      });
    },
  ).finally(() => spawned.delete(child));
  const wallSeconds = (performance.now() - started) / 1000;

  const summary =
    /Re-sealed (\d+) values in (\d+) organizations? \((\d+) rows read, ([\d.]+) s\); (\d+) still under an old version\./.exec(
      output,
    );
  if (result.code !== 0 || !summary) {
    const tail = `${output.slice(-OUTPUT_TAIL_CHARS)}\n${stderr()}`.trim() || '(nothing)';
    throw new Error(
      `keys-data rotate ended with ${result.signal ? `signal ${result.signal}` : `code ${result.code}`}` +
        `${summary ? '' : ' without its "Re-sealed ..." line'}; the end of its output:\n${indent(tail)}`,
    );
  }

  const rotated = /Rotated (\d+) data keys/.exec(output);
  const resealed = Number(summary[1]);
  const seconds = Number(summary[4]);

  return {
    command: 'node dist/apps/api/src/keys-data.js rotate',
    rotatedKeys: rotated ? Number(rotated[1]) : Number.NaN,
    resealed,
    organizations: Number(summary[2]),
    rowsRead: Number(summary[3]),
    remaining: Number(summary[5]),
    seconds,
    valuesPerSecond: seconds > 0 ? Math.round(resealed / seconds) : Number.NaN,
    wallSeconds: round(wallSeconds, 2),
    summary: summary[0],
  };
}

function serverEnvironment(
  databaseUrl: string,
  nullCipher: boolean,
  extra: Record<string, string>,
): NodeJS.ProcessEnv {
  // Every variable Parley reads comes from here, none from the shell that runs the bench.
  const environment: NodeJS.ProcessEnv = { ...process.env };
  for (const entry of Object.values(CONFIG_SCHEMA)) {
    delete environment[entry.variable];
  }

  return {
    ...environment,
    // Plain text in the output tail a failed start prints.
    NO_COLOR: '1',
    ...SERVER_SETTINGS,
    DATABASE_URL: databaseUrl,
    ...(nullCipher ? { BENCH_UNSAFE_NULL_CIPHER: 'true' } : {}),
    ...extra,
  };
}

async function isReady(url: string): Promise<boolean> {
  try {
    const response = await fetch(`${url}/health/ready`, { signal: AbortSignal.timeout(2_000) });
    await response.arrayBuffer();

    return response.status === 200;
  } catch {
    return false;
  }
}

function findFreePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const probe = createServer();
    probe.once('error', reject);
    probe.listen(0, '127.0.0.1', () => {
      const port = (probe.address() as AddressInfo).port;
      probe.close(() => resolve(port));
    });
  });
}

function captureTail(stream: NodeJS.ReadableStream): () => string {
  let tail = '';
  stream.setEncoding('utf8');
  stream.on('data', (chunk: string) => {
    tail = (tail + chunk).slice(-OUTPUT_TAIL_CHARS);
  });

  return () => tail;
}

function indent(text: string): string {
  return text
    .split('\n')
    .map((line) => `    ${line}`)
    .join('\n');
}

function median(values: number[]): number {
  const sorted = [...values].sort((left, right) => left - right);
  const middle = Math.floor(sorted.length / 2);

  return sorted.length % 2 === 1 ? sorted[middle] : (sorted[middle - 1] + sorted[middle]) / 2;
}

function round(value: number, digits: number): number {
  const factor = 10 ** digits;

  return Math.round(value * factor) / factor;
}
