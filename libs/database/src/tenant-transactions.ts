import { Injectable } from '@nestjs/common';
import { TransactionHost } from '@nestjs-cls/transactional';
import { TransactionalAdapterTypeOrm } from '@nestjs-cls/transactional-adapter-typeorm';
import { ClsService } from 'nestjs-cls';
import { EntityManager } from 'typeorm';

import { ParleyStore } from '@parley/core';

import { CommittedRefusal } from './committed-refusal';

const AFTER_COMMIT = 'afterCommit' as const;

/**
 * Runs work inside one transaction scoped to one organization. Code reaches the database only
 * through `manager`, which is the open transaction's EntityManager.
 */
@Injectable()
export class TenantTransactions {
  constructor(
    private readonly txHost: TransactionHost<TransactionalAdapterTypeOrm>,
    private readonly cls: ClsService<ParleyStore>,
  ) {}

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

  /** Wraps the outermost transaction: effects queued inside it run after it commits. */
  async runThenFlush<T>(transaction: () => Promise<T>): Promise<T> {
    this.cls.set(AFTER_COMMIT, []);
    let result: T;
    try {
      result = await transaction();
    } catch (error) {
      this.cls.set(AFTER_COMMIT, []);
      throw error;
    }
    const effects = this.cls.get(AFTER_COMMIT) ?? [];
    this.cls.set(AFTER_COMMIT, []);
    for (const effect of effects) {
      effect();
    }

    return result;
  }
}
