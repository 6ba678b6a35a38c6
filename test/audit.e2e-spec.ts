import { randomBytes } from 'node:crypto';

import {
  Member,
  SignedUpOrganization,
  addMember,
  signupInput,
  signupOrganization,
  uniqueEmail,
} from './factories';
import { TestServer, expectNoSecretsInLogs, expectProblem, startServer } from './support';

interface AuditEvent {
  id: string;
  occurredAt: string;
  actorType: string;
  actorId: string | null;
  action: string;
  targetType: string | null;
  targetId: string | null;
  requestId: string | null;
  ip: string | null;
  changes: string[];
  metadata: Record<string, unknown>;
}

function requestId(label: string): string {
  return `audit-${label}-${randomBytes(6).toString('hex')}`;
}

describe('audit trail', () => {
  let server: TestServer;
  let organization: SignedUpOrganization;
  let signupRequestId: string;
  let agent: Member;

  beforeAll(async () => {
    server = await startServer();
    signupRequestId = requestId('signup');
    const input = signupInput();
    const response = await server.api.post('/api/v1/auth/signup', input, {
      headers: { 'x-request-id': signupRequestId },
    });
    expect(response.status).toBe(201);
    organization = {
      id: response.body.organization.id,
      slug: input.organizationSlug,
      name: input.organizationName,
      admin: {
        id: response.body.user.id,
        email: input.email,
        name: input.name,
        role: 'admin',
        password: input.password,
        tokens: response.body,
      },
    };
    agent = await addMember(server.api, organization, 'agent', { name: 'Agent Confidential-Name' });
  });

  afterAll(async () => {
    await server?.close();
  });

  async function events(query = 'limit=500'): Promise<AuditEvent[]> {
    const response = await server.api.get(`/api/v1/audit/events?${query}`, {
      token: organization.admin.tokens.accessToken,
    });
    expect(response.status).toBe(200);

    return response.body.items;
  }

  async function eventsOf(id: string): Promise<AuditEvent[]> {
    return (await events()).filter((event) => event.requestId === id);
  }

  it('records a signup: the organization, its admin and the first session', async () => {
    const recorded = await eventsOf(signupRequestId);
    const admin = organization.admin.id;

    expect(recorded.map((event) => event.action).sort()).toEqual(
      ['auth.login_succeeded', 'auth.signup', 'organization.created', 'user.created'].sort(),
    );
    expect(recorded.find((event) => event.action === 'auth.signup')).toMatchObject({
      actorType: 'user',
      actorId: admin,
      targetType: 'user',
      targetId: admin,
      metadata: { role: 'admin' },
    });
    expect(recorded.find((event) => event.action === 'organization.created')).toMatchObject({
      targetType: 'organization',
      targetId: organization.id,
    });
    expect(recorded.find((event) => event.action === 'user.created')).toMatchObject({
      targetType: 'user',
      targetId: admin,
    });
  });

  it('records a successful login with the member as actor and the new session', async () => {
    const id = requestId('login');

    const response = await server.api.post(
      '/api/v1/auth/login',
      { organizationSlug: organization.slug, email: agent.email, password: agent.password },
      { headers: { 'x-request-id': id } },
    );

    expect(response.status).toBe(200);
    const [event] = await eventsOf(id);
    expect(event).toMatchObject({
      action: 'auth.login_succeeded',
      actorType: 'user',
      actorId: agent.id,
      targetType: 'user',
      targetId: agent.id,
      requestId: id,
      ip: '127.0.0.1',
      metadata: { sessionId: expect.stringMatching(/^[0-9a-f-]{36}$/) },
    });
    expect(await eventsOf(id)).toHaveLength(1);
  });

  it('records failed logins anonymously, with the reason but not the password tried', async () => {
    const wrongPassword = requestId('wrong-password');
    const unknownAccount = requestId('unknown-account');
    const tried = `tried-${randomBytes(8).toString('hex')}-password`;

    const first = await server.api.post(
      '/api/v1/auth/login',
      { organizationSlug: organization.slug, email: agent.email, password: tried },
      { headers: { 'x-request-id': wrongPassword } },
    );
    const unknownEmail = uniqueEmail('nobody');
    const second = await server.api.post(
      '/api/v1/auth/login',
      { organizationSlug: organization.slug, email: unknownEmail, password: tried },
      { headers: { 'x-request-id': unknownAccount } },
    );

    expectProblem(first, 401, 'invalid_credentials');
    expectProblem(second, 401, 'invalid_credentials');
    const [byPassword] = await eventsOf(wrongPassword);
    const [byAccount] = await eventsOf(unknownAccount);
    expect(byPassword).toMatchObject({
      action: 'auth.login_failed',
      actorType: 'anonymous',
      actorId: null,
      targetType: 'user',
      targetId: agent.id,
      metadata: { reason: 'wrong_password' },
    });
    expect(byAccount).toMatchObject({
      action: 'auth.login_failed',
      actorType: 'anonymous',
      actorId: null,
      targetId: null,
      metadata: { reason: 'unknown_account' },
    });
    const trail = JSON.stringify(await events());
    expect(trail).not.toContain(tried);
    expect(trail).not.toContain(unknownEmail);
  });

  it('records a refresh, and a reused refresh token as its own event', async () => {
    const pair = (
      await server.api.post('/api/v1/auth/login', {
        organizationSlug: organization.slug,
        email: agent.email,
        password: agent.password,
      })
    ).body;
    const refreshId = requestId('refresh');
    const reuseId = requestId('reuse');

    await server.api.post(
      '/api/v1/auth/refresh',
      { refreshToken: pair.refreshToken },
      {
        headers: { 'x-request-id': refreshId },
      },
    );
    await server.api.post(
      '/api/v1/auth/refresh',
      { refreshToken: pair.refreshToken },
      {
        headers: { 'x-request-id': reuseId },
      },
    );

    const [refreshed] = await eventsOf(refreshId);
    const [reused] = await eventsOf(reuseId);
    expect(refreshed).toMatchObject({
      action: 'auth.token_refreshed',
      actorType: 'user',
      actorId: agent.id,
      targetType: 'session',
    });
    expect(reused).toMatchObject({
      action: 'auth.refresh_token_reused',
      targetType: 'session',
      targetId: refreshed.targetId,
    });
  });

  it('records a logout with the member as actor and the session as target', async () => {
    const pair = (
      await server.api.post('/api/v1/auth/login', {
        organizationSlug: organization.slug,
        email: agent.email,
        password: agent.password,
      })
    ).body;
    const id = requestId('logout');

    const response = await server.api.post('/api/v1/auth/logout', undefined, {
      token: pair.accessToken,
      headers: { 'x-request-id': id },
    });

    expect(response.status).toBe(204);
    const [event] = await eventsOf(id);
    expect(event).toMatchObject({
      action: 'auth.logout',
      actorType: 'user',
      actorId: agent.id,
      targetType: 'session',
      targetId: expect.stringMatching(/^[0-9a-f-]{36}$/),
    });
  });

  it('records a role change with field names and the role transition, never other values', async () => {
    const id = requestId('role');

    const response = await server.api.patch(
      `/api/v1/users/${agent.id}`,
      { role: 'manager' },
      { token: organization.admin.tokens.accessToken, headers: { 'x-request-id': id } },
    );

    expect(response.status).toBe(200);
    const recorded = await eventsOf(id);
    expect(recorded.find((event) => event.action === 'user.role_changed')).toMatchObject({
      actorType: 'user',
      actorId: organization.admin.id,
      targetType: 'user',
      targetId: agent.id,
      metadata: { from: 'agent', to: 'manager' },
    });
    const updated = recorded.find((event) => event.action === 'user.updated');
    expect(updated).toMatchObject({ targetId: agent.id, changes: ['role'] });
    expect(updated?.metadata).toEqual({});
  });

  it('lists changed organization fields by name and never their values', async () => {
    const id = requestId('org');
    const secretName = `Name-${randomBytes(6).toString('hex')}`;
    const origin = `https://shop-${randomBytes(4).toString('hex')}.example`;

    const response = await server.api.patch(
      '/api/v1/organization',
      { name: secretName, widget: { allowedOrigins: [origin] } },
      { token: organization.admin.tokens.accessToken, headers: { 'x-request-id': id } },
    );

    expect(response.status).toBe(200);
    const [event] = await eventsOf(id);
    expect(event.action).toBe('organization.updated');
    expect([...event.changes].sort()).toEqual(['name', 'widgetAllowedOrigins']);
    const trail = JSON.stringify(await events());
    expect(trail).not.toContain(secretName);
    expect(trail).not.toContain(origin);
    expect(trail).not.toContain(agent.email);
    expect(trail).not.toContain('Confidential-Name');
    expect(trail).not.toContain(agent.password);
  });

  it('pages through the trail newest first with limit and cursor, missing nothing', async () => {
    const all = await events();
    const seen: AuditEvent[] = [];
    let cursor: string | null = null;
    let pages = 0;

    do {
      const query: string = cursor ? `limit=3&cursor=${cursor}` : 'limit=3';
      const response = await server.api.get(`/api/v1/audit/events?${query}`, {
        token: organization.admin.tokens.accessToken,
      });
      expect(response.status).toBe(200);
      expect(response.body.items.length).toBeLessThanOrEqual(3);
      seen.push(...response.body.items);
      cursor = response.body.nextCursor;
      pages += 1;
    } while (cursor && pages < 100);

    expect(pages).toBe(Math.ceil(all.length / 3));
    expect(seen.map((event) => event.id)).toEqual(all.map((event) => event.id));
    expect(new Set(seen.map((event) => event.id)).size).toBe(seen.length);
    const times = seen.map((event) => Date.parse(event.occurredAt));
    expect([...times].sort((a, b) => b - a)).toEqual(times);
  });

  it('filters by action and actor', async () => {
    const failed = await events('action=auth.login_failed');
    const byAgent = await events(`actor=${agent.id}`);

    expect(failed).toHaveLength(2);
    expect(failed.every((event) => event.action === 'auth.login_failed')).toBe(true);
    expect(byAgent.length).toBeGreaterThan(0);
    expect(byAgent.every((event) => event.actorId === agent.id)).toBe(true);
  });

  it('shows an organization only its own trail', async () => {
    const other = await signupOrganization(server.api);
    await server.api.post('/api/v1/auth/login', {
      organizationSlug: other.slug,
      email: other.admin.email,
      password: 'not-the-password-at-all',
    });

    const ours = await events();
    const theirs = (
      await server.api.get('/api/v1/audit/events?limit=500', {
        token: other.admin.tokens.accessToken,
      })
    ).body.items as AuditEvent[];

    const ourIds = new Set(ours.map((event) => event.id));
    expect(theirs.some((event) => ourIds.has(event.id))).toBe(false);
    expect(theirs.some((event) => event.action === 'auth.login_failed')).toBe(true);
    expect(ours.filter((event) => event.action === 'auth.login_failed')).toHaveLength(2);
  });

  describe('afterwards', () => {
    it('leaves no password or token in the logs', () => {
      expectNoSecretsInLogs(server);
    });
  });
});
