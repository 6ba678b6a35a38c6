import { Injectable, Logger, Optional } from '@nestjs/common';
import { EntityManager } from 'typeorm';

import { Actor, Clock, Metrics, RequestContext, redactClassified } from '@parley/core';
import { TenantTransactions } from '@parley/database';

import {
  AuditEventTypes,
  AuditTarget,
  ChangeAuditAction,
  ExplicitAuditAction,
} from './audit-action';
import { AuditEventEntity } from './audit-event.entity';
import { AuditChainer } from './chain/audit-chainer';

export interface AuditEntryInput {
  organizationId: string;
  action: ExplicitAuditAction | ChangeAuditAction;
  target?: AuditTarget;
  changes?: string[];
  metadata?: Record<string, unknown>;
  actor?: Actor | null;
}

/** An entry written through `write` or `record`, as observers see it once its transaction commits. */
export interface ObservedAuditEntry {
  organizationId: string;
  action: ExplicitAuditAction | ChangeAuditAction;
  target?: AuditTarget;
  metadata: Record<string, unknown>;
  actor: Actor | null;
  ip: string | undefined;
}

export type AuditObserver = (entry: ObservedAuditEntry) => void;

/** Writes audit entries in the same transaction as the change they record. */
@Injectable()
export class AuditService {
  private readonly logger = new Logger(AuditService.name);
  private readonly observers: AuditObserver[] = [];

  constructor(
    private readonly context: RequestContext,
    private readonly clock: Clock,
    private readonly transactions: TenantTransactions,
    private readonly metrics: Metrics,
    @Optional() private readonly chainer?: AuditChainer,
  ) {}

  /**
   * Says an entry of the organization was inserted in the current transaction by SQL of the
   * caller's own (the message path): it is linked into the chain once the transaction commits.
   */
  appended(organizationId: string): void {
    this.transactions.afterCommit(() => this.chainer?.schedule(organizationId));
  }

  /**
   * Calls `observer` with every entry written through `write` or `record`, after the transaction
   * that wrote it commits (never for one that rolls back); detection reads the trail this way.
   * Entries inserted by `entry()` on hot paths (messages) are not observed.
   */
  observe(observer: AuditObserver): void {
    this.observers.push(observer);
  }

  /** Records an explicit security event in the caller's organization transaction. */
  async record<A extends ExplicitAuditAction>(
    organizationId: string,
    action: A,
    metadata: AuditEventTypes[A],
    target?: AuditTarget,
    actor?: Actor | null,
  ): Promise<void> {
    await this.transactions.run(organizationId, (manager) =>
      this.write(manager, {
        organizationId,
        action,
        metadata: metadata as Record<string, unknown>,
        target,
        actor,
      }),
    );
  }

  /** Inserts one entry through the given transaction's manager. */
  async write(manager: EntityManager, input: AuditEntryInput): Promise<void> {
    const started = process.hrtime.bigint();
    await manager.insert(AuditEventEntity, this.entry(input) as never);
    this.metrics.auditAppendSeconds.observe(Number(process.hrtime.bigint() - started) / 1e9);
    this.appended(input.organizationId);
    this.notifyAfterCommit(input);
  }

  private notifyAfterCommit(input: AuditEntryInput): void {
    if (this.observers.length === 0) {
      return;
    }
    const observed: ObservedAuditEntry = {
      organizationId: input.organizationId,
      action: input.action,
      target: input.target,
      metadata: input.metadata ?? {},
      actor: (input.actor === undefined ? this.context.actor : input.actor) ?? null,
      ip: this.context.ip,
    };
    this.transactions.afterCommit(() => {
      for (const observer of this.observers) {
        try {
          observer(observed);
        } catch (error) {
          this.logger.error(
            { action: observed.action, reason: (error as Error).message },
            'audit observer failed',
          );
        }
      }
    });
  }

  /**
   * The row an entry becomes, with actor, request id and address taken from the context; for
   * hot paths that write the entry in the same statement as the change it records.
   */
  entry(
    input: AuditEntryInput,
  ): Omit<AuditEventEntity, 'id' | 'seq' | 'prevHash' | 'hash' | 'appendId'> {
    const actor = input.actor === undefined ? this.context.actor : input.actor;

    return {
      organizationId: input.organizationId,
      occurredAt: this.clock.now(),
      actorType: !actor ? 'anonymous' : actor.type === 'apiKey' ? 'api_key' : actor.type,
      actorId: actor ? actor.id : null,
      action: input.action,
      targetType: input.target?.type ?? null,
      targetId: input.target?.id ?? null,
      requestId: this.context.requestId ?? null,
      ip: this.context.ip ?? null,
      changes: input.changes ?? [],
      // No confidential value or credential reaches the trail, however the caller built it.
      metadata: redactClassified(input.metadata ?? {}),
      elevationId: actor?.type === 'user' ? (actor.elevation?.id ?? null) : null,
    };
  }
}
