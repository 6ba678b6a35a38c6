import { randomBytes } from 'node:crypto';

import { addMember, login, signupOrganization } from './factories';
import { TestServer, expectNoSecretsInLogs, startServer } from './support';

/**
 * Drives every credential-carrying flow at the most verbose log level, then reads everything
 * the server wrote: no password, token, Authorization value or member detail may be in it.
 */
describe('logs', () => {
  let server: TestServer;
  const confidential: string[] = [];

  beforeAll(async () => {
    server = await startServer({ env: { LOG_LEVEL: 'trace' } });

    const organization = await signupOrganization(server.api, {
      name: `Ada ${randomBytes(4).toString('hex')}`,
    });
    const agent = await addMember(server.api, organization, 'agent', {
      name: `Grace ${randomBytes(4).toString('hex')}`,
    });
    confidential.push(organization.admin.email, organization.admin.name, agent.email, agent.name);

    const api = server.api;
    const token = organization.admin.tokens.accessToken;
    await api.post('/api/v1/auth/login', {
      organizationSlug: organization.slug,
      email: agent.email,
      password: `${agent.password}x`,
    });
    await api.post('/api/v1/auth/login', {
      organizationSlug: organization.slug,
      email: `nobody-${agent.email}`,
      password: agent.password,
    });
    const pair = await login(api, organization.slug, agent.email, agent.password);
    const rotated = await api.post('/api/v1/auth/refresh', { refreshToken: pair.refreshToken });
    await api.post('/api/v1/auth/refresh', { refreshToken: pair.refreshToken });
    await api.get('/api/v1/me', { token: rotated.body.accessToken });
    await api.get(`/api/v1/me?token=${token}`, { token });
    await api.get('/api/v1/me', {
      headers: {
        authorization: `Basic ${Buffer.from(`admin:${agent.password}`).toString('base64')}`,
      },
    });
    await api.get('/api/v1/me', { headers: { authorization: `Bearer ${token}x` } });
    await api.get('/api/v1/me', { headers: { cookie: `session=${token}` }, token });
    await api.post(
      '/api/v1/users',
      { email: agent.email, name: agent.name, role: 'agent', password: agent.password },
      { token },
    );
    await api.request('POST', '/api/v1/users', {
      token,
      rawBody: `{"password":"${agent.password}",`,
    });
    await api.post('/api/v1/auth/logout', undefined, { token });
    server.api.remember(Buffer.from(`admin:${agent.password}`).toString('base64'));
  });

  afterAll(async () => {
    await server?.close();
  });

  it('writes one JSON object per line', () => {
    const entries = server.logs.entries();

    expect(entries.length).toBeGreaterThan(20);
    expect(entries.filter((entry) => 'raw' in entry)).toEqual([]);
  });

  it('logs each request with its request id and status, and without headers', () => {
    const completed = server.logs
      .entries()
      .filter((entry) => entry.message === 'request completed');

    expect(completed.length).toBeGreaterThan(10);
    for (const entry of completed) {
      expect(entry.requestId).toEqual(expect.any(String));
      expect(entry.req).not.toHaveProperty('headers');
      expect(entry.req).toEqual(expect.objectContaining({ url: expect.not.stringContaining('?') }));
      expect(entry.res).toEqual({ statusCode: expect.any(Number) });
    }
  });

  it('contains no password, no token and no Authorization value', () => {
    expectNoSecretsInLogs(server);
  });

  it('contains no member email or name', () => {
    const text = server.logs.text();

    expect(confidential.filter((value) => text.includes(value))).toEqual([]);
  });
});
