import { SignedUpOrganization, signupOrganization, uniqueEmail, uniquePassword } from './factories';
import {
  ApiResponse,
  TestServer,
  expectNoSecretsInLogs,
  expectProblem,
  startServer,
} from './support';

const BODY_LIMIT_BYTES = 2048;

describe('bad input', () => {
  let server: TestServer;
  let organization: SignedUpOrganization;
  let token: string;

  beforeAll(async () => {
    server = await startServer({ env: { BODY_LIMIT_BYTES: String(BODY_LIMIT_BYTES) } });
    organization = await signupOrganization(server.api);
    token = organization.admin.tokens.accessToken;
  });

  afterAll(async () => {
    await server?.close();
  });

  /** What a refused request must leave as it was: members, organization and audit trail. */
  async function state() {
    const [users, org, audit] = await Promise.all([
      server.api.get('/api/v1/users', { token }),
      server.api.get('/api/v1/organization', { token }),
      server.api.get('/api/v1/audit/events?limit=500', { token }),
    ]);

    return {
      users: users.body.items.map(
        (user: { id: string; role: string }) => `${user.id}:${user.role}`,
      ),
      organization: org.body,
      audit: audit.body.items.length,
    };
  }

  function newMember(extra: Record<string, unknown> = {}) {
    return {
      email: uniqueEmail(),
      name: 'New Member',
      role: 'agent',
      password: uniquePassword(),
      ...extra,
    };
  }

  function raw(
    method: string,
    path: string,
    rawBody: string,
    contentType?: string,
  ): Promise<ApiResponse> {
    return server.api.request(method, path, { token, rawBody, contentType });
  }

  let before: Awaited<ReturnType<typeof state>>;

  beforeAll(async () => {
    before = await state();
  });

  it('refuses unknown fields with validation_failed, naming the field', async () => {
    const response = await server.api.post('/api/v1/users', newMember({ isSuperuser: true }), {
      token,
    });

    expectProblem(response, 400, 'validation_failed');
    expect(response.body.errors).toEqual([{ field: 'isSuperuser', message: expect.any(String) }]);
  });

  it('refuses unknown nested fields', async () => {
    const response = await server.api.patch(
      '/api/v1/organization',
      { widget: { allowedOrigins: [], key: 'pk_mine' } },
      { token },
    );

    expectProblem(response, 400, 'validation_failed');
  });

  it('refuses wrong types without coercing them', async () => {
    const bodies = [
      newMember({ email: 12345 }),
      newMember({ role: ['admin'] }),
      newMember({ password: { length: 20 } }),
      newMember({ name: null }),
      newMember({ role: 'owner' }),
    ];

    for (const body of bodies) {
      const response = await server.api.post('/api/v1/users', body, { token });
      expectProblem(response, 400, 'validation_failed');
    }
  });

  it('refuses a body that is not an object', async () => {
    for (const body of ['[]', '"admin"', '42', 'null', 'true']) {
      const response = await raw('POST', '/api/v1/users', body);
      expect(response.status).toBe(400);
      expectProblem(response, 400);
      expect(response.body.code).toMatch(/^(validation_failed|invalid_json)$/);
    }
  });

  it('refuses __proto__ and constructor keys at any depth with invalid_json', async () => {
    const member = JSON.stringify(newMember()).slice(1, -1);
    const bodies = [
      `{${member},"__proto__":{"role":"admin"}}`,
      `{${member},"constructor":{"prototype":{"role":"admin"}}}`,
      `{"widget":{"allowedOrigins":[],"__proto__":{"polluted":true}}}`,
      `{"name":"x","widget":{"constructor":{"prototype":{"polluted":true}}}}`,
    ];

    const responses = [];
    responses.push(await raw('POST', '/api/v1/users', bodies[0]));
    responses.push(await raw('POST', '/api/v1/users', bodies[1]));
    responses.push(await raw('PATCH', '/api/v1/organization', bodies[2]));
    responses.push(await raw('PATCH', '/api/v1/organization', bodies[3]));

    for (const response of responses) {
      expectProblem(response, 400, 'invalid_json');
    }
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
    expect(({} as Record<string, unknown>).role).toBeUndefined();
  });

  it('refuses ids that are not UUIDs', async () => {
    const ids = [
      'not-a-uuid',
      '123',
      "1' or '1'='1",
      '00000000-0000-0000-0000-00000000000g',
      '%00',
    ];

    for (const id of ids) {
      const read = await server.api.get(`/api/v1/users/${encodeURIComponent(id)}`, { token });
      const write = await server.api.patch(
        `/api/v1/users/${encodeURIComponent(id)}`,
        { role: 'viewer' },
        { token },
      );
      expectProblem(read, 400, 'validation_failed');
      expectProblem(write, 400, 'validation_failed');
    }
  });

  it('refuses bad query parameters', async () => {
    for (const query of [
      'limit=abc',
      'limit=0',
      'limit=501',
      'limit=1.5',
      'cursor=%%%',
      'cursor=bm90LWpzb24',
      'from=yesterday',
      'unknown=1',
    ]) {
      const response = await server.api.get(`/api/v1/audit/events?${query}`, { token });
      expectProblem(response, 400, 'validation_failed');
    }
  });

  it('refuses invalid JSON with invalid_json', async () => {
    for (const body of ['{"email":', '{email: "a@b.c"}', "{'a':1}", '{"a":1,}', '\u0000']) {
      const response = await raw('POST', '/api/v1/users', body);
      expectProblem(response, 400, 'invalid_json');
    }
  });

  it('refuses deeply nested JSON with invalid_json instead of exhausting the stack', async () => {
    const arrays = '['.repeat(900) + ']'.repeat(900);
    const objects = '{"a":'.repeat(200) + '1' + '}'.repeat(200);

    for (const [path, body] of [
      ['/api/v1/auth/login', arrays],
      ['/api/v1/users', objects],
    ]) {
      const response = await raw('POST', path, body);
      expectProblem(response, 400, 'invalid_json');
    }
  });

  it('answers headers larger than the server reads with a 431 problem', async () => {
    const response = await fetch(`${server.baseUrl}/api/v1/me`, {
      headers: { 'x-padding': 'p'.repeat(20_000) },
    });

    expect(response.status).toBe(431);
    expect(response.headers.get('content-type')).toMatch(/application\/problem\+json/);
    expect(await response.json()).toMatchObject({ status: 431, code: 'headers_too_large' });
  });

  it('refuses a body over BODY_LIMIT_BYTES with 413', async () => {
    const response = await server.api.post(
      '/api/v1/users',
      newMember({ name: 'x'.repeat(BODY_LIMIT_BYTES) }),
      { token },
    );

    expectProblem(response, 413, 'payload_too_large');
  });

  it('refuses an oversized body even before authentication', async () => {
    const response = await server.api.post('/api/v1/auth/login', {
      organizationSlug: organization.slug,
      email: organization.admin.email,
      password: 'p'.repeat(BODY_LIMIT_BYTES),
    });

    expectProblem(response, 413, 'payload_too_large');
  });

  it('refuses a body that is not JSON with 415', async () => {
    const member = newMember();
    const types = [
      ['text/plain', JSON.stringify(member)],
      [
        'application/x-www-form-urlencoded',
        new URLSearchParams(member as Record<string, string>).toString(),
      ],
      ['application/xml', '<user/>'],
      ['multipart/form-data; boundary=x', '--x--'],
    ];

    for (const [contentType, body] of types) {
      const response = await raw('POST', '/api/v1/users', body, contentType);
      expectProblem(response, 415, 'unsupported_media_type');
    }
  });

  it('answers an unknown route and an unknown method with a problem', async () => {
    const route = await server.api.get('/api/v1/nothing-here', { token });
    const method = await server.api.request('DELETE', '/api/v1/organization', { token });

    expectProblem(route, 404);
    expectProblem(method, method.status);
    expect([404, 405]).toContain(method.status);
  });

  it('echoes a well-formed request id and replaces a malformed one', async () => {
    const echoed = await server.api.get('/api/v1/users/not-a-uuid', {
      token,
      headers: { 'x-request-id': 'client-req-0001' },
    });
    const replaced = await server.api.get('/api/v1/users/not-a-uuid', {
      token,
      headers: { 'x-request-id': 'bad id with spaces\u00e9'.replace('\u00e9', '') },
    });

    expectProblem(echoed, 400);
    expect(echoed.body.requestId).toBe('client-req-0001');
    expectProblem(replaced, 400);
    expect(replaced.body.requestId).toMatch(/^[0-9a-f-]{36}$/);
  });

  it('changed nothing with any of the refused requests', async () => {
    expect(await state()).toEqual(before);
  });

  describe('afterwards', () => {
    it('leaves no password or token in the logs', () => {
      expectNoSecretsInLogs(server);
    });
  });
});
