import { AppConfig, Clock, loadConfig } from '@parley/core';

import { AlertInput, Alerts } from '../alerts/alerts.service';
import { SecurityAlert } from '../alerts/security-alert';

import { Detection, Observation } from './detection.service';

const ORGANIZATION = '0b6f1c52-8a8e-4a5e-9d55-7c1f1f3a0b11';

class RaisedAlerts {
  readonly raised: AlertInput[] = [];

  raise(input: AlertInput): SecurityAlert {
    this.raised.push(input);

    return { ...input, id: `alert-${this.raised.length}`, occurredAt: new Date(0) };
  }
}

function detectionWith(env: Record<string, string>): {
  detection: Detection;
  alerts: RaisedAlerts;
  clock: Clock;
} {
  const config: AppConfig = loadConfig(env);
  const alerts = new RaisedAlerts();
  const clock = new Clock();

  return { detection: new Detection(config, clock, alerts as unknown as Alerts), alerts, clock };
}

function probe(key = 'user:a'): Observation {
  return {
    rule: 'cross_tenant_probing',
    organizationId: ORGANIZATION,
    key,
    subject: { type: 'user', id: key },
    details: { route: '/api/v1/contacts/:id' },
  };
}

describe('detection', () => {
  let detection: Detection;
  let alerts: RaisedAlerts;
  let clock: Clock;

  beforeEach(() => {
    ({ detection, alerts, clock } = detectionWith({ DETECT_CROSS_TENANT_PROBING: '3/60' }));
  });

  afterEach(async () => {
    await detection.onModuleDestroy();
  });

  async function observe(times: number, observation = probe()): Promise<void> {
    for (let event = 0; event < times; event += 1) {
      detection.observe(observation);
    }
    await detection.whenIdle();
  }

  it('raises nothing below the threshold and one alert at it', async () => {
    await observe(2);
    expect(alerts.raised).toEqual([]);

    await observe(1);
    expect(alerts.raised).toEqual([
      {
        organizationId: ORGANIZATION,
        rule: 'cross_tenant_probing',
        severity: 'high',
        summary: '3 requests by one caller for ids it cannot see (404) within a minute.',
        subject: { type: 'user', id: 'user:a' },
        details: { route: '/api/v1/contacts/:id', threshold: 3, windowSeconds: 60 },
      },
    ]);
  });

  it('raises once per key and window, and again in the next window', async () => {
    await observe(10);
    await observe(3, probe('user:b'));
    expect(alerts.raised.map((alert) => alert.subject?.id)).toEqual(['user:a', 'user:b']);

    clock.advance(60_000);
    await observe(2);
    expect(alerts.raised).toHaveLength(2);
    await observe(1);
    expect(alerts.raised).toHaveLength(3);
  });

  it('counts an observation with a novelty only when its value is new', async () => {
    ({ detection, alerts, clock } = detectionWith({ DETECT_API_KEY_NEW_ADDRESS: '2/3600' }));
    const use = (address: string): void =>
      detection.observe(
        { rule: 'api_key_new_address', organizationId: ORGANIZATION, key: 'api_key:k' },
        { key: 'api_key:k', value: address },
      );

    for (const address of ['a', 'a', 'b', 'b', 'a']) {
      use(address);
      await detection.whenIdle();
    }
    expect(alerts.raised).toEqual([]);

    use('c');
    await detection.whenIdle();
    expect(alerts.raised.map((alert) => alert.rule)).toEqual(['api_key_new_address']);
  });

  it('ignores a rule that is off', async () => {
    ({ detection, alerts } = detectionWith({ DETECT_CROSS_TENANT_PROBING: 'off' }));

    await observe(50);

    expect(alerts.raised).toEqual([]);
  });
});
