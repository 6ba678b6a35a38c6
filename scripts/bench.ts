import { ChildProcess, spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { mkdirSync, writeFileSync } from 'node:fs';
import { cpus } from 'node:os';
import { dirname, join } from 'node:path';
import { performance } from 'node:perf_hooks';

import { Algorithm, hash } from '@node-rs/argon2';
import { Socket } from 'socket.io-client';

import {
  AuditAppenders,
  BENCH_AUDIT_ACTION,
  ChainVerifyResult,
  noAuditDatabaseUrl,
  startVariantServer,
  timeChainVerification,
} from './bench-audit';
import type { BaselineReady } from './bench-baseline';
import {
  BenchServer,
  killSpawnedProcesses,
  measureSealing,
  nullCipherDatabaseUrl,
  RewrapResult,
  runRewrap,
  SealingFigure,
  SealingSettings,
  ServerStop,
  startParleyServer,
} from './bench-encryption';
import { ensureDatabase } from './bench-database';
import {
  ApiCallError,
  ApiRequest,
  callApi,
  callApiOrThrow,
  connectChatSocket,
  DEFAULT_WAIT_MS,
  describeAck,
  describeResponse,
  emitWithAck,
  expectRecord,
  findUpwards,
  generateStrongPassword,
  isRecord,
  randomSuffix,
  readIntegerOption,
  readItems,
  readParleyUrl,
  readString,
  sleep,
} from './client-kit';

// Measures a running Parley server against bare baselines on the same machine, in one run:
// socket message round trips, REST reads and logins, each next to its "limit" (bare Socket.IO
// with one pg insert, bare Fastify with one pg select, the argon2id hash rate). It is a report,
// not a test: a MISS still exits 0; only an error (nothing measurable) exits 1.
//
// Three processes take part: the Parley server (started by someone else), the baseline
// servers (scripts/bench-baseline.ts, a child of this one), and this load generator. The load
// generator is one event loop; its CPU use is recorded per measurement so that a saturated
// generator can be told apart from a slow server.
//
// Then what field encryption costs (scripts/bench-encryption.ts): sealing and opening in this
// process, the socket round trip at 50 clients on two Parley servers the bench starts from
// dist/ one after the other, identical but for BENCH_UNSAFE_NULL_CIPHER, and the data-key
// rotation and rewrap over the encrypted server's database.
//
// Then the audit chain (scripts/bench-audit.ts): on a server the bench starts on the encrypted
// server's database, the socket round trip at 50 clients, audit appends per second from 1, 4 and
// 16 concurrent writers on one organization's chain, and the verification of that chain through
// the API; then the round trip at 50 clients on a server identical but for
// BENCH_UNSAFE_NO_MESSAGE_AUDIT, which stores messages without their audit entries.

const DEFAULT_BENCH_DATABASE_URL = 'postgres://postgres@127.0.0.1:5432/parley_bench';

const SOCKET_CLIENT_COUNTS = [1, 50];

const REST_CONCURRENCY = 50;

const LOGIN_CONCURRENCY = 4;

const WARMUP_MS = 1_000;

const READ_CONVERSATION_MESSAGES = 20;

const SETUP_CONCURRENCY = 5;

const SOCKET_CONNECT_CONCURRENCY = 10;

const DELIVERY_GRACE_MS = 2_000;

const ERROR_BACKOFF_MS = 20;

const BASELINE_START_TIMEOUT_MS = 20_000;

const ENCRYPTION_CLIENTS = 50;

/** Encryption may add at most 15% to the socket round trip at ENCRYPTION_CLIENTS clients. */
const ENCRYPTION_OVERHEAD_LIMIT = 1.15;

/** Concurrent writers of the audit-append figures, all on one organization's chain. */
const AUDIT_WRITER_COUNTS = [1, 4, 16];

/**
 * The chain length the verification walks: the contention run leaves fewer entries on a slow
 * machine, and the bench tops the chain up to this many (multi-row inserts) before verifying.
 */
const VERIFY_CHAIN_ENTRIES = 50_000;

/** Clients of the message round trip with the audit trail on and off. */
const AUDIT_CLIENTS = 50;

const OK = 'ok';

const ARGON2_OPTIONS = {
  algorithm: Algorithm.Argon2id,
  memoryCost: 19456,
  timeCost: 2,
  parallelism: 1,
};

const READ_SEED_TEXT = 'Seeded message for the read benchmark, about as long as a chat line';

const MESSAGE_TEXT = 'Hello, could you tell me where my order is and when it will arrive?';

interface LoopTiming {
  warmupMs: number;
  measureMs: number;
}

interface LatencySummary {
  count: number;
  p50Ms: number;
  p99Ms: number;
  meanMs: number;
  maxMs: number;
}

interface LoopResult {
  workers: number;
  measuredSeconds: number;
  completed: number;
  perSecond: number;
  latency: LatencySummary;
  outcomes: Record<string, number>;
  loadGeneratorCpuPercent: number;
}

interface SocketRoundTripResult extends LoopResult {
  delivery: LatencySummary & { missing: number };
}

interface SocketTarget {
  name: string;
  url: string;
  senderToken: string;
  observerToken: string;
  conversationIds: string[];
}

interface ParleySetup {
  organizationSlug: string;
  adminToken: string;
  observerToken: string;
  login: { organizationSlug: string; email: string; password: string };
  conversationIds: string[];
  readConversationId: string;
  readRows: number;
}

interface Baseline {
  child: ChildProcess;
  ready: BaselineReady;
}

interface EncryptionResults {
  sealing?: { settings: SealingSettings; figures: SealingFigure[] };
  servers: Record<string, { databaseUrl: string; nullCipher: boolean; stop?: ServerStop }>;
  rewrap?: RewrapResult;
}

interface AuditResults {
  /** The organization the appends and the verification ran on. */
  chain?: {
    organizationSlug: string;
    /** Its chain head before the appends (signup writes entries of its own). */
    headSeqBefore: number;
    headSeqAfter?: number;
    /** Entries the bench's writers committed, warm-ups included. */
    committed?: number;
    /** Entries added by the top-up before the verification (see VERIFY_CHAIN_ENTRIES). */
    filled?: number;
  };
  verify?: ChainVerifyResult;
  servers: Record<string, { databaseUrl: string; messageAudit: boolean; stop?: ServerStop }>;
}

type Check = { kind: 'atLeast'; threshold: number } | { kind: 'atMost'; threshold: number };

interface Figure {
  figure: string;
  unit: string;
  value: number;
  limit: number;
  ratio: number;
  target: string;
  verdict: 'PASS' | 'MISS' | '-';
}

let runningBaseline: ChildProcess | undefined;

async function main(): Promise<number> {
  const startedAt = new Date();
  const runStart = performance.now();
  const baseUrl = readParleyUrl();
  const databaseUrl = process.env.BENCH_DATABASE_URL ?? DEFAULT_BENCH_DATABASE_URL;
  const measureSeconds = readIntegerOption(process.argv.slice(2), 'seconds', 5);
  const timing: LoopTiming = { warmupMs: WARMUP_MS, measureMs: measureSeconds * 1000 };

  // Every wait below has its own timeout; this only bounds the sum (6 minutes by default).
  const budgetMs = 360_000 + 17 * (measureSeconds - 5) * 1000;
  const watchdog = setTimeout(() => {
    console.error(`bench: still running after ${budgetMs / 1000} s, giving up`);
    runningBaseline?.kill('SIGKILL');
    killSpawnedProcesses();
    process.exit(1);
  }, budgetMs);
  watchdog.unref();

  console.log(`Parley bench against ${baseUrl}, ${measureSeconds} s per figure after 1 s warm-up`);

  const parley = await setUpParley(baseUrl);
  console.log(
    `set up organization ${parley.organizationSlug}: ${parley.conversationIds.length} ` +
      `conversations, read conversation holds ${parley.readRows} messages`,
  );

  const baseline = await startBaseline(databaseUrl, parley.readRows);
  console.log(
    `baseline servers up: sockets ${baseline.ready.socketUrl}, http ${baseline.ready.httpUrl}`,
  );

  const measurements: Record<string, LoopResult | SocketRoundTripResult> = {};
  try {
    const parleySockets: SocketTarget = {
      name: 'parley',
      url: baseUrl,
      senderToken: parley.adminToken,
      observerToken: parley.observerToken,
      conversationIds: parley.conversationIds,
    };
    const baselineSockets: SocketTarget = {
      name: 'baseline',
      url: baseline.ready.socketUrl,
      senderToken: 'baseline-needs-no-token',
      observerToken: 'baseline-needs-no-token',
      conversationIds: createIds(maxClientCount()),
    };

    for (const clients of SOCKET_CLIENT_COUNTS) {
      for (const target of [parleySockets, baselineSockets]) {
        const key = `${target.name}.messages@${clients}`;
        progress(key);
        measurements[key] = await measureSocketRoundTrip(target, clients, timing);
      }
    }

    progress(`parley.reads@${REST_CONCURRENCY}`);
    measurements[`parley.reads@${REST_CONCURRENCY}`] = await measureHttpReads(
      `${baseUrl}/api/v1/conversations/${parley.readConversationId}/messages`,
      parley.adminToken,
      timing,
    );

    progress(`baseline.reads@${REST_CONCURRENCY}`);
    measurements[`baseline.reads@${REST_CONCURRENCY}`] = await measureHttpReads(
      `${baseline.ready.httpUrl}/conversations/${baseline.ready.readConversationId}/messages`,
      undefined,
      timing,
    );

    // Logins run last: each one opens a server-side session, and a session cap or a
    // login throttle must not disturb the figures measured before.
    progress(`parley.logins@${LOGIN_CONCURRENCY}`);
    measurements[`parley.logins@${LOGIN_CONCURRENCY}`] = await measureLogins(
      baseUrl,
      parley.login,
      timing,
    );

    progress(`baseline.argon2id@${LOGIN_CONCURRENCY}`);
    measurements[`baseline.argon2id@${LOGIN_CONCURRENCY}`] = await measureHashRate(timing);
  } finally {
    await stopBaseline(baseline.child);
  }

  const errors: string[] = [];
  // --core-only stops after the issue-2 figures: a quicker loop while tuning the hot paths.
  const coreOnly = process.argv.includes('--core-only');
  const encryption: EncryptionResults = coreOnly
    ? { servers: {} }
    : await measureEncryption(databaseUrl, timing, measurements, errors);
  const audit: AuditResults = coreOnly
    ? { servers: {} }
    : await measureAudit(databaseUrl, timing, measurements, errors);

  const figures = buildFigures(measurements);
  const encryptionFigures = buildEncryptionFigures(measurements);
  const auditFigures = buildAuditFigures(measurements);
  printTable(figures);
  printEncryption(encryptionFigures, encryption);
  printAudit(auditFigures, audit, measurements);
  printOutcomes(measurements);

  for (const [key, result] of Object.entries(measurements)) {
    if (result.completed === 0) {
      errors.push(`${key}: no operation succeeded (${formatOutcomes(result.outcomes)})`);
    } else if ('delivery' in result && result.delivery.count === 0) {
      errors.push(`${key}: the observer received none of the ${result.completed} messages`);
    }
  }

  const resultsPath = writeResults({
    startedAt: startedAt.toISOString(),
    finishedAt: new Date().toISOString(),
    elapsedSeconds: round((performance.now() - runStart) / 1000),
    parleyUrl: baseUrl,
    benchDatabase: redactDatabaseUrl(databaseUrl),
    nullCipherDatabase: redactDatabaseUrl(nullCipherDatabaseUrl(databaseUrl)),
    noAuditDatabase: redactDatabaseUrl(noAuditDatabaseUrl(databaseUrl)),
    environment: {
      node: process.version,
      platform: `${process.platform}-${process.arch}`,
      cpus: cpus().length,
      cpuModel: cpus()[0]?.model ?? 'unknown',
      processes:
        'Parley server, baseline servers (child of the bench) and load generator are separate; ' +
        'the encryption and audit servers are children of the bench, run one at a time; ' +
        'the audit writers are pg clients of the load generator',
    },
    settings: {
      warmupSeconds: WARMUP_MS / 1000,
      measureSeconds,
      socketClients: SOCKET_CLIENT_COUNTS,
      restConcurrency: REST_CONCURRENCY,
      loginConcurrency: LOGIN_CONCURRENCY,
      readRows: parley.readRows,
      argon2: { algorithm: 'argon2id', memoryCost: 19456, timeCost: 2, parallelism: 1 },
      encryption: {
        clients: ENCRYPTION_CLIENTS,
        overheadLimit: ENCRYPTION_OVERHEAD_LIMIT,
        sealing: encryption.sealing?.settings,
      },
      audit: {
        writers: AUDIT_WRITER_COUNTS,
        clients: AUDIT_CLIENTS,
        append:
          'one insert into audit_events per transaction (begin, set_config app.organization_id, ' +
          'insert, commit) on its own pg client as parley_app, all writers on one organization',
        action: BENCH_AUDIT_ACTION,
        verifyChainEntries: VERIFY_CHAIN_ENTRIES,
      },
    },
    measurements,
    figures: [...figures, ...encryptionFigures, ...auditFigures],
    encryption: {
      sealing: encryption.sealing?.figures ?? [],
      servers: Object.fromEntries(
        Object.entries(encryption.servers).map(([name, server]) => [
          name,
          { ...server, databaseUrl: redactDatabaseUrl(server.databaseUrl) },
        ]),
      ),
      rewrap: encryption.rewrap ?? null,
    },
    audit: {
      appends: AUDIT_WRITER_COUNTS.flatMap((writers) => {
        const result = measurements[`audit.appends@${writers}`];

        return result
          ? [
              {
                writers,
                appendsPerSecond: result.perSecond,
                p50Ms: result.latency.p50Ms,
                p99Ms: result.latency.p99Ms,
              },
            ]
          : [];
      }),
      chain: audit.chain ?? null,
      verify: audit.verify ?? null,
      servers: Object.fromEntries(
        Object.entries(audit.servers).map(([name, server]) => [
          name,
          { ...server, databaseUrl: redactDatabaseUrl(server.databaseUrl) },
        ]),
      ),
    },
    errors,
  });
  console.log(`\nwrote ${resultsPath}`);

  if (errors.length > 0) {
    console.error('\nbench ERROR: some figures could not be measured:');
    for (const error of errors) {
      console.error(`  - ${error}`);
    }

    return 1;
  }

  return 0;
}

/**
 * The encryption figures. A failure is recorded in `errors` and ends this part only: the
 * figures measured before are still printed and written.
 */
async function measureEncryption(
  databaseUrl: string,
  timing: LoopTiming,
  measurements: Record<string, LoopResult | SocketRoundTripResult>,
  errors: string[],
): Promise<EncryptionResults> {
  const results: EncryptionResults = { servers: {} };

  try {
    progress('sealing and opening in the bench process');
    results.sealing = measureSealing();
  } catch (error) {
    errors.push(`sealing: ${describeError(error)}`);
  }

  // The server without encryption first, on its own database (see nullCipherDatabaseUrl), then
  // the encrypted one on the bench database, never both at once.
  const variants = [
    { name: 'plain', nullCipher: true, databaseUrl: nullCipherDatabaseUrl(databaseUrl) },
    { name: 'encrypted', nullCipher: false, databaseUrl },
  ];
  let encryptedServer: BenchServer | undefined;
  for (const variant of variants) {
    try {
      await ensureBenchDatabase(variant.databaseUrl);
      progress(`${variant.name}.messages@${ENCRYPTION_CLIENTS} (starting its server)`);
      const server = await startParleyServer(variant);
      results.servers[variant.name] = {
        databaseUrl: variant.databaseUrl,
        nullCipher: variant.nullCipher,
      };
      try {
        const parley = await setUpParley(server.url);
        measurements[`${variant.name}.messages@${ENCRYPTION_CLIENTS}`] =
          await measureSocketRoundTrip(
            {
              name: variant.name,
              url: server.url,
              senderToken: parley.adminToken,
              observerToken: parley.observerToken,
              conversationIds: parley.conversationIds,
            },
            ENCRYPTION_CLIENTS,
            timing,
          );
      } finally {
        const stop = await server.stop();
        results.servers[variant.name].stop = stop;
        if (stop.forced) {
          console.warn(`the ${variant.name} server did not stop on SIGTERM and was killed`);
        }
      }
      if (!variant.nullCipher) {
        encryptedServer = server;
      }
    } catch (error) {
      errors.push(`${variant.name}.messages@${ENCRYPTION_CLIENTS}: ${describeError(error)}`);
    }
  }

  if (encryptedServer) {
    try {
      progress('rewrap (keys-data rotate on the encrypted server database)');
      results.rewrap = await runRewrap(encryptedServer);
    } catch (error) {
      errors.push(`rewrap: ${describeError(error)}`);
    }
  }

  return results;
}

/**
 * The audit figures: the audited server (the encrypted server's settings and database) measures
 * the message round trip, then the appends and the verification; the unaudited one, started with
 * the audited one's environment plus BENCH_UNSAFE_NO_MESSAGE_AUDIT=true on its own database,
 * measures the round trip. A failure is recorded in `errors` and ends its own part only.
 */
async function measureAudit(
  databaseUrl: string,
  timing: LoopTiming,
  measurements: Record<string, LoopResult | SocketRoundTripResult>,
  errors: string[],
): Promise<AuditResults> {
  const results: AuditResults = { servers: {} };
  const variants = [
    { name: 'audited', messageAudit: true, databaseUrl },
    { name: 'unaudited', messageAudit: false, databaseUrl: noAuditDatabaseUrl(databaseUrl) },
  ];
  let audited: BenchServer | undefined;

  for (const variant of variants) {
    const key = `${variant.name}.messages@${AUDIT_CLIENTS}`;
    try {
      await ensureBenchDatabase(variant.databaseUrl);
      progress(`${key} (starting its server)`);
      let server: BenchServer;
      if (variant.messageAudit) {
        server = await startParleyServer({ ...variant, nullCipher: false });
        audited = server;
      } else if (audited) {
        server = await startVariantServer({
          name: variant.name,
          like: audited,
          databaseUrl: variant.databaseUrl,
          extra: { BENCH_UNSAFE_NO_MESSAGE_AUDIT: 'true' },
        });
      } else {
        throw new Error(
          'not measured: its settings are those of the audited server, which did not start',
        );
      }
      results.servers[variant.name] = {
        databaseUrl: variant.databaseUrl,
        messageAudit: variant.messageAudit,
      };

      try {
        const parley = await setUpParley(server.url);
        measurements[key] = await measureSocketRoundTrip(
          {
            name: variant.name,
            url: server.url,
            senderToken: parley.adminToken,
            observerToken: parley.observerToken,
            conversationIds: parley.conversationIds,
          },
          AUDIT_CLIENTS,
          timing,
        );
        if (variant.messageAudit) {
          await measureAuditChain(server, timing, measurements, results, errors);
        }
      } finally {
        const stop = await server.stop();
        results.servers[variant.name].stop = stop;
        if (stop.forced) {
          console.warn(`the ${variant.name} server did not stop on SIGTERM and was killed`);
        }
      }
    } catch (error) {
      errors.push(`${key}: ${describeError(error)}`);
    }
  }

  return results;
}

/**
 * Appends from 1, 4 and 16 concurrent writers to one new organization's chain (pg clients of
 * their own on the server's database URL, as the runtime role), then one timed verification of
 * that chain through the API, which must find it valid and holding every entry appended.
 */
async function measureAuditChain(
  server: BenchServer,
  timing: LoopTiming,
  measurements: Record<string, LoopResult | SocketRoundTripResult>,
  results: AuditResults,
  errors: string[],
): Promise<void> {
  try {
    const organization = await signUpOrganization(server.url, 'bench-audit');
    const appenders = await AuditAppenders.open(
      server.databaseUrl,
      organization.organizationId,
      Math.max(...AUDIT_WRITER_COUNTS),
      organization.organizationSlug,
    );
    const chain: NonNullable<AuditResults['chain']> = {
      organizationSlug: organization.organizationSlug,
      headSeqBefore: 0,
    };
    results.chain = chain;
    try {
      chain.headSeqBefore = await appenders.headSeq();
      for (const writers of AUDIT_WRITER_COUNTS) {
        const key = `audit.appends@${writers}`;
        progress(`${key} (one organization's chain)`);
        measurements[key] = await runClosedLoop(writers, timing, async (writer) => {
          await appenders.append(writer);

          return OK;
        });
      }
      chain.committed = appenders.committed;
      chain.headSeqAfter = await appenders.headSeq();
      progress(`audit top-up to ${VERIFY_CHAIN_ENTRIES} entries before the verification`);
      chain.filled = await appenders.fillTo(VERIFY_CHAIN_ENTRIES);
    } finally {
      await appenders.close();
    }

    progress('audit verify');
    const verify = await timeChainVerification(server.url, organization.adminToken);
    results.verify = verify;
    const filled = chain.filled ?? 0;
    const expected = chain.headSeqBefore + appenders.committed + filled;
    if (!verify.valid) {
      errors.push(
        `audit verify: the chain is invalid after ${appenders.committed} concurrent appends ` +
          `(a fork or a lost entry): ${JSON.stringify(verify.broken)}`,
      );
    } else if (verify.entries < expected) {
      errors.push(
        `audit verify: ${verify.entries} entries verified, but ${expected} were appended ` +
          `(${chain.headSeqBefore} before the bench's ${appenders.committed} and ${filled})`,
      );
    }
  } catch (error) {
    errors.push(`audit chain: ${describeError(error)}`);
  }
}

async function signUpOrganization(
  baseUrl: string,
  prefix: string,
): Promise<{ organizationId: string; organizationSlug: string; adminToken: string }> {
  const suffix = randomSuffix();
  const organizationSlug = `${prefix}-${suffix}`;
  const signup = expectRecord(
    await callSetupApi(baseUrl, {
      method: 'POST',
      path: '/api/v1/auth/signup',
      body: {
        organizationName: `Bench Audit ${suffix}`,
        organizationSlug,
        email: `admin.${suffix}@example.com`,
        password: generateStrongPassword(),
        name: 'Bench Admin',
      },
    }),
    'signup response',
  );
  const organization = expectRecord(signup.organization, 'signup response organization');

  return {
    organizationId: readString(organization, 'id', 'signup response organization'),
    organizationSlug,
    adminToken: readString(signup, 'accessToken', 'signup response'),
  };
}

async function ensureBenchDatabase(databaseUrl: string): Promise<void> {
  await ensureDatabase(databaseUrl).catch((error: unknown) => {
    throw new Error(
      `could not create or reach ${redactDatabaseUrl(databaseUrl)}: ${describeError(error)}`,
    );
  });
}

async function setUpParley(baseUrl: string): Promise<ParleySetup> {
  const readiness = await callApi(baseUrl, { method: 'GET', path: '/health/ready' }).catch(
    (error: unknown) => {
      throw new Error(`Parley is not reachable at ${baseUrl}: ${describeError(error)}`);
    },
  );
  if (readiness.status !== 200) {
    throw new Error(`Parley at ${baseUrl} is not ready: ${describeResponse(readiness)}`);
  }

  const suffix = randomSuffix();
  const organizationSlug = `bench-run-${suffix}`;
  const signup = expectRecord(
    await callSetupApi(baseUrl, {
      method: 'POST',
      path: '/api/v1/auth/signup',
      body: {
        organizationName: `Bench Run ${suffix}`,
        organizationSlug,
        email: `admin.${suffix}@example.com`,
        password: generateStrongPassword(),
        name: 'Bench Admin',
      },
    }),
    'signup response',
  );
  const adminToken = readString(signup, 'accessToken', 'signup response');

  const observer = await addAgent(baseUrl, adminToken, `observer.${suffix}`);
  const loginAgent = await addAgent(baseUrl, adminToken, `login.${suffix}`);

  const conversationIds = await mapWithConcurrency(
    Array.from({ length: maxClientCount() }, (_, index) => index),
    SETUP_CONCURRENCY,
    (index) => createConversation(baseUrl, adminToken, `client-${index}.${suffix}`),
  );

  const readConversationId = await createConversation(baseUrl, adminToken, `reader.${suffix}`);
  for (let index = 1; index <= READ_CONVERSATION_MESSAGES; index += 1) {
    await callSetupApi(baseUrl, {
      method: 'POST',
      path: `/api/v1/conversations/${readConversationId}/messages`,
      token: adminToken,
      body: { body: `${READ_SEED_TEXT} #${index}` },
    });
  }

  const listed = await callSetupApi(baseUrl, {
    method: 'GET',
    path: `/api/v1/conversations/${readConversationId}/messages`,
    token: adminToken,
  });
  const readRows = readItems(listed, 'conversation messages').length;
  if (readRows === 0) {
    throw new Error('the read conversation lists no messages after seeding it');
  }

  return {
    organizationSlug,
    adminToken,
    observerToken: await loginOrThrow(baseUrl, organizationSlug, observer),
    login: { organizationSlug, email: loginAgent.email, password: loginAgent.password },
    conversationIds,
    readConversationId,
    readRows,
  };
}

async function addAgent(
  baseUrl: string,
  adminToken: string,
  localPart: string,
): Promise<{ email: string; password: string }> {
  const email = `${localPart}@example.com`;
  const password = generateStrongPassword();

  await callSetupApi(baseUrl, {
    method: 'POST',
    path: '/api/v1/users',
    token: adminToken,
    body: { email, name: `Bench ${localPart}`, role: 'agent', password },
  });

  return { email, password };
}

async function loginOrThrow(
  baseUrl: string,
  organizationSlug: string,
  credentials: { email: string; password: string },
): Promise<string> {
  const login = expectRecord(
    await callSetupApi(baseUrl, {
      method: 'POST',
      path: '/api/v1/auth/login',
      body: { organizationSlug, email: credentials.email, password: credentials.password },
    }),
    'login response',
  );

  return readString(login, 'accessToken', 'login response');
}

async function createConversation(
  baseUrl: string,
  adminToken: string,
  localPart: string,
): Promise<string> {
  const contact = expectRecord(
    await callSetupApi(baseUrl, {
      method: 'POST',
      path: '/api/v1/contacts',
      token: adminToken,
      body: { email: `${localPart}@example.com`, name: `Contact ${localPart}` },
    }),
    'created contact',
  );

  const conversation = expectRecord(
    await callSetupApi(baseUrl, {
      method: 'POST',
      path: '/api/v1/conversations',
      token: adminToken,
      body: { contactId: readString(contact, 'id', 'created contact'), subject: 'Bench' },
    }),
    'created conversation',
  );

  return readString(conversation, 'id', 'created conversation');
}

async function callSetupApi(baseUrl: string, request: ApiRequest): Promise<unknown> {
  // Setup is a burst of writes; a rate limiter may push back, and a short wait usually
  // clears it. Anything else is a setup error.
  for (let attempt = 1; ; attempt += 1) {
    try {
      return await callApiOrThrow(baseUrl, request);
    } catch (error) {
      if (!(error instanceof ApiCallError) || error.response.status !== 429 || attempt >= 3) {
        throw error;
      }
      await sleep(1000 * attempt);
    }
  }
}

async function startBaseline(databaseUrl: string, readRows: number): Promise<Baseline> {
  const child = spawn(process.execPath, [join(__dirname, 'bench-baseline.js')], {
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
    env: {
      ...process.env,
      BENCH_DATABASE_URL: databaseUrl,
      BENCH_READ_ROWS: String(readRows),
      BENCH_READ_SEED_TEXT: READ_SEED_TEXT,
    },
  });
  runningBaseline = child;

  const ready = await new Promise<BaselineReady>((resolve, reject) => {
    const timer = setTimeout(() => {
      reject(new Error(`baseline servers did not start within ${BASELINE_START_TIMEOUT_MS} ms`));
    }, BASELINE_START_TIMEOUT_MS);

    child.on('message', (message: unknown) => {
      if (isRecord(message) && message.type === 'ready') {
        clearTimeout(timer);
        resolve(message as unknown as BaselineReady);
      } else if (isRecord(message) && message.type === 'error') {
        clearTimeout(timer);
        reject(new Error(`baseline servers failed: ${String(message.message)}`));
      }
    });

    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`baseline servers exited with code ${code} before they were ready`));
    });

    child.once('error', (error) => {
      clearTimeout(timer);
      reject(error);
    });
  }).catch(async (error: unknown) => {
    await stopBaseline(child);
    throw error;
  });

  return { child, ready };
}

async function stopBaseline(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) {
    return;
  }

  const exited = new Promise<void>((resolve) => {
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      resolve();
    }, 5_000);
    child.once('exit', () => {
      clearTimeout(timer);
      resolve();
    });
  });

  // The child shuts down when its IPC channel closes.
  if (child.connected) {
    child.disconnect();
  } else {
    child.kill('SIGTERM');
  }
  await exited;
  runningBaseline = undefined;
}

async function measureSocketRoundTrip(
  target: SocketTarget,
  clients: number,
  timing: LoopTiming,
): Promise<SocketRoundTripResult> {
  const conversationIds = target.conversationIds.slice(0, clients);
  const sockets: Socket[] = [];

  try {
    const observer = await connectChatSocket(target.url, target.observerToken);
    sockets.push(observer);
    for (const conversationId of conversationIds) {
      await joinOrThrow(observer, conversationId, `${target.name} observer`);
    }

    const senders = await mapWithConcurrency(
      conversationIds,
      SOCKET_CONNECT_CONCURRENCY,
      async (conversationId) => {
        const sender = await connectChatSocket(target.url, target.senderToken);
        sockets.push(sender);
        await joinOrThrow(sender, conversationId, `${target.name} sender`);

        return sender;
      },
    );

    const sentAtByBody = new Map<string, number>();
    const deliveryLatencies: number[] = [];
    observer.on('message:new', (payload: unknown) => {
      const message = isRecord(payload) && isRecord(payload.message) ? payload.message : payload;
      const body = isRecord(message) ? message.body : undefined;
      const sentAt = typeof body === 'string' ? sentAtByBody.get(body) : undefined;
      if (typeof body === 'string' && sentAt !== undefined) {
        deliveryLatencies.push(performance.now() - sentAt);
        sentAtByBody.delete(body);
      }
    });

    const runTag = randomSuffix();
    const sequences = senders.map(() => 0);
    const loop = await runClosedLoop(clients, timing, async (worker, startedAt, measured) => {
      sequences[worker] += 1;
      const body = `${MESSAGE_TEXT} [${runTag} ${worker}-${sequences[worker]}]`;
      if (measured) {
        sentAtByBody.set(body, startedAt);
      }

      try {
        const ack = await emitWithAck(senders[worker], 'message:send', {
          conversationId: conversationIds[worker],
          body,
          clientMessageId: randomUUID(),
        });
        if (!ack.ok) {
          sentAtByBody.delete(body);

          return ack.code || 'refused without a code';
        }

        return OK;
      } catch (error) {
        sentAtByBody.delete(body);
        throw error;
      }
    });

    const graceEnd = performance.now() + DELIVERY_GRACE_MS;
    while (sentAtByBody.size > 0 && performance.now() < graceEnd) {
      await sleep(20);
    }

    return {
      ...loop,
      delivery: { ...summarize(deliveryLatencies), missing: sentAtByBody.size },
    };
  } finally {
    for (const socket of sockets) {
      socket.close();
    }
  }
}

async function joinOrThrow(socket: Socket, conversationId: string, who: string): Promise<void> {
  const ack = await emitWithAck(socket, 'conversation:join', { conversationId });
  if (!ack.ok) {
    throw new Error(`${who} could not join ${conversationId}: ${describeAck(ack)}`);
  }
}

function measureHttpReads(
  url: string,
  token: string | undefined,
  timing: LoopTiming,
): Promise<LoopResult> {
  const headers: Record<string, string> = { accept: 'application/json' };
  if (token) {
    headers.authorization = `Bearer ${token}`;
  }

  return runClosedLoop(REST_CONCURRENCY, timing, async () => {
    const response = await fetch(url, { headers, signal: AbortSignal.timeout(DEFAULT_WAIT_MS) });
    await response.arrayBuffer();

    return response.ok ? OK : `HTTP ${response.status}`;
  });
}

function measureLogins(
  baseUrl: string,
  credentials: ParleySetup['login'],
  timing: LoopTiming,
): Promise<LoopResult> {
  const payload = JSON.stringify(credentials);

  return runClosedLoop(LOGIN_CONCURRENCY, timing, async () => {
    const response = await fetch(`${baseUrl}/api/v1/auth/login`, {
      method: 'POST',
      headers: { accept: 'application/json', 'content-type': 'application/json' },
      body: payload,
      signal: AbortSignal.timeout(DEFAULT_WAIT_MS),
    });
    const text = await response.text();
    if (response.status === 200) {
      return OK;
    }

    return `HTTP ${response.status} ${readProblemCode(text)}`.trim();
  });
}

function measureHashRate(timing: LoopTiming): Promise<LoopResult> {
  // Hashing runs on libuv's thread pool (4 threads by default, as in the Parley process), so
  // the load generator's event loop stays free while it measures.
  const password = generateStrongPassword();

  return runClosedLoop(LOGIN_CONCURRENCY, timing, async () => {
    await hash(password, ARGON2_OPTIONS);

    return OK;
  });
}

async function runClosedLoop(
  workers: number,
  timing: LoopTiming,
  operation: (worker: number, startedAt: number, measured: boolean) => Promise<string>,
): Promise<LoopResult> {
  const loopStart = performance.now();
  const measureStart = loopStart + timing.warmupMs;
  const measureEnd = measureStart + timing.measureMs;
  const latencies: number[] = [];
  const outcomes: Record<string, number> = {};
  let cpuAtMeasureStart: NodeJS.CpuUsage | undefined;

  const runWorker = async (worker: number) => {
    while (performance.now() < measureEnd) {
      const startedAt = performance.now();
      const measured = startedAt >= measureStart;
      if (measured && !cpuAtMeasureStart) {
        cpuAtMeasureStart = process.cpuUsage();
      }

      let outcome: string;
      try {
        outcome = await operation(worker, startedAt, measured);
      } catch (error) {
        outcome = `error: ${describeError(error)}`;
      }
      const elapsedMs = performance.now() - startedAt;

      if (measured) {
        outcomes[outcome] = (outcomes[outcome] ?? 0) + 1;
        if (outcome === OK) {
          latencies.push(elapsedMs);
        }
      }

      if (outcome !== OK) {
        await sleep(ERROR_BACKOFF_MS);
      }
    }
  };

  await Promise.all(Array.from({ length: workers }, (_, worker) => runWorker(worker)));

  const cpu = process.cpuUsage(cpuAtMeasureStart);
  const wallMs = Math.max(performance.now() - measureStart, 1);
  const measuredSeconds = timing.measureMs / 1000;

  return {
    workers,
    measuredSeconds,
    completed: latencies.length,
    perSecond: round(latencies.length / measuredSeconds),
    latency: summarize(latencies),
    outcomes,
    loadGeneratorCpuPercent: round(((cpu.user + cpu.system) / 1000 / wallMs) * 100),
  };
}

function buildFigures(measurements: Record<string, LoopResult | SocketRoundTripResult>): Figure[] {
  const figures: Figure[] = [];

  for (const clients of SOCKET_CLIENT_COUNTS) {
    const parley = measurements[`parley.messages@${clients}`] as SocketRoundTripResult;
    const limit = measurements[`baseline.messages@${clients}`] as SocketRoundTripResult;
    const targeted = clients === 50;

    figures.push(
      compare(`messages@${clients} throughput`, 'msg/s', parley.perSecond, limit.perSecond, {
        check: targeted ? { kind: 'atLeast', threshold: 0.5 } : undefined,
      }),
      compare(`messages@${clients} ack p50`, 'ms', parley.latency.p50Ms, limit.latency.p50Ms),
      compare(`messages@${clients} ack p99`, 'ms', parley.latency.p99Ms, limit.latency.p99Ms, {
        check: targeted ? { kind: 'atMost', threshold: 3 } : undefined,
      }),
      compare(
        `messages@${clients} delivery p50`,
        'ms',
        parley.delivery.p50Ms,
        limit.delivery.p50Ms,
      ),
      compare(
        `messages@${clients} delivery p99`,
        'ms',
        parley.delivery.p99Ms,
        limit.delivery.p99Ms,
        { check: targeted ? { kind: 'atMost', threshold: 3 } : undefined },
      ),
    );
  }

  const parleyReads = measurements[`parley.reads@${REST_CONCURRENCY}`];
  const limitReads = measurements[`baseline.reads@${REST_CONCURRENCY}`];
  figures.push(
    compare(
      `REST reads@${REST_CONCURRENCY} throughput`,
      'req/s',
      parleyReads.perSecond,
      limitReads.perSecond,
      { check: { kind: 'atLeast', threshold: 0.5 } },
    ),
    compare(
      `REST reads@${REST_CONCURRENCY} p99`,
      'ms',
      parleyReads.latency.p99Ms,
      limitReads.latency.p99Ms,
    ),
  );

  const logins = measurements[`parley.logins@${LOGIN_CONCURRENCY}`];
  const hashes = measurements[`baseline.argon2id@${LOGIN_CONCURRENCY}`];
  figures.push(
    compare(`logins@${LOGIN_CONCURRENCY} vs argon2id`, '/s', logins.perSecond, hashes.perSecond, {
      check: { kind: 'atLeast', threshold: 0.9 },
    }),
    compare(`logins@${LOGIN_CONCURRENCY} p99`, 'ms', logins.latency.p99Ms, hashes.latency.p99Ms),
  );

  return figures;
}

function buildEncryptionFigures(
  measurements: Record<string, LoopResult | SocketRoundTripResult>,
): Figure[] {
  const plain = measurements[`plain.messages@${ENCRYPTION_CLIENTS}`];
  const encrypted = measurements[`encrypted.messages@${ENCRYPTION_CLIENTS}`];
  if (!plain || !encrypted) {
    return [];
  }

  // The verdict is on the exact ratio (1.152 misses 1.15), kept to three decimals.
  const overhead = (figure: string, unit: string, value: number, limit: number, exact: number) => {
    const measured = Number.isFinite(exact) && value > 0 && limit > 0;
    const verdict: Figure['verdict'] =
      measured && exact <= ENCRYPTION_OVERHEAD_LIMIT ? 'PASS' : 'MISS';

    return {
      figure: `encrypted messages@${ENCRYPTION_CLIENTS} ${figure}`,
      unit,
      value,
      limit,
      ratio: Number.isFinite(exact) ? Math.round(exact * 1000) / 1000 : Number.NaN,
      target:
        figure === 'throughput'
          ? `limit/value <= ${ENCRYPTION_OVERHEAD_LIMIT}`
          : `<= ${ENCRYPTION_OVERHEAD_LIMIT}x limit`,
      verdict,
    };
  };

  return [
    overhead(
      'throughput',
      'msg/s',
      encrypted.perSecond,
      plain.perSecond,
      plain.perSecond / encrypted.perSecond,
    ),
    overhead(
      'ack p50',
      'ms',
      encrypted.latency.p50Ms,
      plain.latency.p50Ms,
      encrypted.latency.p50Ms / plain.latency.p50Ms,
    ),
    overhead(
      'ack p99',
      'ms',
      encrypted.latency.p99Ms,
      plain.latency.p99Ms,
      encrypted.latency.p99Ms / plain.latency.p99Ms,
    ),
  ];
}

function buildAuditFigures(
  measurements: Record<string, LoopResult | SocketRoundTripResult>,
): Figure[] {
  const audited = measurements[`audited.messages@${AUDIT_CLIENTS}`];
  const unaudited = measurements[`unaudited.messages@${AUDIT_CLIENTS}`];
  if (!audited || !unaudited) {
    return [];
  }

  // Issue 5 sets no number, only that appending must not become the bottleneck of the message
  // path: the ratio (what the audit trail costs, above 1 when it costs) is reported, not judged.
  const cost = (figure: string, unit: string, value: number, limit: number, exact: number) => ({
    figure: `audited messages@${AUDIT_CLIENTS} ${figure}`,
    unit,
    value,
    limit,
    ratio:
      Number.isFinite(exact) && value > 0 && limit > 0
        ? Math.round(exact * 1000) / 1000
        : Number.NaN,
    target: 'none set',
    verdict: '-' as const,
  });

  return [
    cost(
      'throughput',
      'msg/s',
      audited.perSecond,
      unaudited.perSecond,
      unaudited.perSecond / audited.perSecond,
    ),
    cost(
      'ack p50',
      'ms',
      audited.latency.p50Ms,
      unaudited.latency.p50Ms,
      audited.latency.p50Ms / unaudited.latency.p50Ms,
    ),
    cost(
      'ack p99',
      'ms',
      audited.latency.p99Ms,
      unaudited.latency.p99Ms,
      audited.latency.p99Ms / unaudited.latency.p99Ms,
    ),
  ];
}

function compare(
  figure: string,
  unit: string,
  value: number,
  limit: number,
  options: { check?: Check } = {},
): Figure {
  const ratio = limit > 0 ? round(value / limit) : Number.NaN;
  const check = options.check;
  if (!check) {
    return { figure, unit, value, limit, ratio, target: '-', verdict: '-' };
  }

  const target =
    check.kind === 'atLeast' ? `ratio >= ${check.threshold}` : `<= ${check.threshold}x limit`;
  const met =
    Number.isFinite(ratio) &&
    value > 0 &&
    (check.kind === 'atLeast' ? ratio >= check.threshold : ratio <= check.threshold);

  return { figure, unit, value, limit, ratio, target, verdict: met ? 'PASS' : 'MISS' };
}

function printTable(figures: Figure[]): void {
  console.log('');
  printFigures(figures);
}

function printFigures(figures: Figure[], ratioDigits = 2): void {
  printRows(
    [
      ['figure', 'value', 'limit', 'ratio', 'target', 'result'],
      ...figures.map((figure) => [
        figure.figure,
        formatQuantity(figure.value, figure.unit),
        formatQuantity(figure.limit, figure.unit),
        Number.isFinite(figure.ratio) ? figure.ratio.toFixed(ratioDigits) : 'n/a',
        figure.target,
        figure.verdict,
      ]),
    ],
    (column) => column === 0 || column >= 4,
  );
}

function printEncryption(figures: Figure[], encryption: EncryptionResults): void {
  if (figures.length > 0) {
    console.log(
      `\nencryption overhead at ${ENCRYPTION_CLIENTS} clients (value: encrypted server; ` +
        'limit: the same server with BENCH_UNSAFE_NULL_CIPHER=true)',
    );
    printFigures(figures, 3);
  }

  const rows: string[][] = [['figure', 'per operation', 'per second', 'how']];
  const sealing = encryption.sealing;
  for (const figure of sealing?.figures ?? []) {
    rows.push([
      `${figure.operation} (${figure.bytes} B)`,
      `${figure.microsecondsPerOperation.toFixed(2)} µs`,
      `${figure.operationsPerSecond} /s`,
      `median of ${sealing?.settings.runs} runs of ${(sealing?.settings.runMs ?? 0) / 1000} s`,
    ]);
  }
  const rewrap = encryption.rewrap;
  if (rewrap) {
    rows.push([
      'rewrap (keys-data rotate)',
      Number.isFinite(rewrap.valuesPerSecond)
        ? `${(1_000_000 / rewrap.valuesPerSecond).toFixed(0)} µs`
        : 'n/a',
      `${Number.isFinite(rewrap.valuesPerSecond) ? rewrap.valuesPerSecond : 'n/a'} values/s`,
      `${rewrap.resealed} values in ${rewrap.organizations} organization${rewrap.organizations === 1 ? '' : 's'}, ${rewrap.seconds} s`,
    ]);
  }
  if (rows.length > 1) {
    console.log('\nsealing in the bench process (AES-256-GCM and envelope) and rewrap');
    printRows(rows, (column) => column === 0 || column === 3);
  }
  if (rewrap && rewrap.organizations > 1) {
    console.log(
      `  the rewrap re-sealed the values of ${rewrap.organizations} organizations, this run's and ` +
        "earlier runs' (each adds one); to start over, drop the bench database and its _nullcipher twin",
    );
  }
}

function printAudit(
  figures: Figure[],
  audit: AuditResults,
  measurements: Record<string, LoopResult | SocketRoundTripResult>,
): void {
  const rows: string[][] = [['figure', 'per second', 'p50', 'p99', 'how']];
  for (const writers of AUDIT_WRITER_COUNTS) {
    const result = measurements[`audit.appends@${writers}`];
    if (result) {
      rows.push([
        `audit appends@${writers}`,
        formatQuantity(result.perSecond, 'appends/s'),
        formatQuantity(result.latency.p50Ms, 'ms'),
        formatQuantity(result.latency.p99Ms, 'ms'),
        `${writers} pg client${writers === 1 ? '' : 's'} in one organization, one entry per transaction`,
      ]);
    }
  }
  const verify = audit.verify;
  if (verify) {
    rows.push([
      'audit verify',
      formatQuantity(verify.entriesPerSecond, 'entries/s'),
      '-',
      '-',
      `GET /api/v1/audit/verify: ${verify.entries} entries in ${verify.seconds} s, ` +
        `valid: ${verify.valid}`,
    ]);
  }
  if (rows.length > 1) {
    const chain = audit.chain;
    console.log(
      `\naudit chain (organization ${chain?.organizationSlug ?? '?'}: ` +
        `${chain?.committed ?? '?'} entries appended by the writers, warm-ups included, then ` +
        `${chain?.filled ?? '?'} by multi-row inserts up to ${VERIFY_CHAIN_ENTRIES} before the verification)`,
    );
    printRows(rows, (column) => column === 0 || column === 4);
  }

  if (figures.length > 0) {
    console.log(
      `\naudit trail on the message path at ${AUDIT_CLIENTS} clients (value: a server writing ` +
        "each message's audit entry; limit: the same server with BENCH_UNSAFE_NO_MESSAGE_AUDIT=true; " +
        'ratio: limit/value for throughput, value/limit for latencies)',
    );
    printFigures(figures, 3);
    console.log(
      '  issue 5 sets no fixed limit, only that appending must not become the bottleneck of the ' +
        'message path; the ratios are reported, not judged',
    );
    const appends = measurements[`audit.appends@${Math.max(...AUDIT_WRITER_COUNTS)}`];
    const messages = measurements[`audited.messages@${AUDIT_CLIENTS}`];
    if (appends && messages && messages.perSecond > 0) {
      console.log(
        `  bare appends@${appends.workers} reached ${round(appends.perSecond / messages.perSecond)} ` +
          `times the audited server's message rate`,
      );
    }
  }
}

function printRows(rows: string[][], leftAligned: (column: number) => boolean): void {
  const widths = rows[0].map((_, column) => Math.max(...rows.map((row) => row[column].length)));

  for (const [index, row] of rows.entries()) {
    const cells = row.map((cell, column) =>
      leftAligned(column) ? cell.padEnd(widths[column]) : cell.padStart(widths[column]),
    );
    console.log(cells.join('  ').trimEnd());
    if (index === 0) {
      console.log(widths.map((width) => '-'.repeat(width)).join('  '));
    }
  }
}

function printOutcomes(measurements: Record<string, LoopResult | SocketRoundTripResult>): void {
  console.log('\nmeasurements (operations in the window, load generator CPU)');

  for (const [key, result] of Object.entries(measurements)) {
    const missing = 'delivery' in result ? `, ${result.delivery.missing} not delivered` : '';
    console.log(
      `  ${key.padEnd(22)} ${formatOutcomes(result.outcomes)}${missing}, ` +
        `cpu ${result.loadGeneratorCpuPercent}%`,
    );
  }
}

function formatOutcomes(outcomes: Record<string, number>): string {
  const entries = Object.entries(outcomes);
  if (entries.length === 0) {
    return 'nothing completed';
  }

  return entries.map(([outcome, count]) => `${outcome} ${count}`).join(', ');
}

function writeResults(results: object): string {
  const projectRoot = dirname(findUpwards(__dirname, 'package.json'));
  const resultsPath = join(projectRoot, 'bench-results', 'latest.json');

  mkdirSync(dirname(resultsPath), { recursive: true });
  writeFileSync(resultsPath, `${JSON.stringify(results, jsonNumbers, 2)}\n`);

  return resultsPath;
}

function jsonNumbers(_key: string, value: unknown): unknown {
  // NaN (a ratio over a zero limit) is not JSON; null says "not available".
  return typeof value === 'number' && !Number.isFinite(value) ? null : value;
}

function summarize(latencies: number[]): LatencySummary {
  if (latencies.length === 0) {
    return {
      count: 0,
      p50Ms: Number.NaN,
      p99Ms: Number.NaN,
      meanMs: Number.NaN,
      maxMs: Number.NaN,
    };
  }

  const sorted = [...latencies].sort((left, right) => left - right);
  const total = sorted.reduce((sum, latency) => sum + latency, 0);

  return {
    count: sorted.length,
    p50Ms: round(percentile(sorted, 50)),
    p99Ms: round(percentile(sorted, 99)),
    meanMs: round(total / sorted.length),
    maxMs: round(sorted[sorted.length - 1]),
  };
}

function percentile(sorted: number[], rank: number): number {
  // Nearest-rank: the smallest value with at least rank% of the samples at or below it.
  const index = Math.max(Math.ceil((rank / 100) * sorted.length) - 1, 0);

  return sorted[index];
}

async function mapWithConcurrency<Item, Result>(
  items: Item[],
  concurrency: number,
  transform: (item: Item) => Promise<Result>,
): Promise<Result[]> {
  const results: Result[] = new Array(items.length);
  let next = 0;

  const runLane = async () => {
    while (next < items.length) {
      const index = next;
      next += 1;
      results[index] = await transform(items[index]);
    }
  };

  await Promise.all(Array.from({ length: Math.min(concurrency, items.length) }, runLane));

  return results;
}

function maxClientCount(): number {
  return Math.max(...SOCKET_CLIENT_COUNTS);
}

function createIds(count: number): string[] {
  return Array.from({ length: count }, () => randomUUID());
}

function readProblemCode(text: string): string {
  try {
    const body: unknown = JSON.parse(text);

    return isRecord(body) && typeof body.code === 'string' ? body.code : '';
  } catch {
    return '';
  }
}

function redactDatabaseUrl(databaseUrl: string): string {
  try {
    const parsed = new URL(databaseUrl);
    if (parsed.password) {
      parsed.password = 'redacted';
    }

    return parsed.toString();
  } catch {
    return 'unparseable';
  }
}

function formatQuantity(value: number, unit: string): string {
  if (!Number.isFinite(value)) {
    return 'n/a';
  }

  return `${value >= 100 ? value.toFixed(0) : value.toFixed(2)} ${unit}`;
}

function round(value: number): number {
  return Math.round(value * 100) / 100;
}

function progress(key: string): void {
  console.log(`measuring ${key}`);
}

function describeError(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

// process.exit rather than exitCode: idle keep-alive connections must not hold the process open.
main().then(
  (exitCode) => process.exit(exitCode),
  async (error: unknown) => {
    console.error(`bench ERROR: ${describeError(error)}`);
    if (runningBaseline) {
      await stopBaseline(runningBaseline);
    }
    killSpawnedProcesses();
    process.exit(1);
  },
);
