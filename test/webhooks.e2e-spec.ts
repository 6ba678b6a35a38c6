import { createHmac, randomUUID, timingSafeEqual } from 'node:crypto';
import {
  IncomingHttpHeaders,
  IncomingMessage,
  Server,
  ServerResponse,
  createServer,
} from 'node:http';
import { AddressInfo } from 'node:net';

import { Client } from 'pg';

import { Clock } from '@parley/core';
import {
  Alerts,
  Detection,
  SecurityAlert,
  WebhookAlertListener,
  WebhookWorker,
} from '@parley/security';

import {
  CreatedWebhook,
  Member,
  MembersByRole,
  SignedUpOrganization,
  addMemberOfEachRole,
  createApiKey,
  createWebhook,
  login,
  requestWithApiKey,
  signupOrganization,
} from './factories';
import {
  ApiResponse,
  TestServer,
  expectNoSecretsInLogs,
  expectProblem,
  startServer,
  testDatabaseUrl,
} from './support';

const SECOND_MS = 1000;
const HOUR_MS = 3600 * SECOND_MS;
const TOLERANCE_SECONDS = 5 * 60;
const SECRET_SHAPE = /^whsec_[A-Za-z0-9_-]{43}$/;

interface Received {
  headers: IncomingHttpHeaders;
  body: string;
}

/**
 * A webhook receiver on 127.0.0.1 started by the test. It answers `status`, or holds every
 * request without answering while `hang` is on; it can stop and start again on the same port.
 */
class Receiver {
  readonly received: Received[] = [];
  status = 200;
  /** Sent as `Location` with the status, to answer a redirect. */
  location: string | undefined;
  hang = false;
  port = 0;
  private server: Server | undefined;
  private readonly held: ServerResponse[] = [];
  private readonly arrivals: (() => void)[] = [];

  get url(): string {
    return `http://127.0.0.1:${this.port}/hooks/parley`;
  }

  /** Requests it holds without answering right now. */
  get holding(): number {
    return this.held.filter((response) => !response.destroyed && !response.writableEnded).length;
  }

  async start(): Promise<this> {
    const server = createServer((request: IncomingMessage, response: ServerResponse) => {
      let body = '';
      request.setEncoding('utf8');
      request.on('data', (chunk: string) => (body += chunk));
      request.on('end', () => {
        this.received.push({ headers: request.headers, body });
        for (const arrived of this.arrivals.splice(0)) {
          arrived();
        }
        if (this.hang) {
          this.held.push(response);

          return;
        }
        response
          .writeHead(this.status, {
            'content-type': 'text/plain',
            ...(this.location ? { location: this.location } : {}),
          })
          .end('ok');
      });
    });
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(this.port, '127.0.0.1', () => resolve());
    });
    this.port = (server.address() as AddressInfo).port;
    this.server = server;

    return this;
  }

  async stop(): Promise<void> {
    const server = this.server;
    this.server = undefined;
    if (!server) {
      return;
    }
    server.closeAllConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  }

  /** Resolves once `count` requests in all have been read. */
  async arrivedAtLeast(count: number): Promise<void> {
    while (this.received.length < count) {
      await new Promise<void>((resolve) => this.arrivals.push(resolve));
    }
  }

  deliveriesOf(deliveryId: string): Received[] {
    return this.received.filter((entry) => entry.headers['parley-delivery-id'] === deliveryId);
  }
}

/** A port nothing listens on: a receiver that is down. */
async function closedPortReceiver(): Promise<Receiver> {
  const receiver = await new Receiver().start();
  await receiver.stop();

  return receiver;
}

/**
 * The receiver's check, written from the documented scheme only: `Parley-Signature` is
 * `t=<unix seconds>,v1=<hex>[,v1=<hex>]`, each v1 the HMAC-SHA256 of `<id>.<t>.<body>` under
 * the secret; a timestamp more than five minutes from now is refused, and the comparison is
 * constant-time. Returns whether any v1 matches.
 */
function verifySignature(
  received: Received,
  secret: string,
  nowSeconds: number,
): { valid: boolean; matching: number[] } {
  const header = String(received.headers['parley-signature'] ?? '');
  const deliveryId = String(received.headers['parley-delivery-id'] ?? '');
  const fields = header.split(',').map((part) => {
    const at = part.indexOf('=');

    return [part.slice(0, at), part.slice(at + 1)] as const;
  });
  const timestamp = fields.find(([name]) => name === 't')?.[1] ?? '';
  const signatures = fields.filter(([name]) => name === 'v1').map(([, value]) => value);
  if (!/^\d+$/.test(timestamp) || Math.abs(nowSeconds - Number(timestamp)) > TOLERANCE_SECONDS) {
    return { valid: false, matching: [] };
  }
  const expected = createHmac('sha256', secret)
    .update(`${deliveryId}.${timestamp}.${received.body}`, 'utf8')
    .digest();
  const matching = signatures
    .map((signature, index) => {
      const given = Buffer.from(signature, 'hex');

      return given.length === expected.length && timingSafeEqual(given, expected) ? index : -1;
    })
    .filter((index) => index >= 0);

  return { valid: matching.length > 0, matching };
}

function signaturesIn(received: Received): string[] {
  return String(received.headers['parley-signature'] ?? '')
    .split(',')
    .filter((part) => part.startsWith('v1='));
}

describe('signed webhooks', () => {
  let server: TestServer;
  let clock: Clock;
  let worker: WebhookWorker;
  let owner: Client;
  let organization: SignedUpOrganization;
  let members: MembersByRole;
  let other: SignedUpOrganization;
  let receiver: Receiver;
  const secrets: string[] = [];

  function admin(): Member {
    return organization.admin;
  }

  /** Access tokens last an hour and sessions twelve: after a big move of the clock, sign in again. */
  async function signInAgain(): Promise<void> {
    for (const member of Object.values(members)) {
      member.tokens = await login(server.api, organization.slug, member.email, member.password);
    }
    other.admin.tokens = await login(
      server.api,
      other.slug,
      other.admin.email,
      other.admin.password,
    );
  }

  async function create(url: string, events = ['security.alert']): Promise<CreatedWebhook> {
    const created = await createWebhook(server.api, admin(), url, events);
    secrets.push(created.secret);

    return created;
  }

  async function ping(endpointId: string, as: Member = admin()): Promise<ApiResponse> {
    return server.api.post(`/api/v1/webhooks/${endpointId}/ping`, undefined, {
      token: as.tokens.accessToken,
    });
  }

  async function deliveries(endpointId: string): Promise<Record<string, unknown>[]> {
    const response = await server.api.get(`/api/v1/webhooks/${endpointId}/deliveries`, {
      token: admin().tokens.accessToken,
    });
    expect(response.status).toBe(200);

    return response.body.items;
  }

  async function delivery(endpointId: string, deliveryId: string) {
    return (await deliveries(endpointId)).find((item) => item.id === deliveryId) as Record<
      string,
      unknown
    >;
  }

  function gapSeconds(item: Record<string, unknown>): number {
    return (Date.parse(String(item.nextAttemptAt)) - Date.parse(String(item.lastAttemptAt))) / 1000;
  }

  beforeAll(async () => {
    server = await startServer({
      env: {
        WEBHOOK_ALLOW_PRIVATE_ADDRESSES: 'true',
        WEBHOOK_MAX_ATTEMPTS: '4',
        // This server's clock runs ahead (below): it must not act on the shared database's
        // other rows by that clock, signing checkpoints, escalating incidents or rotating keys.
        AUDIT_CHECKPOINT_MINUTES: '0',
        INCIDENT_ESCALATION_CHECK_SECONDS: '0',
        SIGNING_KEY_ROTATION_DAYS: '365',
      },
    });
    clock = server.app.get(Clock);
    worker = server.app.get(WebhookWorker);
    // Every test server in the run shares this database, and each one's worker sends whatever
    // is due by its own clock (and refuses 127.0.0.1, unlike this one). Ten days ahead, this
    // suite's deliveries are due for no other server, so every attempt is this server's.
    clock.advance(10 * 24 * HOUR_MS);
    owner = new Client({ connectionString: testDatabaseUrl() });
    await owner.connect();
    organization = await signupOrganization(server.api);
    members = await addMemberOfEachRole(server.api, organization);
    other = await signupOrganization(server.api);
    receiver = await new Receiver().start();
  });

  afterAll(async () => {
    await receiver?.stop();
    // Nothing of this suite is left for a later run's worker to send.
    await owner?.query('delete from webhook_endpoints where organization_id = any ($1)', [
      [organization?.id, other?.id].filter(Boolean),
    ]);
    await owner?.end();
    await server?.close();
  });

  it('creates an endpoint and shows its secret once, never in a read', async () => {
    const response = await server.api.post(
      '/api/v1/webhooks',
      { url: receiver.url, events: ['security.alert'] },
      { token: admin().tokens.accessToken },
    );
    expect(response.status).toBe(201);
    const { secret, ...endpoint } = response.body;
    server.api.remember(secret);
    secrets.push(secret);

    expect(secret).toMatch(SECRET_SHAPE);
    expect(Math.abs(Date.parse(endpoint.createdAt) - clock.nowMs())).toBeLessThan(60 * SECOND_MS);
    expect(endpoint).toEqual({
      id: expect.any(String),
      url: receiver.url,
      events: ['security.alert'],
      enabled: true,
      createdAt: expect.any(String),
      updatedAt: expect.any(String),
      secretRotatedAt: null,
      previousSecretValidUntil: null,
    });
    const one = await server.api.get(`/api/v1/webhooks/${endpoint.id}`, {
      token: admin().tokens.accessToken,
    });
    const list = await server.api.get('/api/v1/webhooks', { token: admin().tokens.accessToken });
    expect(one.status).toBe(200);
    expect(one.body).toEqual(endpoint);
    expect(list.body.items).toContainEqual(endpoint);
    expect(one.text).not.toContain(secret);
    expect(list.text).not.toContain(secret);
    expect(one.body).not.toHaveProperty('secret');
  });

  it('delivers a ping signed so that it verifies, and fails the check once tampered or stale', async () => {
    const endpoint = await create(receiver.url);

    const queued = await ping(endpoint.id);
    expect(queued.status).toBe(202);
    expect(queued.body).toEqual({ deliveryId: expect.any(String), status: 'pending' });
    await worker.runDue();

    const [arrived, ...more] = receiver.deliveriesOf(queued.body.deliveryId);
    expect(more).toEqual([]);
    expect(arrived.headers).toMatchObject({
      'content-type': 'application/json',
      'parley-delivery-id': queued.body.deliveryId,
      'parley-event': 'webhook.ping',
    });
    expect(JSON.parse(arrived.body)).toEqual({
      id: queued.body.deliveryId,
      event: 'webhook.ping',
      createdAt: expect.any(String),
      organizationId: organization.id,
      data: { endpointId: endpoint.id, message: expect.any(String) },
    });
    const now = clock.nowSeconds();
    expect(verifySignature(arrived, endpoint.secret, now)).toEqual({ valid: true, matching: [0] });
    expect(signaturesIn(arrived)).toHaveLength(1);
    // Each part of the signed text counts, and the timestamp must be fresh.
    expect(
      verifySignature({ ...arrived, body: `${arrived.body} ` }, endpoint.secret, now).valid,
    ).toBe(false);
    const otherId = { ...arrived.headers, 'parley-delivery-id': randomUUID() };
    expect(verifySignature({ ...arrived, headers: otherId }, endpoint.secret, now).valid).toBe(
      false,
    );
    expect(verifySignature(arrived, endpoint.secret, now + TOLERANCE_SECONDS + 1).valid).toBe(
      false,
    );
    expect(verifySignature(arrived, secrets[0], now).valid).toBe(false);

    expect(await delivery(endpoint.id, queued.body.deliveryId)).toMatchObject({
      event: 'webhook.ping',
      status: 'delivered',
      attempts: 1,
      lastStatusCode: 200,
      lastError: null,
      nextAttemptAt: null,
      deliveredAt: expect.any(String),
    });
  });

  it('signs with both secrets during a rotation and with the new one alone after the overlap', async () => {
    const endpoint = await create(receiver.url);

    const rotated = await server.api.post(
      `/api/v1/webhooks/${endpoint.id}/rotate-secret`,
      undefined,
      {
        token: admin().tokens.accessToken,
      },
    );
    expect(rotated.status).toBe(200);
    const newSecret: string = rotated.body.secret;
    server.api.remember(newSecret);
    secrets.push(newSecret);
    expect(newSecret).toMatch(SECRET_SHAPE);
    expect(newSecret).not.toBe(endpoint.secret);
    expect(Date.parse(rotated.body.previousSecretValidUntil) - clock.nowMs()).toBeGreaterThan(
      24 * HOUR_MS - 60 * SECOND_MS,
    );

    const during = await ping(endpoint.id);
    await worker.runDue();
    const [signedTwice] = receiver.deliveriesOf(during.body.deliveryId);
    expect(signaturesIn(signedTwice)).toHaveLength(2);
    expect(verifySignature(signedTwice, newSecret, clock.nowSeconds())).toEqual({
      valid: true,
      matching: [0],
    });
    expect(verifySignature(signedTwice, endpoint.secret, clock.nowSeconds())).toEqual({
      valid: true,
      matching: [1],
    });

    clock.advance(24 * HOUR_MS + SECOND_MS);
    await signInAgain();
    const after = await ping(endpoint.id);
    await worker.runDue();
    const [signedOnce] = receiver.deliveriesOf(after.body.deliveryId);
    expect(signaturesIn(signedOnce)).toHaveLength(1);
    expect(verifySignature(signedOnce, newSecret, clock.nowSeconds()).valid).toBe(true);
    expect(verifySignature(signedOnce, endpoint.secret, clock.nowSeconds()).valid).toBe(false);
    const read = await server.api.get(`/api/v1/webhooks/${endpoint.id}`, {
      token: admin().tokens.accessToken,
    });
    expect(read.body).toMatchObject({
      previousSecretValidUntil: null,
      secretRotatedAt: expect.any(String),
    });
  });

  it('answers at once for a receiver that is down, retries with back-off as the clock moves, and delivers exactly once when it is up', async () => {
    const down = await closedPortReceiver();
    const endpoint = await create(down.url);

    const queued = await ping(endpoint.id);
    expect(queued.status).toBe(202);
    // The request has returned, and the delivery it caused is still waiting to be sent.
    const waiting = await delivery(endpoint.id, queued.body.deliveryId);
    expect(waiting).toMatchObject({ status: 'pending', deliveredAt: null });

    await worker.runDue();
    const first = await delivery(endpoint.id, queued.body.deliveryId);
    expect(first).toMatchObject({
      status: 'pending',
      attempts: 1,
      lastError: 'connection refused',
      lastStatusCode: null,
    });
    expect(gapSeconds(first)).toBe(10);

    // Not due yet: a pass leaves it alone until the clock reaches the back-off.
    await worker.runDue();
    expect(await delivery(endpoint.id, queued.body.deliveryId)).toMatchObject({ attempts: 1 });

    clock.advance(10 * SECOND_MS);
    await worker.runDue();
    const second = await delivery(endpoint.id, queued.body.deliveryId);
    expect(second).toMatchObject({ status: 'pending', attempts: 2 });
    expect(gapSeconds(second)).toBe(30);

    clock.advance(30 * SECOND_MS);
    await worker.runDue();
    const third = await delivery(endpoint.id, queued.body.deliveryId);
    expect(third).toMatchObject({ status: 'pending', attempts: 3 });
    expect(gapSeconds(third)).toBe(120);

    await down.start();
    try {
      expect(down.received).toEqual([]);
      clock.advance(120 * SECOND_MS);
      await worker.runDue();
      const [arrived] = down.deliveriesOf(queued.body.deliveryId);
      expect(verifySignature(arrived, endpoint.secret, clock.nowSeconds()).valid).toBe(true);
      clock.advance(10 * 60 * SECOND_MS);
      await worker.runDue();

      expect(down.deliveriesOf(queued.body.deliveryId)).toHaveLength(1);
      expect(await delivery(endpoint.id, queued.body.deliveryId)).toMatchObject({
        status: 'delivered',
        attempts: 4,
        lastStatusCode: 200,
        lastError: null,
      });
    } finally {
      await down.stop();
    }
  });

  it('answers while a receiver hangs, and counts its silence as a failed attempt', async () => {
    const hanging = await new Receiver().start();
    hanging.hang = true;
    try {
      const endpoint = await create(hanging.url);
      const first = await ping(endpoint.id);
      const pass = worker.runDue();
      await hanging.arrivedAtLeast(1);

      // The worker is stuck on the receiver, and a request that queues another delivery still
      // comes back, leaving both deliveries pending.
      const second = await ping(endpoint.id);
      expect(second.status).toBe(202);
      expect(hanging.holding).toBe(1);
      const listed = await deliveries(endpoint.id);
      expect(listed.map((item) => [item.id, item.status])).toEqual(
        expect.arrayContaining([
          [first.body.deliveryId, 'pending'],
          [second.body.deliveryId, 'pending'],
        ]),
      );

      hanging.hang = false;
      await pass;
      expect(await delivery(endpoint.id, first.body.deliveryId)).toMatchObject({
        status: 'pending',
        attempts: 1,
        lastError: 'no answer within 5 s',
      });
    } finally {
      await hanging.stop();
    }
  });

  it('follows no redirect and counts one, or any answer but a 2xx, as a failed attempt', async () => {
    const redirecting = await new Receiver().start();
    const target = await new Receiver().start();
    redirecting.status = 307;
    redirecting.location = target.url;
    try {
      const endpoint = await create(redirecting.url);
      const redirected = await ping(endpoint.id);
      await worker.runDue();

      expect(redirecting.deliveriesOf(redirected.body.deliveryId)).toHaveLength(1);
      expect(target.received).toEqual([]);
      expect(await delivery(endpoint.id, redirected.body.deliveryId)).toMatchObject({
        status: 'pending',
        attempts: 1,
        lastStatusCode: 307,
        lastError: 'redirect not followed',
      });

      redirecting.status = 503;
      redirecting.location = undefined;
      clock.advance(10 * SECOND_MS);
      await worker.runDue();
      expect(await delivery(endpoint.id, redirected.body.deliveryId)).toMatchObject({
        status: 'pending',
        attempts: 2,
        lastStatusCode: 503,
        lastError: 'answered 503',
      });
    } finally {
      await redirecting.stop();
      await target.stop();
    }
  });

  it('marks a delivery failed after WEBHOOK_MAX_ATTEMPTS and then stops trying', async () => {
    const down = await closedPortReceiver();
    const endpoint = await create(down.url);
    const queued = await ping(endpoint.id);

    for (const wait of [0, 10, 30, 120]) {
      clock.advance(wait * SECOND_MS);
      await worker.runDue();
    }
    const failed = await delivery(endpoint.id, queued.body.deliveryId);
    expect(failed).toMatchObject({
      status: 'failed',
      attempts: 4,
      nextAttemptAt: null,
      deliveredAt: null,
      lastError: 'connection refused',
    });

    clock.advance(2 * HOUR_MS);
    await signInAgain();
    await worker.runDue();
    expect(await delivery(endpoint.id, queued.body.deliveryId)).toEqual(failed);
    const metrics = await server.api.get('/metrics');
    expect(metrics.text).toMatch(/parley_webhook_deliveries_total\{outcome="failed"\} [1-9]/);
    expect(metrics.text).toMatch(/parley_webhook_deliveries_total\{outcome="retrying"\} [1-9]/);
    expect(metrics.text).toMatch(/parley_webhook_deliveries_total\{outcome="delivered"\} [1-9]/);
  });

  it('queues an alert for the enabled endpoints of its organization that subscribe to it, and only those', async () => {
    const alertReceiver = await new Receiver().start();
    const subscribed = await create(alertReceiver.url);
    const disabled = await create(alertReceiver.url);
    const patched = await server.api.patch(
      `/api/v1/webhooks/${disabled.id}`,
      { enabled: false },
      { token: admin().tokens.accessToken },
    );
    expect(patched.status).toBe(200);
    expect(patched.body.enabled).toBe(false);
    const elsewhere = await createWebhook(server.api, other.admin, alertReceiver.url);
    secrets.push(elsewhere.secret);
    const alert: SecurityAlert = {
      id: randomUUID(),
      organizationId: organization.id,
      rule: 'failed_login_burst_account',
      severity: 'medium',
      summary: '5 failed sign-ins to one account within 15 minutes.',
      subject: { type: 'user', id: admin().id },
      occurredAt: clock.now(),
      details: { count: 5, windowSeconds: 900, email: 'someone@example.com' },
    };

    await server.app.get(WebhookAlertListener).onAlert(alert);
    await worker.runDue();
    await alertReceiver.stop();

    const arrivals = alertReceiver.received;
    expect(arrivals).toHaveLength(1);
    expect(JSON.parse(arrivals[0].body).data.alertId).toBe(alert.id);
    expect(arrivals[0].headers['parley-event']).toBe('security.alert');
    expect(verifySignature(arrivals[0], subscribed.secret, clock.nowSeconds()).valid).toBe(true);
    expect(JSON.parse(arrivals[0].body).data).toEqual({
      alertId: alert.id,
      rule: 'failed_login_burst_account',
      severity: 'medium',
      summary: alert.summary,
      subject: { type: 'user', id: admin().id },
      occurredAt: alert.occurredAt.toISOString(),
      // The payload holds no confidential value, whatever the rule put in its details.
      details: { count: 5, windowSeconds: 900, email: '[redacted]' },
    });
    expect(await deliveries(disabled.id)).toEqual([]);
    const otherList = await server.api.get(`/api/v1/webhooks/${elsewhere.id}/deliveries`, {
      token: other.admin.tokens.accessToken,
    });
    expect(otherList.body.items).toEqual([]);
  });

  it('sends an alert a detection rule raises to the receiver, without the raising request waiting', async () => {
    const endpoint = await create(receiver.url);
    const member = await login(
      server.api,
      organization.slug,
      members.agent.email,
      members.agent.password,
    );
    const refreshed = await server.api.post('/api/v1/auth/refresh', {
      refreshToken: member.refreshToken,
    });
    expect(refreshed.status).toBe(200);

    const reused = await server.api.post('/api/v1/auth/refresh', {
      refreshToken: member.refreshToken,
    });
    expect(reused.status).toBe(401);
    await server.app.get(Detection).whenIdle();
    await server.app.get(Alerts).whenDispatched();
    await server.app.get(WebhookAlertListener).whenQueued();
    const [queued] = await deliveries(endpoint.id);
    expect(queued).toMatchObject({ event: 'security.alert', status: 'pending' });

    await worker.runDue();
    const [arrived] = receiver.deliveriesOf(String(queued.id));
    expect(verifySignature(arrived, endpoint.secret, clock.nowSeconds()).valid).toBe(true);
    expect(JSON.parse(arrived.body).data).toMatchObject({
      rule: 'refresh_token_reuse',
      severity: 'high',
      alertId: expect.any(String),
    });
  });

  it('closes the queue of a disabled endpoint: its pending deliveries fail and nothing is sent', async () => {
    const down = await closedPortReceiver();
    const endpoint = await create(down.url);
    const queued = await ping(endpoint.id);

    const patched = await server.api.patch(
      `/api/v1/webhooks/${endpoint.id}`,
      { enabled: false },
      { token: admin().tokens.accessToken },
    );
    expect(patched.status).toBe(200);
    await worker.runDue();

    expect(await delivery(endpoint.id, queued.body.deliveryId)).toMatchObject({
      status: 'failed',
      attempts: 0,
      lastError: 'endpoint disabled',
    });
  });

  it('changes an endpoint with PATCH and deletes it with its deliveries', async () => {
    const endpoint = await create(receiver.url);
    await ping(endpoint.id);

    const patched = await server.api.patch(
      `/api/v1/webhooks/${endpoint.id}`,
      { url: `${receiver.url}/v2` },
      { token: admin().tokens.accessToken },
    );
    expect(patched.status).toBe(200);
    expect(patched.body).toMatchObject({ url: `${receiver.url}/v2`, enabled: true });
    const empty = await server.api.patch(
      `/api/v1/webhooks/${endpoint.id}`,
      {},
      { token: admin().tokens.accessToken },
    );
    expectProblem(empty, 400, 'validation_failed');

    const removed = await server.api.delete(`/api/v1/webhooks/${endpoint.id}`, {
      token: admin().tokens.accessToken,
    });
    expect(removed.status).toBe(204);
    expectProblem(
      await server.api.get(`/api/v1/webhooks/${endpoint.id}`, {
        token: admin().tokens.accessToken,
      }),
      404,
      'not_found',
    );
    const left = await owner.query(
      'select count(*)::int as count from webhook_deliveries where endpoint_id = $1',
      [endpoint.id],
    );
    expect(left.rows[0].count).toBe(0);
    const audit = await owner.query(
      `select action from audit_events where organization_id = $1 and target_id = $2 order by occurred_at`,
      [organization.id, endpoint.id],
    );
    expect(audit.rows.map((row) => row.action)).toEqual([
      'webhook.created',
      'webhook.updated',
      'webhook.deleted',
    ]);
  });

  it('refuses bad URLs and unknown events', async () => {
    for (const [body, code] of [
      [{ url: 'ftp://127.0.0.1/hook', events: ['security.alert'] }, 'webhook_url_invalid'],
      [{ url: 'http://user:pw@127.0.0.1/hook', events: ['security.alert'] }, 'webhook_url_invalid'],
      [{ url: receiver.url, events: ['conversation.nope'] }, 'validation_failed'],
      [{ url: receiver.url, events: [] }, 'validation_failed'],
      [{ url: receiver.url, events: ['webhook.ping'] }, 'validation_failed'],
    ] as const) {
      const response = await server.api.post('/api/v1/webhooks', body, {
        token: admin().tokens.accessToken,
      });
      expectProblem(response, 400, code);
    }
  });

  it("answers 404 for another organization's endpoint and changes nothing of it", async () => {
    const endpoint = await create(receiver.url);
    const before = await owner.query('select * from webhook_endpoints where id = $1', [
      endpoint.id,
    ]);
    const token = other.admin.tokens.accessToken;

    for (const response of [
      await server.api.get(`/api/v1/webhooks/${endpoint.id}`, { token }),
      await server.api.get(`/api/v1/webhooks/${endpoint.id.toUpperCase()}`, { token }),
      await server.api.patch(`/api/v1/webhooks/${endpoint.id}`, { enabled: false }, { token }),
      await server.api.delete(`/api/v1/webhooks/${endpoint.id}`, { token }),
      await server.api.post(`/api/v1/webhooks/${endpoint.id}/rotate-secret`, undefined, { token }),
      await server.api.get(`/api/v1/webhooks/${endpoint.id}/deliveries`, { token }),
      await server.api.post(`/api/v1/webhooks/${endpoint.id}/ping`, undefined, { token }),
    ]) {
      expectProblem(response, 404, 'not_found');
    }
    const list = await server.api.get('/api/v1/webhooks', { token });
    expect(list.body.items.map((item: { id: string }) => item.id)).not.toContain(endpoint.id);
    const after = await owner.query('select * from webhook_endpoints where id = $1', [endpoint.id]);
    expect(after.rows).toEqual(before.rows);
    expect(await deliveries(endpoint.id)).toEqual([]);
  });

  it.each(['manager', 'agent', 'viewer'] as const)(
    'refuses every webhook route to the %s role and leaves the endpoints as they were',
    async (role) => {
      const endpoint = await create(receiver.url);
      const token = members[role].tokens.accessToken;
      const before = await server.api.get('/api/v1/webhooks', {
        token: admin().tokens.accessToken,
      });

      for (const response of [
        await server.api.post(
          '/api/v1/webhooks',
          { url: receiver.url, events: ['security.alert'] },
          { token },
        ),
        await server.api.get('/api/v1/webhooks', { token }),
        await server.api.get(`/api/v1/webhooks/${endpoint.id}`, { token }),
        await server.api.patch(`/api/v1/webhooks/${endpoint.id}`, { enabled: false }, { token }),
        await server.api.delete(`/api/v1/webhooks/${endpoint.id}`, { token }),
        await server.api.post(`/api/v1/webhooks/${endpoint.id}/rotate-secret`, undefined, {
          token,
        }),
        await server.api.get(`/api/v1/webhooks/${endpoint.id}/deliveries`, { token }),
        await server.api.post(`/api/v1/webhooks/${endpoint.id}/ping`, undefined, { token }),
      ]) {
        expectProblem(response, 403, 'forbidden');
        expect(response.text).not.toContain('whsec_');
      }
      const after = await server.api.get('/api/v1/webhooks', { token: admin().tokens.accessToken });
      expect(after.body).toEqual(before.body);
      expect(await deliveries(endpoint.id)).toEqual([]);
    },
  );

  it('refuses an API key on every webhook route', async () => {
    const key = await createApiKey(server.api, admin(), ['conversations:read', 'audit:read']);

    const listed = await requestWithApiKey(server.api, key.key, 'GET', '/api/v1/webhooks');
    const created = await requestWithApiKey(server.api, key.key, 'POST', '/api/v1/webhooks', {
      url: receiver.url,
      events: ['security.alert'],
    });

    expectProblem(listed, 401, 'token_not_accepted_here');
    expectProblem(created, 401, 'token_not_accepted_here');
  });

  it('keeps every secret sealed in the database, and refuses one written in clear', async () => {
    const rows = await owner.query<{ row: string; secret: string; previous_secret: string | null }>(
      `select row_to_json(e)::text as row, secret, previous_secret
         from webhook_endpoints e where organization_id = any ($1)`,
      [[organization.id, other.id]],
    );
    expect(rows.rows.length).toBeGreaterThan(5);
    for (const row of rows.rows) {
      expect(row.secret).toMatch(/^pv1\./);
      expect(row.previous_secret === null || row.previous_secret.startsWith('pv1.')).toBe(true);
    }
    const everything = [
      ...rows.rows.map((row) => row.row),
      ...(
        await owner.query<{ row: string }>(
          `select row_to_json(d)::text as row from webhook_deliveries d where organization_id = any ($1)
           union all
           select row_to_json(a)::text from audit_events a where organization_id = any ($1)`,
          [[organization.id, other.id]],
        )
      ).rows.map((row) => row.row),
    ].join('\n');
    expect(secrets.length).toBeGreaterThan(5);
    expect(secrets.filter((secret) => everything.includes(secret))).toEqual([]);
    expect(everything).not.toContain('whsec_');

    await expect(
      owner.query(`update webhook_endpoints set secret = $2 where id = $1`, [
        JSON.parse(rows.rows[0].row).id,
        secrets[0],
      ]),
    ).rejects.toThrow(/webhook_endpoints_secret_sealed/);
  });

  it('documents every webhook route in the OpenAPI document, with problem+json errors', async () => {
    const response = await server.api.get('/api/docs-json');
    const paths = response.body.paths as Record<string, Record<string, unknown>>;

    expect(Object.keys(paths['/api/v1/webhooks']).sort()).toEqual(['get', 'post']);
    expect(Object.keys(paths['/api/v1/webhooks/{id}']).sort()).toEqual(['delete', 'get', 'patch']);
    for (const path of ['rotate-secret', 'ping']) {
      expect(Object.keys(paths[`/api/v1/webhooks/{id}/${path}`])).toEqual(['post']);
    }
    expect(Object.keys(paths['/api/v1/webhooks/{id}/deliveries'])).toEqual(['get']);
    for (const [path, item] of Object.entries(paths).filter(([name]) =>
      name.includes('webhooks'),
    )) {
      for (const [method, operation] of Object.entries(item)) {
        const responses = (operation as { responses: Record<string, { content?: object }> })
          .responses;
        expect({ path, method, content: Object.keys(responses['4XX']?.content ?? {}) }).toEqual({
          path,
          method,
          content: ['application/problem+json'],
        });
      }
    }
    expect(response.body.components.schemas.IssuedWebhookEndpointView.properties).toHaveProperty(
      'secret',
    );
    expect(response.body.components.schemas.WebhookEndpointView.properties).not.toHaveProperty(
      'secret',
    );
  });

  it('writes no secret into any log line', () => {
    expectNoSecretsInLogs(server, secrets);
    expect(server.logs.text()).not.toContain('whsec_');
  });

  describe('on the embedded database (PGlite)', () => {
    let embedded: TestServer;

    beforeAll(async () => {
      embedded = await startServer({
        embedded: true,
        env: { WEBHOOK_ALLOW_PRIVATE_ADDRESSES: 'true' },
      });
    });

    afterAll(async () => {
      await embedded?.close();
    });

    it('queues and delivers a signed ping there too', async () => {
      const local = await signupOrganization(embedded.api);
      const endpoint = await createWebhook(embedded.api, local.admin, receiver.url);
      secrets.push(endpoint.secret);

      const queued = await embedded.api.post(`/api/v1/webhooks/${endpoint.id}/ping`, undefined, {
        token: local.admin.tokens.accessToken,
      });
      expect(queued.status).toBe(202);
      await embedded.app.get(WebhookWorker).runDue();

      const [arrived] = receiver.deliveriesOf(queued.body.deliveryId);
      const now = embedded.app.get(Clock).nowSeconds();
      expect(verifySignature(arrived, endpoint.secret, now).valid).toBe(true);
    });
  });

  describe('with private addresses refused (the default)', () => {
    let strict: TestServer;
    let strictOrganization: SignedUpOrganization;

    beforeAll(async () => {
      strict = await startServer();
      strictOrganization = await signupOrganization(strict.api);
    });

    afterEach(async () => {
      // Should a refusal ever regress, the endpoint it let in must not outlive the test.
      await owner.query('delete from webhook_endpoints where organization_id = $1', [
        strictOrganization.id,
      ]);
    });

    afterAll(async () => {
      await strict?.close();
    });

    it.each([
      'http://127.0.0.1:9/hook',
      'http://localhost:9/hook',
      'http://[::1]:9/hook',
      'http://[::ffff:127.0.0.1]/hook',
      'http://10.0.0.1/hook',
      'http://172.16.5.4/hook',
      'http://192.168.1.1/hook',
      'http://169.254.169.254/latest/meta-data/',
      'http://[fd00:ec2::254]/latest/meta-data/',
      'http://[fe80::1]/hook',
      'http://0x7f000001/hook',
      'http://metadata.google.internal/computeMetadata/v1/',
    ])('refuses %s and stores nothing', async (url) => {
      const response = await strict.api.post(
        '/api/v1/webhooks',
        { url, events: ['security.alert'] },
        { token: strictOrganization.admin.tokens.accessToken },
      );

      expectProblem(response, 400, 'webhook_url_not_allowed');
      const list = await strict.api.get('/api/v1/webhooks', {
        token: strictOrganization.admin.tokens.accessToken,
      });
      expect(list.body.items).toEqual([]);
    });

    it('refuses a private address on PATCH too, leaving the URL as it was', async () => {
      // Every URL this server accepts is public, and nothing in this suite may ever reach one, so
      // the endpoint is written by SQL: disabled, at a local port, with a secret of sealed shape
      // (a PATCH never opens it).
      const id = randomUUID();
      const url = 'http://127.0.0.1:9/hook';
      const sealedShape = `pv1.${randomUUID()}.1.AAAAAAAAAAAAAAAA.AAAAAAAAAAAAAAAAAAAAAAAA`;
      await owner.query(
        `insert into webhook_endpoints (id, organization_id, url, events, enabled, secret, created_at, updated_at)
         values ($1, $2, $3, '{security.alert}', false, $4, now(), now())`,
        [id, strictOrganization.id, url, sealedShape],
      );
      try {
        const response = await strict.api.patch(
          `/api/v1/webhooks/${id}`,
          { url: 'http://10.0.0.1/hook', enabled: true },
          { token: strictOrganization.admin.tokens.accessToken },
        );

        expectProblem(response, 400, 'webhook_url_not_allowed');
        const read = await strict.api.get(`/api/v1/webhooks/${id}`, {
          token: strictOrganization.admin.tokens.accessToken,
        });
        expect(read.body).toMatchObject({ url, enabled: false });
      } finally {
        await owner.query('delete from webhook_endpoints where id = $1', [id]);
      }
    });
  });
});
