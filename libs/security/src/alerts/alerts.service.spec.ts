import { AsyncLocalStorage } from 'node:async_hooks';

import { Logger } from '@nestjs/common';
import { ClsService } from 'nestjs-cls';

import { Clock, Metrics } from '@parley/core';
import { TenantTransactions } from '@parley/database';

import { AlertInput, Alerts } from './alerts.service';
import { AlertListener, SecurityAlert } from './security-alert';

const INPUT: AlertInput = {
  organizationId: '0b6f1c52-8a8e-4a5e-9d55-7c1f1f3a0b11',
  rule: 'mass_deletion',
  severity: 'high',
  summary: '3 deletions by one caller within 5 minutes.',
  subject: { type: 'user', id: '6f1c1a52-8a8e-4a5e-9d55-7c1f1f3a0b22' },
  details: { threshold: 3, windowSeconds: 300 },
};

/** Stands in for TenantTransactions: effects wait in a queue until `commit`. */
class PendingCommit {
  open = true;
  private readonly effects: (() => void)[] = [];

  afterCommit(effect: () => void): void {
    if (this.open) {
      this.effects.push(effect);
    } else {
      effect();
    }
  }

  commit(): void {
    this.open = false;
    for (const effect of this.effects.splice(0)) {
      effect();
    }
  }
}

class Recorder implements AlertListener {
  readonly alerts: SecurityAlert[] = [];

  constructor(readonly name: string) {}

  async onAlert(alert: SecurityAlert): Promise<void> {
    this.alerts.push(alert);
  }
}

describe('alerts', () => {
  let alerts: Alerts;
  let metrics: Metrics;
  let clock: Clock;
  let transaction: PendingCommit;
  let warn: jest.SpyInstance;
  let error: jest.SpyInstance;

  beforeEach(() => {
    metrics = new Metrics();
    clock = new Clock();
    transaction = new PendingCommit();
    alerts = new Alerts(
      clock,
      metrics,
      transaction as unknown as TenantTransactions,
      new ClsService(new AsyncLocalStorage()),
    );
    warn = jest.spyOn(Logger.prototype, 'warn').mockImplementation(() => undefined);
    error = jest.spyOn(Logger.prototype, 'error').mockImplementation(() => undefined);
  });

  afterEach(() => {
    warn.mockRestore();
    error.mockRestore();
  });

  it('gives the alert an id and the Clock time, logs it and counts it', async () => {
    clock.advance(3_600_000);

    const alert = alerts.raise(INPUT);

    expect(alert.id).toMatch(
      /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/,
    );
    expect(Math.abs(alert.occurredAt.getTime() - (Date.now() + 3_600_000))).toBeLessThan(1000);
    expect(warn).toHaveBeenCalledTimes(1);
    expect(warn).toHaveBeenCalledWith(
      {
        alertId: alert.id,
        rule: 'mass_deletion',
        severity: 'high',
        organizationId: INPUT.organizationId,
        subjectType: 'user',
        subjectId: INPUT.subject?.id,
        summary: INPUT.summary,
      },
      'security alert',
    );
    const counted = await metrics.securityAlerts.get();
    expect(counted.values).toEqual([
      { labels: { rule: 'mass_deletion', severity: 'high' }, value: 1 },
    ]);
  });

  it('hands the alert to listeners only after the transaction commits, once each', async () => {
    const first = new Recorder('first');
    const second = new Recorder('second');
    alerts.addListener(first);
    alerts.addListener(second);

    const alert = alerts.raise(INPUT);
    await alerts.whenDispatched();
    expect(first.alerts).toEqual([]);

    transaction.commit();
    await alerts.whenDispatched();
    expect(first.alerts).toEqual([alert]);
    expect(second.alerts).toEqual([alert]);
  });

  it('never runs a listener inside the raise call', () => {
    transaction.commit();
    const calls: string[] = [];
    alerts.addListener({
      name: 'synchronous',
      onAlert: async () => {
        calls.push('listener');
      },
    });

    alerts.raise(INPUT);
    calls.push('raised');

    expect(calls).toEqual(['raised']);
  });

  it('keeps other listeners going when one throws, rejects or never settles', async () => {
    transaction.commit();
    const after = new Recorder('after');
    alerts.addListener({
      name: 'throws',
      onAlert: () => {
        throw new Error('boom');
      },
    });
    alerts.addListener({ name: 'rejects', onAlert: () => Promise.reject(new Error('later boom')) });
    alerts.addListener({ name: 'hangs', onAlert: () => new Promise<void>(() => undefined) });
    alerts.addListener(after);

    const alert = alerts.raise(INPUT);
    await alerts.whenDispatched();
    await new Promise((resolve) => setImmediate(resolve));

    expect(after.alerts).toEqual([alert]);
    const failed = error.mock.calls.map(([fields]) => (fields as { listener: string }).listener);
    expect(failed.sort()).toEqual(['rejects', 'throws']);
  });
});
