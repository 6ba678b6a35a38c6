import { randomBytes, randomUUID } from 'node:crypto';

import { Clock } from '@parley/core';
import { AlertListener, Alerts, Detection, SecurityAlert, addressDigest } from '@parley/security';

import {
  Member,
  SignedUpOrganization,
  addMember,
  createApiKey,
  login,
  signupOrganization,
  uniqueEmail,
  withApiKey,
} from './factories';
import { ApiResponse, TestServer, expectNoSecretsInLogs, startServer } from './support';

const REDIS_URL = process.env.TEST_REDIS_URL ?? 'redis://127.0.0.1:6379';

const WINDOW_SECONDS = 300;

/** Small thresholds, so each rule is driven to its threshold in a few requests. */
const DETECTION_ENV = {
  DETECT_FAILED_LOGINS_ACCOUNT: `3/${WINDOW_SECONDS}`,
  DETECT_FAILED_LOGINS_ADDRESS: `4/${WINDOW_SECONDS}`,
  DETECT_CROSS_TENANT_PROBING: `3/${WINDOW_SECONDS}`,
  DETECT_API_KEY_NEW_ADDRESS: '1/3600',
  DETECT_MASS_DELETION: `3/${WINDOW_SECONDS}`,
  DETECT_MASS_EXPORT: `3/${WINDOW_SECONDS}`,
  DETECT_RATE_LIMIT_ESCALATION: `3/${WINDOW_SECONDS}`,
};

/**
 * A client address of its own for each test, from the IPv4 documentation range, sent through
 * X-Forwarded-For (the servers trust it here), so per-address counts of one test never meet
 * another's, nor 127.0.0.1's.
 */
function uniqueAddress(): string {
  const [a, b] = randomBytes(2);

  return `203.0.${a}.${b}`;
}

function from(address: string): { headers: Record<string, string> } {
  return { headers: { 'x-forwarded-for': address } };
}

/** Records every alert it is handed, as a webhook or incident listener would receive it. */
class RecordingListener implements AlertListener {
  readonly name = 'test-recorder';
  readonly alerts: SecurityAlert[] = [];

  async onAlert(alert: SecurityAlert): Promise<void> {
    this.alerts.push(alert);
  }

  of(rule: string, subjectId?: string): SecurityAlert[] {
    return this.alerts.filter(
      (alert) =>
        alert.rule === rule && (subjectId === undefined || alert.subject?.id === subjectId),
    );
  }
}

describe('detection rules and alerts', () => {
  let server: TestServer;
  let clock: Clock;
  let detection: Detection;
  let alerts: Alerts;
  const recorder = new RecordingListener();

  beforeAll(async () => {
    server = await startServer({
      env: {
        ...DETECTION_ENV,
        REDIS_URL,
        TRUST_PROXY: 'true',
        CREDENTIAL_RATE_LIMIT_PER_MINUTE: '100000',
        LOGIN_FAILURES_BEFORE_LOCK: '100',
      },
    });
    clock = server.app.get(Clock);
    detection = server.app.get(Detection);
    alerts = server.app.get(Alerts);
    alerts.addListener(recorder);
  });

  afterAll(async () => {
    await server?.close();
  });

  /** Waits until every observation made so far is counted and its alerts handed over. */
  async function settled(): Promise<void> {
    await detection.whenIdle();
    await alerts.whenDispatched();
  }

  function signIn(
    organization: SignedUpOrganization,
    email: string,
    password: string,
    address: string,
  ): Promise<ApiResponse> {
    return server.api.post(
      '/api/v1/auth/login',
      { organizationSlug: organization.slug, email, password },
      from(address),
    );
  }

  async function failSignIns(
    times: number,
    organization: SignedUpOrganization,
    email: string,
    address: string,
  ): Promise<void> {
    for (let attempt = 0; attempt < times; attempt += 1) {
      const response = await signIn(organization, email, `wrong-${attempt}-guess-xyz`, address);
      expect(response.status).toBe(401);
    }
    await settled();
  }

  describe('failed sign-ins', () => {
    let organization: SignedUpOrganization;
    let agent: Member;

    beforeEach(async () => {
      organization = await signupOrganization(server.api);
      agent = await addMember(server.api, organization, 'agent', { login: false });
    });

    it('raises failed_login_burst_account at the third wrong password, not at the second', async () => {
      const address = uniqueAddress();

      await failSignIns(2, organization, agent.email, address);
      expect(recorder.of('failed_login_burst_account', agent.id)).toEqual([]);

      await failSignIns(1, organization, agent.email, address);
      const raised = recorder.of('failed_login_burst_account', agent.id);
      expect(raised).toHaveLength(1);
      expect(raised[0]).toMatchObject({
        organizationId: organization.id,
        severity: 'medium',
        subject: { type: 'user', id: agent.id },
        details: { threshold: 3, windowSeconds: WINDOW_SECONDS },
      });
      expect(raised[0].summary).toBe('3 failed sign-ins to one account within 5 minutes.');
    });

    it('raises one alert per window however many more failures follow', async () => {
      await failSignIns(6, organization, agent.email, uniqueAddress());

      expect(recorder.of('failed_login_burst_account', agent.id)).toHaveLength(1);
    });

    it('starts counting again once the Clock moves past the window', async () => {
      const address = uniqueAddress();
      await failSignIns(2, organization, agent.email, address);

      clock.advance((WINDOW_SECONDS + 1) * 1000);
      await failSignIns(2, organization, agent.email, address);
      expect(recorder.of('failed_login_burst_account', agent.id)).toEqual([]);

      await failSignIns(1, organization, agent.email, address);
      expect(recorder.of('failed_login_burst_account', agent.id)).toHaveLength(1);
    });

    it('counts an email that names no member by its digest, not by the email', async () => {
      const email = uniqueEmail('nobody');
      await failSignIns(3, organization, email, uniqueAddress());

      const raised = recorder.alerts.filter(
        (alert) =>
          alert.rule === 'failed_login_burst_account' && alert.organizationId === organization.id,
      );
      expect(raised).toHaveLength(1);
      expect(raised[0].subject?.type).toBe('account');
      expect(raised[0].subject?.id).toMatch(/^email:[0-9a-f]{64}$/);
      expect(JSON.stringify(raised[0])).not.toContain(email);
    });

    it('raises failed_login_burst_address at the fourth failure from one address across accounts', async () => {
      const address = uniqueAddress();
      const digest = addressDigest(address);
      const emails = [uniqueEmail('a'), uniqueEmail('b'), uniqueEmail('c'), uniqueEmail('d')];

      for (const email of emails.slice(0, 3)) {
        await failSignIns(1, organization, email, address);
      }
      expect(recorder.of('failed_login_burst_address', digest)).toEqual([]);
      // No single account reached its own threshold on the way.
      expect(
        recorder.alerts.filter(
          (alert) =>
            alert.rule === 'failed_login_burst_account' && alert.organizationId === organization.id,
        ),
      ).toEqual([]);

      await failSignIns(1, organization, emails[3], address);
      const raised = recorder.of('failed_login_burst_address', digest);
      expect(raised).toHaveLength(1);
      expect(raised[0]).toMatchObject({
        organizationId: null,
        severity: 'high',
        subject: { type: 'address', id: digest },
      });
      expect(JSON.stringify(raised[0])).not.toContain(address);
    });

    it('counts sign-ins to an organization that does not exist against the address', async () => {
      const address = uniqueAddress();
      for (let attempt = 0; attempt < 4; attempt += 1) {
        const response = await server.api.post(
          '/api/v1/auth/login',
          {
            organizationSlug: `missing-${randomBytes(6).toString('hex')}`,
            email: uniqueEmail(),
            password: 'x'.repeat(20),
          },
          from(address),
        );
        expect(response.status).toBe(401);
      }
      await settled();

      expect(recorder.of('failed_login_burst_address', addressDigest(address))).toHaveLength(1);
    });
  });

  describe('refresh-token reuse', () => {
    it('raises refresh_token_reuse on the first reuse and not on the normal refresh', async () => {
      const organization = await signupOrganization(server.api);
      const { refreshToken } = organization.admin.tokens;

      const first = await server.api.post('/api/v1/auth/refresh', { refreshToken });
      expect(first.status).toBe(200);
      await settled();
      const before = recorder.alerts.filter((alert) => alert.organizationId === organization.id);
      expect(before.filter((alert) => alert.rule === 'refresh_token_reuse')).toEqual([]);

      const reused = await server.api.post('/api/v1/auth/refresh', { refreshToken });
      expect(reused.status).toBe(401);
      expect(reused.body.code).toBe('refresh_token_reused');
      await settled();

      const raised = recorder.alerts.filter(
        (alert) => alert.rule === 'refresh_token_reuse' && alert.organizationId === organization.id,
      );
      expect(raised).toHaveLength(1);
      expect(raised[0]).toMatchObject({ severity: 'high', subject: { type: 'session' } });
    });
  });

  describe('cross-tenant probing', () => {
    it('raises cross_tenant_probing at the third 404 on an id route, naming the member', async () => {
      const organization = await signupOrganization(server.api);
      const other = await signupOrganization(server.api);
      const agent = await addMember(server.api, organization, 'agent');
      const foreign = await server.api.post(
        '/api/v1/contacts',
        { email: uniqueEmail('contact'), name: 'Foreign Contact' },
        { token: other.admin.tokens.accessToken },
      );
      expect(foreign.status).toBe(201);
      const probe = (id: string): Promise<ApiResponse> =>
        server.api.get(`/api/v1/contacts/${id}`, { token: agent.tokens.accessToken });

      expect((await probe(randomUUID())).status).toBe(404);
      expect((await probe(foreign.body.id)).status).toBe(404);
      // A 404 on a route without an id is no probe.
      expect(
        (await server.api.get('/api/v1/no-such-route', { token: agent.tokens.accessToken })).status,
      ).toBe(404);
      await settled();
      expect(recorder.of('cross_tenant_probing', agent.id)).toEqual([]);

      expect((await probe(randomUUID())).status).toBe(404);
      await settled();
      const raised = recorder.of('cross_tenant_probing', agent.id);
      expect(raised).toHaveLength(1);
      expect(raised[0]).toMatchObject({
        organizationId: organization.id,
        severity: 'high',
        subject: { type: 'user', id: agent.id },
        details: { route: '/api/v1/contacts/:id', threshold: 3 },
      });
    });
  });

  describe('API keys from a new address', () => {
    it('raises api_key_new_address when a key leaves the address it was first used from', async () => {
      const organization = await signupOrganization(server.api);
      const key = await createApiKey(server.api, organization.admin, ['conversations:read']);
      const [first, second, third] = [uniqueAddress(), uniqueAddress(), uniqueAddress()];
      const use = (address: string): Promise<ApiResponse> =>
        server.api.get('/api/v1/conversations', withApiKey(key.key, from(address)));

      expect((await use(first)).status).toBe(200);
      expect((await use(first)).status).toBe(200);
      await settled();
      expect(recorder.of('api_key_new_address', key.id)).toEqual([]);

      expect((await use(second)).status).toBe(200);
      expect((await use(second)).status).toBe(200);
      await settled();
      const raised = recorder.of('api_key_new_address', key.id);
      expect(raised).toHaveLength(1);
      expect(raised[0]).toMatchObject({
        organizationId: organization.id,
        severity: 'medium',
        subject: { type: 'api_key', id: key.id },
        details: { addressDigest: addressDigest(second) },
      });

      // The threshold (1) is reached once per window; the next new address waits for the next.
      expect((await use(third)).status).toBe(200);
      await settled();
      expect(recorder.of('api_key_new_address', key.id)).toHaveLength(1);
    });
  });

  describe('mass deletion and mass export', () => {
    let organization: SignedUpOrganization;

    beforeEach(async () => {
      organization = await signupOrganization(server.api);
    });

    async function createContact(): Promise<string> {
      const response = await server.api.post(
        '/api/v1/contacts',
        { email: uniqueEmail('contact'), name: 'Deleted Contact' },
        { token: organization.admin.tokens.accessToken },
      );
      expect(response.status).toBe(201);

      return response.body.id;
    }

    it('raises mass_deletion at the third deletion by one member', async () => {
      const ids = [await createContact(), await createContact(), await createContact()];
      const erase = (id: string): Promise<ApiResponse> =>
        server.api.delete(`/api/v1/contacts/${id}`, {
          token: organization.admin.tokens.accessToken,
        });

      expect((await erase(ids[0])).status).toBe(204);
      expect((await erase(ids[1])).status).toBe(204);
      await settled();
      expect(recorder.of('mass_deletion', organization.admin.id)).toEqual([]);

      expect((await erase(ids[2])).status).toBe(204);
      await settled();
      const raised = recorder.of('mass_deletion', organization.admin.id);
      expect(raised).toHaveLength(1);
      expect(raised[0]).toMatchObject({ organizationId: organization.id, severity: 'high' });
    });

    it('raises mass_export at the third audit listing page read by one member', async () => {
      const read = (): Promise<ApiResponse> =>
        server.api.get('/api/v1/audit/events?limit=1', {
          token: organization.admin.tokens.accessToken,
        });

      expect((await read()).status).toBe(200);
      expect((await read()).status).toBe(200);
      // Other reads are no export.
      expect(
        (
          await server.api.get('/api/v1/organization', {
            token: organization.admin.tokens.accessToken,
          })
        ).status,
      ).toBe(200);
      await settled();
      expect(recorder.of('mass_export', organization.admin.id)).toEqual([]);

      expect((await read()).status).toBe(200);
      await settled();
      const raised = recorder.of('mass_export', organization.admin.id);
      expect(raised).toHaveLength(1);
      expect(raised[0].details).toMatchObject({ route: '/api/v1/audit/events' });
    });
  });

  describe('admin rights and MFA', () => {
    let organization: SignedUpOrganization;

    beforeEach(async () => {
      organization = await signupOrganization(server.api);
    });

    function changeRole(member: Member, role: string): Promise<ApiResponse> {
      return server.api.patch(
        `/api/v1/users/${member.id}`,
        { role },
        { token: organization.admin.tokens.accessToken },
      );
    }

    it('raises admin_privilege_change when a member becomes admin, not for other role changes', async () => {
      const agent = await addMember(server.api, organization, 'agent', { login: false });

      expect((await changeRole(agent, 'manager')).status).toBe(200);
      await settled();
      expect(recorder.of('admin_privilege_change', agent.id)).toEqual([]);

      expect((await changeRole(agent, 'admin')).status).toBe(200);
      await settled();
      const raised = recorder.of('admin_privilege_change', agent.id);
      expect(raised).toHaveLength(1);
      expect(raised[0]).toMatchObject({
        organizationId: organization.id,
        severity: 'high',
        details: {
          kind: 'role',
          from: 'manager',
          to: 'admin',
          changedBy: { type: 'user', id: organization.admin.id },
        },
      });
    });

    it("raises admin_privilege_change when an admin's MFA is reset, not a manager's", async () => {
      const manager = await addMember(server.api, organization, 'manager', { login: false });
      const second = await addMember(server.api, organization, 'admin', { login: false });
      await settled();
      const reset = (member: Member): Promise<ApiResponse> =>
        server.api.delete(`/api/v1/users/${member.id}/mfa`, {
          token: organization.admin.tokens.accessToken,
        });

      expect((await reset(manager)).status).toBe(204);
      await settled();
      expect(recorder.of('admin_privilege_change', manager.id)).toEqual([]);

      const before = recorder.of('admin_privilege_change', second.id).length;
      expect((await reset(second)).status).toBe(204);
      await settled();
      const raised = recorder
        .of('admin_privilege_change', second.id)
        .filter((alert) => alert.details.kind === 'mfa');
      expect(raised).toHaveLength(1);
      expect(raised[0].details).toMatchObject({ change: 'mfa_reset' });
      // Adding the second admin was itself a change of admin rights.
      expect(before).toBe(1);
    });
  });

  describe('alerts', () => {
    it('hands each alert to a listener once, with an id and the Clock time', async () => {
      const organization = await signupOrganization(server.api);
      const agent = await addMember(server.api, organization, 'agent', { login: false });
      const startedAt = clock.nowMs();

      await failSignIns(3, organization, agent.email, uniqueAddress());

      const raised = recorder.of('failed_login_burst_account', agent.id);
      expect(raised).toHaveLength(1);
      expect(raised[0].id).toMatch(/^[0-9a-f-]{36}$/);
      expect(raised[0].occurredAt.getTime()).toBeGreaterThanOrEqual(startedAt);
      expect(recorder.alerts.filter((alert) => alert.id === raised[0].id)).toHaveLength(1);
    });

    it('logs one security alert line with ids only, no email or address', async () => {
      const organization = await signupOrganization(server.api);
      const agent = await addMember(server.api, organization, 'agent', { login: false });
      const address = uniqueAddress();

      await failSignIns(3, organization, agent.email, address);

      const [alert] = recorder.of('failed_login_burst_account', agent.id);
      const lines = server.logs
        .entries()
        .filter((entry) => entry.message === 'security alert' && entry.alertId === alert.id);
      expect(lines).toHaveLength(1);
      expect(lines[0]).toMatchObject({
        level: 40,
        rule: 'failed_login_burst_account',
        severity: 'medium',
        organizationId: organization.id,
        subjectType: 'user',
        subjectId: agent.id,
        summary: '3 failed sign-ins to one account within 5 minutes.',
      });
      const text = JSON.stringify(lines[0]);
      expect(text).not.toContain(agent.email);
      expect(text).not.toContain(address);
      expectNoSecretsInLogs(server);
    });

    it('counts alerts by rule and severity on GET /metrics', async () => {
      const organization = await signupOrganization(server.api);
      const agent = await addMember(server.api, organization, 'agent', { login: false });
      await failSignIns(3, organization, agent.email, uniqueAddress());

      const metrics = await server.api.get('/metrics');

      expect(metrics.status).toBe(200);
      expect(metrics.text).toMatch(
        /parley_security_alerts_total\{rule="failed_login_burst_account",severity="medium"\} [1-9]/,
      );
    });

    it('answers the request that raised an alert while a listener throws and another never settles', async () => {
      const hanging: AlertListener = {
        name: 'test-hanging',
        onAlert: () => new Promise<void>(() => undefined),
      };
      const throwing: AlertListener = {
        name: 'test-throwing',
        onAlert: () => {
          throw new Error('listener exploded');
        },
      };
      const rejecting: AlertListener = {
        name: 'test-rejecting',
        onAlert: async () => {
          throw new Error('listener rejected');
        },
      };
      alerts.addListener(hanging);
      alerts.addListener(throwing);
      alerts.addListener(rejecting);
      const after = new RecordingListener();
      alerts.addListener(after);
      const organization = await signupOrganization(server.api);

      const first = await server.api.post('/api/v1/auth/refresh', {
        refreshToken: organization.admin.tokens.refreshToken,
      });
      expect(first.status).toBe(200);
      const reused = await server.api.post('/api/v1/auth/refresh', {
        refreshToken: organization.admin.tokens.refreshToken,
      });
      expect(reused.status).toBe(401);
      await settled();

      // The listener registered after the failing ones still got the alert, once.
      const raised = after.alerts.filter((alert) => alert.organizationId === organization.id);
      expect(raised.map((alert) => alert.rule)).toEqual(['refresh_token_reuse']);
      const failures = server.logs
        .entries()
        .filter(
          (entry) => entry.message === 'alert listener failed' && entry.alertId === raised[0].id,
        );
      expect(failures.map((entry) => entry.listener).sort()).toEqual([
        'test-rejecting',
        'test-throwing',
      ]);
      // The server still answers, and signs in, with the hanging listener in place.
      const admin = organization.admin;
      await expect(
        login(server.api, organization.slug, admin.email, admin.password),
      ).resolves.toMatchObject({ tokenType: 'Bearer' });
    });
  });
});

describe('rate-limit escalation', () => {
  let server: TestServer;
  let clock: Clock;
  let detection: Detection;
  let alerts: Alerts;
  const recorder = new RecordingListener();

  beforeAll(async () => {
    // Its own server: a per-address limit of two requests a minute, counters in memory.
    server = await startServer({
      env: { ...DETECTION_ENV, TRUST_PROXY: 'true', RATE_LIMIT_PER_MINUTE: '2' },
    });
    clock = server.app.get(Clock);
    detection = server.app.get(Detection);
    alerts = server.app.get(Alerts);
    alerts.addListener(recorder);
  });

  afterAll(async () => {
    await server?.close();
  });

  async function blocked(times: number, address: string): Promise<void> {
    for (let request = 0; request < times; request += 1) {
      expect((await server.api.get('/api/v1/organization', from(address))).status).toBe(429);
    }
    await detection.whenIdle();
    await alerts.whenDispatched();
  }

  it('raises rate_limit_escalation at the third 429 to one address, and again after the window', async () => {
    const address = uniqueAddress();
    const digest = addressDigest(address);
    expect((await server.api.get('/api/v1/organization', from(address))).status).toBe(401);
    expect((await server.api.get('/api/v1/organization', from(address))).status).toBe(401);

    await blocked(2, address);
    expect(recorder.of('rate_limit_escalation', digest)).toEqual([]);

    await blocked(1, address);
    expect(recorder.of('rate_limit_escalation', digest)).toHaveLength(1);
    await blocked(2, address);
    expect(recorder.of('rate_limit_escalation', digest)).toHaveLength(1);

    // The throttler's own minute runs on real time, so the address stays blocked meanwhile.
    clock.advance((WINDOW_SECONDS + 1) * 1000);
    await blocked(2, address);
    expect(recorder.of('rate_limit_escalation', digest)).toHaveLength(1);
    await blocked(1, address);
    const raised = recorder.of('rate_limit_escalation', digest);
    expect(raised).toHaveLength(2);
    expect(raised[1]).toMatchObject({ organizationId: null, severity: 'medium' });
  });

  it('counts blocks by limit on GET /metrics', async () => {
    const address = uniqueAddress();
    expect((await server.api.get('/api/v1/organization', from(address))).status).toBe(401);
    expect((await server.api.get('/api/v1/organization', from(address))).status).toBe(401);
    await blocked(1, address);

    const metrics = await server.api.get('/metrics');

    expect(metrics.status).toBe(200);
    expect(metrics.text).toMatch(/parley_rate_limit_blocks_total\{limit="api"\} [1-9]/);
  });
});
