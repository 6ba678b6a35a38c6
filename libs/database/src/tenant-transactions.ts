import { Injectable } from '@nestjs/common';
import { TransactionHost } from '@nestjs-cls/transactional';
import { TransactionalAdapterTypeOrm } from '@nestjs-cls/transactional-adapter-typeorm';
import { ClsService } from 'nestjs-cls';
import { DataSource, EntityManager } from 'typeorm';

import { ParleyStore } from '@parley/core';

import { CommittedRefusal } from './committed-refusal';

const AFTER_COMMIT = 'afterCommit' as const;

/** Anything that runs SQL: the open transaction's EntityManager, or NO_QUERIES. */
export interface SqlRunner {
  query(sql: string, parameters?: unknown[]): Promise<unknown>;
}

/**
 * A statement that enters its tenant itself: a call of a function whose first act is
 * `parley_enter_tenant($1)` (see migrations/1765238400000-AddTenantStatements.ts), `$1` being
 * the organization. `name` prepares it once per connection.
 */
export interface TenantStatement {
  name: string;
  text: string;
}

/** Thrown by NO_QUERIES: the work needs the database after all. */
class NeedsDatabase extends Error {
  constructor() {
    super('This work needs a tenant transaction');
    this.name = 'NeedsDatabase';
  }
}

/** A runner that refuses every query: work given it must be able to finish from caches alone. */
const NO_QUERIES: SqlRunner = { query: () => Promise.reject(new NeedsDatabase()) };

interface PreparingPool {
  query(config: { name: string; text: string; values: unknown[] }): Promise<{ rows: unknown[] }>;
}

/**
 * Runs work inside one transaction scoped to one organization. Code reaches the database only
 * through `manager`, which is the open transaction's EntityManager.
 */
@Injectable()
export class TenantTransactions {
  constructor(
    private readonly txHost: TransactionHost<TransactionalAdapterTypeOrm>,
    private readonly cls: ClsService<ParleyStore>,
    private readonly dataSource: DataSource,
  ) {}

  /**
   * Runs one tenant statement. Outside a transaction it is sent alone, in its own implicit
   * transaction (one round trip, committed when it returns); inside a tenant transaction of the
   * same organization it runs there. The statement itself refuses another organization's
   * transaction.
   */
  async statement<T>(
    organizationId: string,
    statement: TenantStatement,
    parameters: unknown[],
  ): Promise<T[]> {
    if (parameters[0] !== organizationId) {
      throw new Error(`Tenant statement ${statement.name} must name its organization first`);
    }
    if (this.active) {
      if (this.cls.get('organizationId') !== organizationId) {
        throw new Error('A tenant transaction cannot switch organization');
      }

      return (await this.manager.query(statement.text, parameters)) as T[];
    }
    const pool = (this.dataSource.driver as unknown as { master: PreparingPool }).master;
    const result = await pool.query({ ...statement, values: parameters });

    return result.rows as T[];
  }

  /**
   * Runs `work` without the database when caches allow: first with a runner that refuses every
   * query, then, if it needed one, again inside a tenant transaction. `work` must do nothing
   * before its first query that it cannot do twice. Inside a transaction it runs there directly.
   */
  async preferCache<T>(organizationId: string, work: (db: SqlRunner) => Promise<T>): Promise<T> {
    if (this.active) {
      return work(this.manager);
    }
    try {
      return await work(NO_QUERIES);
    } catch (error) {
      if (!(error instanceof NeedsDatabase)) {
        throw error;
      }
    }

    return this.run(organizationId, (manager) => work(manager));
  }

  /** The EntityManager of the current tenant transaction; throws outside one. */
  get manager(): EntityManager {
    if (!this.txHost.isTransactionActive()) {
      throw new Error('Database access outside a tenant transaction');
    }

    return this.txHost.tx;
  }

  get active(): boolean {
    return this.cls.isActive() && this.txHost.isTransactionActive();
  }

  /** Joins the open transaction of the same organization, or opens one for `organizationId`. */
  async run<T>(organizationId: string, work: (manager: EntityManager) => Promise<T>): Promise<T> {
    if (!this.cls.isActive()) {
      return this.cls.run(() => this.run(organizationId, work));
    }
    const current = this.cls.get('organizationId');
    if (this.txHost.isTransactionActive()) {
      if (current !== organizationId) {
        throw new Error('A tenant transaction cannot switch organization');
      }

      return work(this.txHost.tx);
    }
    this.cls.set('organizationId', organizationId);

    return this.runThenFlush(() =>
      this.txHost.withTransaction(() =>
        (work(this.txHost.tx) as Promise<T | CommittedRefusal>).catch(CommittedRefusal.keep),
      ),
    ).then(CommittedRefusal.raise) as Promise<T>;
  }

  /** Runs `effect` once the outermost transaction has committed (never if it rolls back). */
  afterCommit(effect: () => void): void {
    if (!this.active) {
      effect();

      return;
    }
    const effects = this.cls.get(AFTER_COMMIT) ?? [];
    effects.push(effect);
    this.cls.set(AFTER_COMMIT, effects);
  }

  /**
   * Wraps the outermost transaction: effects queued inside it run after it commits. Its list of
   * effects lives in a context of its own, so two transactions that one request runs at once
   * (its own and, say, a session read renewed in the background) never take each other's.
   */
  async runThenFlush<T>(transaction: () => Promise<T>): Promise<T> {
    const effects: (() => void)[] = [];
    const result = await this.cls.run({ ifNested: 'inherit' }, () => {
      this.cls.set(AFTER_COMMIT, effects);

      return transaction();
    });
    for (const effect of effects) {
      effect();
    }

    return result;
  }
}
