import { Injectable, OnModuleInit } from '@nestjs/common';

import { AlertListener, Alerts, SecurityAlert } from '../alerts';

import { WebhookDispatcher } from './webhook-dispatcher';

/**
 * Queues a `security.alert` delivery to every enabled endpoint of the alert's organization that
 * subscribes to it. `Alerts` calls it after the raising transaction has committed, in a context
 * of its own, so the queueing is one insert in a transaction of its own and the request that
 * raised the alert never waits for it. An installation-wide alert (no organization) has no
 * endpoint to go to.
 */
@Injectable()
export class WebhookAlertListener implements AlertListener, OnModuleInit {
  readonly name = 'webhooks';
  /** Alerts being queued now; `whenQueued` waits for them. */
  private readonly inFlight = new Set<Promise<unknown>>();

  constructor(
    private readonly alerts: Alerts,
    private readonly dispatcher: WebhookDispatcher,
  ) {}

  onModuleInit(): void {
    this.alerts.addListener(this);
  }

  async onAlert(alert: SecurityAlert): Promise<void> {
    if (alert.organizationId === null) {
      return;
    }
    const queued = this.queue(alert, alert.organizationId);
    this.inFlight.add(queued);
    try {
      await queued;
    } finally {
      this.inFlight.delete(queued);
    }
  }

  /** Resolves once every alert handed over so far is queued (or failed to be). */
  async whenQueued(): Promise<void> {
    while (this.inFlight.size > 0) {
      await Promise.allSettled([...this.inFlight]);
    }
  }

  private queue(alert: SecurityAlert, organizationId: string): Promise<string[]> {
    return this.dispatcher.enqueue(
      organizationId,
      'security.alert',
      {
        alertId: alert.id,
        rule: alert.rule,
        severity: alert.severity,
        summary: alert.summary,
        subject: alert.subject ? { type: alert.subject.type, id: alert.subject.id } : null,
        occurredAt: alert.occurredAt.toISOString(),
        details: alert.details,
      },
      // By the alert contract the subject is a type and an id, never a conversation subject.
      { keep: ['subject'] },
    );
  }
}
