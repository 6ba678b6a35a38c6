import { performance } from 'node:perf_hooks';

import { Client } from 'pg';

import { BenchServer, launchParleyServer } from './bench-encryption';
import { callApi, describeResponse, isRecord } from './client-kit';

// The audit part of scripts/bench.ts: audit appends written straight into the bench database
// the way the server writes them (the runtime role, the organization set in the transaction,
// one entry per transaction), the verification of the chain they leave through the API, and the
// Parley server that stores messages without their audit entries (BENCH_UNSAFE_NO_MESSAGE_AUDIT).

const VERIFY_TIMEOUT_MS = 120_000;

/** The action of the bench's entries; the chain does not care what an entry says. */
export const BENCH_AUDIT_ACTION = 'bench.audit_append';

/** The action of the entries that top the chain up before it is verified. */
export const BENCH_AUDIT_FILL_ACTION = 'bench.audit_fill';

/** Entries per transaction of the top-up; the server links them into the chain afterwards. */
const FILL_BATCH = 1_000;

export interface ChainVerifyResult {
  valid: boolean;
  entries: number;
  headSeq: number | null;
  broken: unknown;
  checkpointsChecked: number;
  /** The request's wall time in the bench process, response body read. */
  seconds: number;
  entriesPerSecond: number;
}

/**
 * The database of the server that writes no message audit entries: the bench database's name
 * with `_noaudit`, so that each of the two servers compared has a database of its own.
 */
export function noAuditDatabaseUrl(databaseUrl: string): string {
  const url = new URL(databaseUrl);
  const name = decodeURIComponent(url.pathname.replace(/^\//, ''));
  url.pathname = `/${name}_noaudit`;

  return url.toString();
}

/**
 * Concurrent audit writers, each its own pg client connected with the server's database URL as
 * the runtime role (`-c role=parley_app`), all appending to one organization's chain: one insert
 * per transaction, the organization set with set_config(..., true) in each, as
 * test/support/workers/audit-append.js does. Inserts take no lock on the chain head; the server
 * links them into the chain just after they commit (and verify links whatever is left).
 */
export class AuditAppenders {
  /** Entries committed by all writers since open, warm-ups included. */
  committed = 0;

  private readonly sequences: number[];

  private constructor(
    private readonly clients: Client[],
    private readonly organizationId: string,
    private readonly tag: string,
  ) {
    this.sequences = clients.map(() => 0);
  }

  static async open(
    databaseUrl: string,
    organizationId: string,
    writers: number,
    tag: string,
  ): Promise<AuditAppenders> {
    const clients: Client[] = [];
    try {
      for (let index = 0; index < writers; index += 1) {
        const client = new Client({ connectionString: databaseUrl, options: '-c role=parley_app' });
        clients.push(client);
        await client.connect();
      }
    } catch (error) {
      await Promise.allSettled(clients.map((client) => client.end()));
      throw error;
    }

    return new AuditAppenders(clients, organizationId, tag);
  }

  get writers(): number {
    return this.clients.length;
  }

  /** One entry in one transaction on the writer's own client: begin, set, insert, commit. */
  async append(writer: number): Promise<void> {
    const client = this.clients[writer];
    this.sequences[writer] += 1;
    try {
      await client.query('begin');
      await client.query("select set_config('app.organization_id', $1, true)", [
        this.organizationId,
      ]);
      await client.query(
        `insert into audit_events (organization_id, actor_type, action, metadata)
         values ($1, 'system', $2, $3)`,
        [
          this.organizationId,
          BENCH_AUDIT_ACTION,
          { run: this.tag, writer, index: this.sequences[writer] },
        ],
      );
      await client.query('commit');
      this.committed += 1;
    } catch (error) {
      await client.query('rollback').catch(() => undefined);
      throw error;
    }
  }

  /**
   * Tops the chain up to `entries` with multi-row inserts (FILL_BATCH rows per transaction, the
   * insert trigger chaining each row), so that the verification walks a chain of the same length
   * in every run whatever the append rate was. Returns the entries added.
   */
  async fillTo(entries: number): Promise<number> {
    const client = this.clients[0];
    let added = 0;
    for (let missing = entries - (await this.headSeq()); missing > 0;) {
      const rows = Math.min(missing, FILL_BATCH);
      try {
        await client.query('begin');
        await client.query("select set_config('app.organization_id', $1, true)", [
          this.organizationId,
        ]);
        await client.query(
          `insert into audit_events (organization_id, actor_type, action, metadata)
           select $1, 'system', $2, jsonb_build_object('run', $3::text, 'fill', n)
             from generate_series(1, $4::int) as n`,
          [this.organizationId, BENCH_AUDIT_FILL_ACTION, this.tag, rows],
        );
        await client.query('commit');
      } catch (error) {
        await client.query('rollback').catch(() => undefined);
        throw error;
      }
      added += rows;
      missing -= rows;
    }

    return added;
  }

  /** The sequence number of the organization's chain head, as the runtime role reads it. */
  async headSeq(): Promise<number> {
    const client = this.clients[0];
    try {
      await client.query('begin');
      await client.query("select set_config('app.organization_id', $1, true)", [
        this.organizationId,
      ]);
      const result = await client.query<{ seq: string }>(
        'select seq from audit_chain_heads where organization_id = $1',
        [this.organizationId],
      );
      await client.query('commit');

      return result.rows[0] ? Number(result.rows[0].seq) : 0;
    } catch (error) {
      await client.query('rollback').catch(() => undefined);
      throw error;
    }
  }

  async close(): Promise<void> {
    await Promise.allSettled(this.clients.map((client) => client.end()));
  }
}

/** GET /api/v1/audit/verify once, timed from the request to the parsed response. */
export async function timeChainVerification(
  baseUrl: string,
  token: string,
): Promise<ChainVerifyResult> {
  const started = performance.now();
  const response = await callApi(baseUrl, {
    method: 'GET',
    path: '/api/v1/audit/verify',
    token,
    timeoutMs: VERIFY_TIMEOUT_MS,
  });
  const seconds = (performance.now() - started) / 1000;
  if (response.status !== 200 || !isRecord(response.body)) {
    throw new Error(`GET /api/v1/audit/verify -> ${describeResponse(response)}`);
  }

  const body = response.body;
  if (typeof body.valid !== 'boolean' || typeof body.entries !== 'number') {
    throw new Error(`GET /api/v1/audit/verify: no valid/entries in ${describeResponse(response)}`);
  }
  const head = isRecord(body.head) && typeof body.head.seq === 'number' ? body.head.seq : null;
  const checkpoints =
    isRecord(body.checkpoints) && typeof body.checkpoints.checked === 'number'
      ? body.checkpoints.checked
      : 0;

  return {
    valid: body.valid,
    entries: body.entries,
    headSeq: head,
    broken: body.broken ?? null,
    checkpointsChecked: checkpoints,
    seconds: Math.round(seconds * 1000) / 1000,
    entriesPerSecond: seconds > 0 ? Math.round(body.entries / seconds) : Number.NaN,
  };
}

/**
 * Starts a second Parley server from dist/ with exactly the environment another bench server
 * ran with (its `environment`), but for its port, data directory and database and the variables
 * in `extra`; waits until GET /health/ready answers 200. Used for the server with
 * BENCH_UNSAFE_NO_MESSAGE_AUDIT=true, so that it differs from the audited one in that alone.
 */
export async function startVariantServer(options: {
  name: string;
  like: BenchServer;
  databaseUrl: string;
  extra: Record<string, string>;
}): Promise<BenchServer> {
  return launchParleyServer({
    name: options.name,
    databaseUrl: options.databaseUrl,
    nullCipher: options.like.nullCipher,
    environment: (local) => ({
      ...options.like.environment,
      DATABASE_URL: options.databaseUrl,
      ...local,
      ...options.extra,
    }),
  });
}
