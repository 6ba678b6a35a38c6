import { randomUUID } from 'node:crypto';

import { Injectable, Logger } from '@nestjs/common';
import { ClsService } from 'nestjs-cls';

import { Clock, Metrics, safeError } from '@parley/core';
import { TenantTransactions } from '@parley/database';

import { AlertListener, SecurityAlert } from './security-alert';

/** What a rule hands to `raise`; the id and the time are assigned there. */
export type AlertInput = Omit<SecurityAlert, 'id' | 'occurredAt'>;

/**
 * Raises security alerts: one log line and one counter increment at once, then, after the
 * current tenant transaction commits (at once when there is none), each registered listener is
 * called on its own, later, in a fresh request context. The caller never waits for a listener,
 * and a listener that throws or never settles affects neither the caller nor the other listeners.
 * Known shortcoming: the hand-over waits in memory, so an alert raised just before the process
 * stops is logged and counted but reaches no listener (no webhook, no incident).
 */
@Injectable()
export class Alerts {
  private readonly logger = new Logger('SecurityAlerts');
  private readonly listeners: AlertListener[] = [];
  /** Hand-overs scheduled but not yet made; `whenDispatched` waits for them. */
  private readonly scheduled = new Set<Promise<void>>();

  constructor(
    private readonly clock: Clock,
    private readonly metrics: Metrics,
    private readonly transactions: TenantTransactions,
    private readonly cls: ClsService,
  ) {}

  /** Registers a listener for every alert raised from now on (webhooks, incidents). */
  addListener(listener: AlertListener): void {
    this.listeners.push(listener);
  }

  raise(input: AlertInput): SecurityAlert {
    const alert: SecurityAlert = { ...input, id: randomUUID(), occurredAt: this.clock.now() };
    // Ids, the rule and the summary only. The subject goes as two fields: a field named
    // `subject` is blanked by the log redaction (conversations have a confidential subject).
    this.logger.warn(
      {
        alertId: alert.id,
        rule: alert.rule,
        severity: alert.severity,
        organizationId: alert.organizationId,
        subjectType: alert.subject?.type,
        subjectId: alert.subject?.id,
        summary: alert.summary,
      },
      'security alert',
    );
    this.metrics.securityAlerts.inc({ rule: alert.rule, severity: alert.severity });
    this.transactions.afterCommit(() => this.dispatch(alert));

    return alert;
  }

  /**
   * Resolves once every alert raised so far has been handed to every listener (not once the
   * listeners have finished, which a hanging one never does).
   */
  async whenDispatched(): Promise<void> {
    while (this.scheduled.size > 0) {
      await Promise.all([...this.scheduled]);
    }
  }

  private dispatch(alert: SecurityAlert): void {
    for (const listener of this.listeners) {
      const handOver = new Promise<void>((resolve) => {
        setImmediate(() => {
          this.invoke(listener, alert);
          resolve();
        });
      });
      this.scheduled.add(handOver);
      void handOver.then(() => this.scheduled.delete(handOver));
    }
  }

  private invoke(listener: AlertListener, alert: SecurityAlert): void {
    const failed = (error: unknown): void => {
      this.logger.error(
        { alertId: alert.id, rule: alert.rule, listener: listener.name, error: safeError(error) },
        'alert listener failed',
      );
    };
    try {
      // A fresh context, so the listener opens its own tenant transaction for the alert.
      const outcome = this.cls.runWith({}, () => listener.onAlert(alert));
      void Promise.resolve(outcome).catch(failed);
    } catch (error) {
      failed(error);
    }
  }
}
