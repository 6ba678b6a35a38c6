import { Injectable, Logger, OnApplicationBootstrap, OnApplicationShutdown } from '@nestjs/common';
import { DataSource } from 'typeorm';

/** Entries linked per call; a longer backlog takes several calls in a row. */
const BATCH = 5_000;
/**
 * How long a commit waits for others of the same organization to share one chaining call. Each
 * call has a fixed cost (the head's lock, the scan for unlinked entries, one UPDATE): at 20 ms a
 * busy organization linked about 30 entries a call for about 90 µs of PostgreSQL time each, at
 * 250 ms about 500 a call for about 40 µs each.
 */
const COALESCE_MS = 250;
/** The sweep that links whatever the calls after commit missed (another process, a crash). */
const SWEEP_MS = 1_000;

/**
 * Links committed audit entries into their organization's chain (`parley_audit_chain`, which
 * locks the chain head, so one link runs at a time per organization and the chain never forks).
 * It runs shortly after each audited commit, outside the request and never awaited by it, and
 * every second for any organization with unchained entries, so entries written by any process
 * are chained within about a second.
 */
@Injectable()
export class AuditChainer implements OnApplicationBootstrap, OnApplicationShutdown {
  private readonly logger = new Logger(AuditChainer.name);
  private readonly scheduled = new Map<string, NodeJS.Timeout>();
  private readonly running = new Map<string, Promise<number>>();
  private sweep: NodeJS.Timeout | undefined;
  private stopped = false;

  constructor(private readonly dataSource: DataSource) {}

  onApplicationBootstrap(): void {
    this.sweep = setInterval(() => {
      void this.chainEverywhere().catch((error: unknown) =>
        this.logger.warn({ reason: (error as Error).message }, 'audit chaining sweep failed'),
      );
    }, SWEEP_MS);
    this.sweep.unref();
  }

  async onApplicationShutdown(): Promise<void> {
    this.stopped = true;
    clearInterval(this.sweep);
    for (const timer of this.scheduled.values()) {
      clearTimeout(timer);
    }
    this.scheduled.clear();
    await Promise.allSettled([...this.running.values()]);
  }

  /** Asks for the organization's pending entries to be linked soon; returns at once. */
  schedule(organizationId: string): void {
    if (this.stopped || this.scheduled.has(organizationId)) {
      return;
    }
    const timer = setTimeout(() => {
      this.scheduled.delete(organizationId);
      void this.chainNow(organizationId).catch((error: unknown) =>
        this.logger.warn(
          { organizationId, reason: (error as Error).message },
          'audit chaining failed; the sweep will retry',
        ),
      );
    }, COALESCE_MS);
    timer.unref();
    this.scheduled.set(organizationId, timer);
  }

  /** Links every entry of the organization committed so far; resolves with how many. */
  async chainNow(organizationId: string): Promise<number> {
    const current = this.running.get(organizationId);
    if (current) {
      // One more pass after the running one, for entries that committed while it ran.
      await current.catch(() => undefined);
    }
    const run = this.link(organizationId).finally(() => {
      if (this.running.get(organizationId) === run) {
        this.running.delete(organizationId);
      }
    });
    this.running.set(organizationId, run);

    return run;
  }

  /**
   * Links the organization's pending entries through the caller's own transaction (a request
   * that verifies or signs the chain): on the embedded database there is one session, which that
   * transaction holds, so a second connection would wait for it forever.
   */
  async linkWith(
    db: { query(sql: string, parameters?: unknown[]): Promise<unknown> },
    organizationId: string,
  ): Promise<number> {
    return this.link(organizationId, db);
  }

  private async link(
    organizationId: string,
    db: { query(sql: string, parameters?: unknown[]): Promise<unknown> } = this.dataSource,
  ): Promise<number> {
    let total = 0;
    for (;;) {
      const rows = (await db.query('select parley_audit_chain($1, $2) as linked', [
        organizationId,
        BATCH,
      ])) as { linked: number }[];
      const linked = Number(rows[0]?.linked ?? 0);
      total += linked;
      if (linked < BATCH) {
        return total;
      }
    }
  }

  private async chainEverywhere(): Promise<void> {
    const rows: { id: string }[] = await this.dataSource.query(
      'select parley_organizations_with_unchained_audit() as id',
    );
    for (const { id } of rows) {
      await this.chainNow(id);
    }
  }
}
