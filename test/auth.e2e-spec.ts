import { generateKeyPairSync } from 'node:crypto';

import { login, signupInput, signupOrganization, uniqueEmail, uniqueSlug } from './factories';
import { TestServer, expectNoSecretsInLogs, expectProblem, startServer } from './support';

describe('authentication', () => {
  let server: TestServer;

  beforeAll(async () => {
    server = await startServer();
  });

  afterAll(async () => {
    await server?.close();
  });

  describe('signup', () => {
    it('creates an organization and its first admin and returns the contract shape', async () => {
      const input = signupInput({ email: `Ada-${uniqueEmail()}`.replace('Ada-', 'ADA.') });

      const response = await server.api.post('/api/v1/auth/signup', input);

      expect(response.status).toBe(201);
      expect(response.contentType).toMatch(/^application\/json/);
      expect(response.body).toEqual({
        organization: { id: expect.stringMatching(UUID), slug: input.organizationSlug },
        user: { id: expect.stringMatching(UUID), email: input.email.toLowerCase(), role: 'admin' },
        accessToken: expect.stringMatching(JWT),
        refreshToken: expect.stringMatching(/^prt_[A-Za-z0-9_-]{40,}$/),
        tokenType: 'Bearer',
        expiresIn: server.config.accessTokenTtlSeconds,
      });
      expect(response.text).not.toMatch(/password|hash/i);

      const me = await server.api.get('/api/v1/me', { token: response.body.accessToken });
      expect(me.status).toBe(200);
      expect(me.body).toEqual({
        id: response.body.user.id,
        email: input.email.toLowerCase(),
        name: input.name,
        role: 'admin',
        organization: response.body.organization,
      });
    });

    it('refuses a slug that is taken with 409 and creates nothing', async () => {
      const first = await signupOrganization(server.api);
      const second = signupInput({ organizationSlug: first.slug, organizationName: 'Squatter' });

      const response = await server.api.post('/api/v1/auth/signup', second);

      expectProblem(response, 409, 'organization_slug_taken');
      const users = await server.api.get('/api/v1/users', {
        token: first.admin.tokens.accessToken,
      });
      expect(users.body.items.map((user: { id: string }) => user.id)).toEqual([first.admin.id]);
      const organization = await server.api.get('/api/v1/organization', {
        token: first.admin.tokens.accessToken,
      });
      expect(organization.body.name).toBe(first.name);
      const intruder = await server.api.post('/api/v1/auth/login', {
        organizationSlug: first.slug,
        email: second.email,
        password: second.password,
      });
      expectProblem(intruder, 401, 'invalid_credentials');
    });

    it('treats a slug that differs only in case as the same slug', async () => {
      const first = await signupOrganization(server.api);

      const response = await server.api.post(
        '/api/v1/auth/signup',
        signupInput({ organizationSlug: first.slug.toUpperCase() }),
      );

      expectProblem(response, 409, 'organization_slug_taken');
    });

    it('refuses a password shorter than 15 characters and creates no organization', async () => {
      const input = signupInput({ password: 'short-but-14ch' });

      const response = await server.api.post('/api/v1/auth/signup', input);

      expectProblem(response, 400, 'validation_failed');
      expect(response.body.errors).toEqual([
        { field: 'password', message: expect.stringContaining('15') },
      ]);
      const retry = await server.api.post('/api/v1/auth/signup', {
        ...input,
        password: 'now-long-enough-password',
      });
      expect(retry.status).toBe(201);
    });
  });

  describe('login', () => {
    it('returns a bearer token pair that opens /me', async () => {
      const organization = await signupOrganization(server.api);

      const response = await server.api.post('/api/v1/auth/login', {
        organizationSlug: organization.slug,
        email: organization.admin.email.toUpperCase(),
        password: organization.admin.password,
      });

      expect(response.status).toBe(200);
      expect(response.body).toEqual({
        accessToken: expect.stringMatching(JWT),
        refreshToken: expect.stringMatching(/^prt_/),
        tokenType: 'Bearer',
        expiresIn: server.config.accessTokenTtlSeconds,
      });
      expect(response.body.accessToken).not.toBe(organization.admin.tokens.accessToken);
      const me = await server.api.get('/api/v1/me', { token: response.body.accessToken });
      expect(me.status).toBe(200);
      expect(me.body.id).toBe(organization.admin.id);
    });

    it('answers a wrong password, an unknown email and an unknown organization alike', async () => {
      const organization = await signupOrganization(server.api);
      const attempts = [
        {
          organizationSlug: organization.slug,
          email: organization.admin.email,
          password: 'wrong-password-but-long',
        },
        {
          organizationSlug: organization.slug,
          email: uniqueEmail(),
          password: organization.admin.password,
        },
        {
          organizationSlug: uniqueSlug('missing'),
          email: organization.admin.email,
          password: organization.admin.password,
        },
      ];

      const responses = [];
      for (const attempt of attempts) {
        responses.push(await server.api.post('/api/v1/auth/login', attempt));
      }

      for (const response of responses) {
        expectProblem(response, 401, 'invalid_credentials');
        expect(response.headers.get('www-authenticate')).toMatch(/^Bearer/);
      }
      const shapes = responses.map(({ body }) => ({ ...body, requestId: undefined }));
      expect(shapes[1]).toEqual(shapes[0]);
      expect(shapes[2]).toEqual(shapes[0]);
      const stillWorks = await server.api.get('/api/v1/me', {
        token: organization.admin.tokens.accessToken,
      });
      expect(stillWorks.status).toBe(200);
    });
  });

  describe('refresh', () => {
    it('returns a new pair whose access token works', async () => {
      const organization = await signupOrganization(server.api);
      const { refreshToken } = organization.admin.tokens;

      const response = await server.api.post('/api/v1/auth/refresh', { refreshToken });

      expect(response.status).toBe(200);
      expect(response.body).toEqual({
        accessToken: expect.stringMatching(JWT),
        refreshToken: expect.stringMatching(/^prt_/),
        tokenType: 'Bearer',
        expiresIn: server.config.accessTokenTtlSeconds,
      });
      expect(response.body.refreshToken).not.toBe(refreshToken);
      expect(response.body.accessToken).not.toBe(organization.admin.tokens.accessToken);
      const me = await server.api.get('/api/v1/me', { token: response.body.accessToken });
      expect(me.status).toBe(200);
      expect(me.body.id).toBe(organization.admin.id);
    });

    it('ends the whole session when a consumed refresh token is presented again', async () => {
      const organization = await signupOrganization(server.api);
      const otherSession = await login(
        server.api,
        organization.slug,
        organization.admin.email,
        organization.admin.password,
      );
      const stolen = organization.admin.tokens.refreshToken;
      const rotated = await server.api.post('/api/v1/auth/refresh', { refreshToken: stolen });
      expect(rotated.status).toBe(200);

      const replay = await server.api.post('/api/v1/auth/refresh', { refreshToken: stolen });

      expectProblem(replay, 401, 'refresh_token_reused');
      const newest = await eventually(
        () => server.api.get('/api/v1/me', { token: rotated.body.accessToken }),
        (result) => result.status === 401,
      );
      expectProblem(newest, 401, 'session_ended');
      const original = await server.api.get('/api/v1/me', {
        token: organization.admin.tokens.accessToken,
      });
      expectProblem(original, 401, 'session_ended');
      const newestRefresh = await server.api.post('/api/v1/auth/refresh', {
        refreshToken: rotated.body.refreshToken,
      });
      expect(newestRefresh.status).toBe(401);
      expect(newestRefresh.body.code).toMatch(/^(invalid_refresh_token|refresh_token_reused)$/);
      const untouched = await server.api.get('/api/v1/me', { token: otherSession.accessToken });
      expect(untouched.status).toBe(200);
    });

    it('refuses a refresh token the server never issued', async () => {
      const forged = await server.api.post('/api/v1/auth/refresh', {
        refreshToken: `prt_${'A'.repeat(43)}`,
      });
      const unprefixed = await server.api.post('/api/v1/auth/refresh', {
        refreshToken: 'x'.repeat(48),
      });

      expectProblem(forged, 401, 'invalid_refresh_token');
      expectProblem(unprefixed, 401, 'invalid_refresh_token');
    });
  });

  describe('logout', () => {
    it('ends the caller session with 204, after which its tokens stop working', async () => {
      const organization = await signupOrganization(server.api);
      const otherSession = await login(
        server.api,
        organization.slug,
        organization.admin.email,
        organization.admin.password,
      );
      const { accessToken, refreshToken } = organization.admin.tokens;

      const response = await server.api.post('/api/v1/auth/logout', undefined, {
        token: accessToken,
      });

      expect(response.status).toBe(204);
      expect(response.text).toBe('');
      const me = await server.api.get('/api/v1/me', { token: accessToken });
      expectProblem(me, 401, 'session_ended');
      const refresh = await server.api.post('/api/v1/auth/refresh', { refreshToken });
      expect(refresh.status).toBe(401);
      const again = await server.api.post('/api/v1/auth/logout', undefined, { token: accessToken });
      expectProblem(again, 401, 'session_ended');
      const untouched = await server.api.get('/api/v1/me', { token: otherSession.accessToken });
      expect(untouched.status).toBe(200);
    });

    it('needs a token', async () => {
      const response = await server.api.post('/api/v1/auth/logout');

      expectProblem(response, 401, 'invalid_token');
    });
  });

  describe('afterwards', () => {
    it('leaves no password, token or Authorization value in the logs', () => {
      expectNoSecretsInLogs(server);
    });
  });
});

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;
const JWT = /^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+$/;

/** Retries a read until it satisfies the check, for at most `withinMs`. */
async function eventually<T>(
  read: () => Promise<T>,
  done: (value: T) => boolean,
  withinMs = 1_200,
): Promise<T> {
  const deadline = Date.now() + withinMs;
  let value = await read();
  while (!done(value) && Date.now() < deadline) {
    await new Promise((resolve) => setTimeout(resolve, 50));
    value = await read();
  }

  return value;
}

/**
 * Two instances on one database, as behind an ingress, each trusting a checked session for the
 * default SESSION_CACHE_MS (one second): a session ended on one stops working on the other
 * within about a second.
 */
describe('sessions across two instances', () => {
  let first: TestServer;
  let second: TestServer;

  beforeAll(async () => {
    const { privateKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    const env = {
      JWT_PRIVATE_KEY: privateKey.export({ type: 'pkcs8', format: 'pem' }).toString(),
      SESSION_CACHE_MS: '1000',
    };
    first = await startServer({ env });
    second = await startServer({ env });
  });

  afterAll(async () => {
    await second?.close();
    await first?.close();
  });

  it('stops a logged-out token on the other instance within about a second', async () => {
    const organization = await signupOrganization(first.api);
    const { accessToken } = organization.admin.tokens;
    const before = await second.api.get('/api/v1/me', { token: accessToken });
    expect(before.status).toBe(200);

    const loggedOut = await first.api.post('/api/v1/auth/logout', undefined, {
      token: accessToken,
    });
    const endedAt = Date.now();

    expect(loggedOut.status).toBe(204);
    const after = await eventually(
      () => second.api.get('/api/v1/me', { token: accessToken }),
      (response) => response.status === 401,
      2_000,
    );
    expectProblem(after, 401, 'session_ended');
    expect(Date.now() - endedAt).toBeLessThan(1_500);
  });

  it('stops the tokens of a session ended by refresh-token reuse on the other instance too', async () => {
    const organization = await signupOrganization(first.api);
    const stolen = organization.admin.tokens.refreshToken;
    const rotated = await first.api.post('/api/v1/auth/refresh', { refreshToken: stolen });
    expect(rotated.status).toBe(200);
    expect((await second.api.get('/api/v1/me', { token: rotated.body.accessToken })).status).toBe(
      200,
    );

    const replay = await second.api.post('/api/v1/auth/refresh', { refreshToken: stolen });

    expectProblem(replay, 401, 'refresh_token_reused');
    const onFirst = await eventually(
      () => first.api.get('/api/v1/me', { token: rotated.body.accessToken }),
      (response) => response.status === 401,
      2_000,
    );
    expectProblem(onFirst, 401, 'session_ended');
  });

  it('leaves no password or token in the logs', () => {
    expectNoSecretsInLogs(first);
  });
});

describe('signup when SIGNUP_ENABLED=false', () => {
  let server: TestServer;

  beforeAll(async () => {
    server = await startServer({ env: { SIGNUP_ENABLED: 'false' } });
  });

  afterAll(async () => {
    await server?.close();
  });

  it('refuses with 403 signup_disabled and creates no organization', async () => {
    const input = signupInput();

    const response = await server.api.post('/api/v1/auth/signup', input);

    expectProblem(response, 403, 'signup_disabled');
    const attempt = await server.api.post('/api/v1/auth/login', {
      organizationSlug: input.organizationSlug,
      email: input.email,
      password: input.password,
    });
    expectProblem(attempt, 401, 'invalid_credentials');
  });
});
