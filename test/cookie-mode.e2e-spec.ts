import { Clock } from '@parley/core';

import { SignedUpOrganization, login, signupOrganization } from './factories';
import {
  ApiResponse,
  TestServer,
  expectNoSecretsInLogs,
  expectProblem,
  startServer,
} from './support';

const DASHBOARD = 'https://dashboard.parley.test';
const SECOND_DASHBOARD = 'http://localhost:5173';
const REFRESH_COOKIE = '__Host-parley_refresh';
const CSRF_COOKIE = '__Host-parley_csrf';
/** The default absolute session lifetime of a new organization: 12 hours. */
const SESSION_SECONDS = 12 * 3600;

interface SetCookie {
  value: string;
  /** Attribute names in lower case; flags such as HttpOnly map to true. */
  attributes: Record<string, string | true>;
}

/** What a browser in cookie mode holds: the two cookies, plus the CSRF token from the body. */
interface DashboardSession {
  refreshCookie: string;
  csrfToken: string;
  accessToken: string;
}

function setCookiesOf(response: ApiResponse): Map<string, SetCookie> {
  const cookies = new Map<string, SetCookie>();
  for (const line of response.headers.getSetCookie()) {
    const [pair, ...attributes] = line.split(';').map((part) => part.trim());
    const separator = pair.indexOf('=');
    cookies.set(pair.slice(0, separator), {
      value: decodeURIComponent(pair.slice(separator + 1)),
      attributes: Object.fromEntries(
        attributes.map((attribute) => {
          const [name, ...value] = attribute.split('=');

          return [name.toLowerCase(), value.length > 0 ? value.join('=') : true];
        }),
      ),
    });
  }

  return cookies;
}

describe('dashboard cookie mode', () => {
  let server: TestServer;
  let organization: SignedUpOrganization;

  beforeAll(async () => {
    server = await startServer({
      env: {
        DASHBOARD_ORIGINS: `${DASHBOARD}, ${SECOND_DASHBOARD}/`,
        CREDENTIAL_RATE_LIMIT_PER_MINUTE: '100000',
      },
    });
    organization = await signupOrganization(server.api);
  });

  afterAll(async () => {
    await server?.close();
  });

  function dashboardLogin(headers: Record<string, string> = {}): Promise<ApiResponse> {
    return server.api.post(
      '/api/v1/auth/login',
      {
        organizationSlug: organization.slug,
        email: organization.admin.email,
        password: organization.admin.password,
      },
      { headers: { 'x-client': 'dashboard', origin: DASHBOARD, ...headers } },
    );
  }

  /** Reads a cookie-mode answer as the browser would keep it, and remembers its secrets. */
  function sessionFrom(response: ApiResponse): DashboardSession {
    expect(response.status).toBe(200);
    const cookies = setCookiesOf(response);
    const refreshCookie = cookies.get(REFRESH_COOKIE)?.value ?? '';
    server.api.remember(refreshCookie);
    server.api.remember(response.body.csrfToken);

    return {
      refreshCookie,
      csrfToken: response.body.csrfToken,
      accessToken: response.body.accessToken,
    };
  }

  async function startDashboardSession(): Promise<DashboardSession> {
    return sessionFrom(await dashboardLogin());
  }

  /** A cookie-authenticated call as the dashboard makes it; `headers` replace or drop defaults. */
  function cookieCall(
    path: string,
    session: Pick<DashboardSession, 'refreshCookie' | 'csrfToken'>,
    headers: Record<string, string | undefined> = {},
  ): Promise<ApiResponse> {
    const merged: Record<string, string | undefined> = {
      'x-client': 'dashboard',
      origin: DASHBOARD,
      'x-csrf-token': session.csrfToken,
      cookie: `${REFRESH_COOKIE}=${session.refreshCookie}; ${CSRF_COOKIE}=${session.csrfToken}`,
      ...headers,
    };
    const sent = Object.fromEntries(
      Object.entries(merged).filter((entry): entry is [string, string] => entry[1] !== undefined),
    );

    return server.api.post(path, undefined, { headers: sent });
  }

  const cookieRefresh = (
    session: Pick<DashboardSession, 'refreshCookie' | 'csrfToken'>,
    headers: Record<string, string | undefined> = {},
  ) => cookieCall('/api/v1/auth/refresh', session, headers);

  describe('login', () => {
    it('sets the refresh token as a __Host- cookie with every attribute and leaves it out of the body', async () => {
      const response = await dashboardLogin();

      expect(response.status).toBe(200);
      expect(response.body).toEqual({
        accessToken: expect.any(String),
        tokenType: 'Bearer',
        expiresIn: server.config.accessTokenTtlSeconds,
        csrfToken: expect.stringMatching(/^[A-Za-z0-9_-]{43}$/),
      });
      expect(response.text).not.toMatch(/prt_/);
      const cookies = setCookiesOf(response);
      expect([...cookies.keys()].sort()).toEqual([CSRF_COOKIE, REFRESH_COOKIE]);
      const refresh = cookies.get(REFRESH_COOKIE) as SetCookie;
      expect(refresh.value).toMatch(/^prt_[A-Za-z0-9_-]{43}$/);
      expect(refresh.attributes).toEqual({
        'max-age': expect.any(String),
        path: '/',
        httponly: true,
        secure: true,
        samesite: 'Strict',
      });
      const maxAge = Number(refresh.attributes['max-age']);
      expect(maxAge).toBeGreaterThan(SESSION_SECONDS - 10);
      expect(maxAge).toBeLessThanOrEqual(SESSION_SECONDS);
      const csrf = cookies.get(CSRF_COOKIE) as SetCookie;
      expect(csrf.value).toBe(response.body.csrfToken);
      expect(csrf.attributes).toEqual({
        'max-age': refresh.attributes['max-age'],
        path: '/',
        secure: true,
        samesite: 'Strict',
      });
      server.api.remember(refresh.value);
      const me = await server.api.get('/api/v1/me', { token: response.body.accessToken });
      expect(me.status).toBe(200);
      expect(me.body.id).toBe(organization.admin.id);
    });

    it('refuses cookie mode from a foreign or missing Origin before checking the password', async () => {
      const foreign = await dashboardLogin({ origin: 'https://evil.example' });
      const missing = await server.api.post(
        '/api/v1/auth/login',
        { organizationSlug: organization.slug, email: organization.admin.email, password: 'wrong' },
        { headers: { 'x-client': 'dashboard' } },
      );

      expectProblem(foreign, 403, 'origin_not_allowed');
      expectProblem(missing, 403, 'origin_not_allowed');
      expect(foreign.headers.getSetCookie()).toEqual([]);
    });

    it('accepts every configured dashboard origin, in the form browsers send it', async () => {
      const response = await dashboardLogin({ origin: SECOND_DASHBOARD });

      expect(sessionFrom(response).refreshCookie).toMatch(/^prt_/);
    });
  });

  describe('refresh', () => {
    it('works with the cookie, the CSRF token and an allowed Origin, and rotates the cookie', async () => {
      const session = await startDashboardSession();

      const response = await cookieRefresh(session);

      const next = sessionFrom(response);
      expect(response.body).toEqual({
        accessToken: expect.any(String),
        tokenType: 'Bearer',
        expiresIn: server.config.accessTokenTtlSeconds,
        csrfToken: session.csrfToken,
      });
      expect(next.refreshCookie).toMatch(/^prt_/);
      expect(next.refreshCookie).not.toBe(session.refreshCookie);
      expect(next.accessToken).not.toBe(session.accessToken);
      const cookies = setCookiesOf(response);
      expect(cookies.get(REFRESH_COOKIE)?.attributes).toMatchObject({
        httponly: true,
        secure: true,
        samesite: 'Strict',
        path: '/',
      });
      expect(cookies.get(CSRF_COOKIE)?.value).toBe(session.csrfToken);
      const me = await server.api.get('/api/v1/me', { token: next.accessToken });
      expect(me.status).toBe(200);
      const again = await cookieRefresh(next);
      expect(again.status).toBe(200);
      sessionFrom(again);
    });

    it('sets Max-Age to what is left of the session, not a fresh lifetime', async () => {
      const session = await startDashboardSession();
      const clock = server.app.get(Clock);
      clock.advance(20 * 60_000);
      try {
        const response = await cookieRefresh(session);

        sessionFrom(response);
        const maxAge = Number(setCookiesOf(response).get(REFRESH_COOKIE)?.attributes['max-age']);
        expect(maxAge).toBeGreaterThan(SESSION_SECONDS - 20 * 60 - 10);
        expect(maxAge).toBeLessThanOrEqual(SESSION_SECONDS - 20 * 60);
      } finally {
        clock.advance(-20 * 60_000);
      }
    });

    it('refuses it without CSRF, with a wrong one, or from a foreign or missing Origin, and rotates nothing', async () => {
      const session = await startDashboardSession();
      const otherSession = await startDashboardSession();

      const attempts = {
        noCsrf: await cookieRefresh(session, { 'x-csrf-token': undefined }),
        emptyCsrf: await cookieRefresh(session, { 'x-csrf-token': '' }),
        otherSessionsCsrf: await cookieRefresh(session, { 'x-csrf-token': otherSession.csrfToken }),
        garbledCsrf: await cookieRefresh(session, { 'x-csrf-token': 'A'.repeat(43) }),
        foreignOrigin: await cookieRefresh(session, { origin: 'https://evil.example' }),
        lookalikeOrigin: await cookieRefresh(session, { origin: `${DASHBOARD}.evil.example` }),
        otherPort: await cookieRefresh(session, { origin: `${DASHBOARD}:8443` }),
        nullOrigin: await cookieRefresh(session, { origin: 'null' }),
        missingOrigin: await cookieRefresh(session, { origin: undefined }),
      };

      for (const name of ['noCsrf', 'emptyCsrf', 'otherSessionsCsrf', 'garbledCsrf'] as const) {
        expectProblem(attempts[name], 403, 'csrf_token_invalid');
      }
      for (const name of [
        'foreignOrigin',
        'lookalikeOrigin',
        'otherPort',
        'nullOrigin',
        'missingOrigin',
      ] as const) {
        expectProblem(attempts[name], 403, 'origin_not_allowed');
      }
      for (const response of Object.values(attempts)) {
        expect(response.headers.getSetCookie()).toEqual([]);
      }
      const reported = server.logs
        .entries()
        .filter((entry) => entry.message === 'cookie-mode call refused');
      expect(reported).toEqual(
        expect.arrayContaining([
          expect.objectContaining({ level: 40, code: 'csrf_token_invalid' }),
          expect.objectContaining({ code: 'origin_not_allowed', origin: 'https://evil.example' }),
        ]),
      );
      const stillWorks = await cookieRefresh(session);
      expect(stillWorks.status).toBe(200);
      sessionFrom(stillWorks);
    });

    it('answers a replayed old cookie with 401 refresh_token_reused and ends the session', async () => {
      const session = await startDashboardSession();
      const rotated = sessionFrom(await cookieRefresh(session));

      const replay = await cookieRefresh(session);

      expectProblem(replay, 401, 'refresh_token_reused');
      const newest = await cookieRefresh(rotated);
      expect(newest.status).toBe(401);
      expect(newest.body.code).toMatch(/^(invalid_refresh_token|refresh_token_reused)$/);
      for (const accessToken of [session.accessToken, rotated.accessToken]) {
        const me = await server.api.get('/api/v1/me', { token: accessToken });
        expectProblem(me, 401, 'session_ended');
      }
    });

    it('refuses an unknown cookie and a dashboard refresh that sends no cookie', async () => {
      const session = await startDashboardSession();
      const forged = await cookieRefresh({ ...session, refreshCookie: `prt_${'A'.repeat(43)}` });
      const noCookie = await cookieRefresh(session, { cookie: undefined });

      expectProblem(forged, 401, 'invalid_refresh_token');
      expectProblem(noCookie, 401, 'invalid_refresh_token');
    });

    it('moves a body refresh token into the cookie when the dashboard sends one', async () => {
      const bearer = await login(
        server.api,
        organization.slug,
        organization.admin.email,
        organization.admin.password,
      );

      const response = await server.api.post(
        '/api/v1/auth/refresh',
        { refreshToken: bearer.refreshToken },
        { headers: { 'x-client': 'dashboard', origin: DASHBOARD } },
      );

      const session = sessionFrom(response);
      expect(response.body).not.toHaveProperty('refreshToken');
      expect((await cookieRefresh(session)).status).toBe(200);
    });
  });

  describe('logout', () => {
    it('ends the session with the cookie alone and clears both cookies', async () => {
      const session = await startDashboardSession();

      const response = await cookieCall('/api/v1/auth/logout', session);

      expect(response.status).toBe(204);
      const cookies = setCookiesOf(response);
      expect(cookies.get(REFRESH_COOKIE)).toEqual({
        value: '',
        attributes: expect.objectContaining({
          'max-age': '0',
          path: '/',
          httponly: true,
          secure: true,
          samesite: 'Strict',
        }),
      });
      expect(cookies.get(CSRF_COOKIE)).toEqual({
        value: '',
        attributes: expect.objectContaining({ 'max-age': '0', path: '/', secure: true }),
      });
      const me = await server.api.get('/api/v1/me', { token: session.accessToken });
      expectProblem(me, 401, 'session_ended');
      const refresh = await cookieRefresh(session);
      expect(refresh.status).toBe(401);
    });

    it('refuses a cookie logout without CSRF or from a foreign Origin, and the session goes on', async () => {
      const session = await startDashboardSession();

      const noCsrf = await cookieCall('/api/v1/auth/logout', session, {
        'x-csrf-token': undefined,
      });
      const foreign = await cookieCall('/api/v1/auth/logout', session, {
        origin: 'https://evil.example',
      });

      expectProblem(noCsrf, 403, 'csrf_token_invalid');
      expectProblem(foreign, 403, 'origin_not_allowed');
      const me = await server.api.get('/api/v1/me', { token: session.accessToken });
      expect(me.status).toBe(200);
    });

    it('ends the session of a replayed cookie, as a replayed refresh would', async () => {
      const session = await startDashboardSession();
      const rotated = sessionFrom(await cookieRefresh(session));

      const response = await cookieCall('/api/v1/auth/logout', session);

      expectProblem(response, 401, 'refresh_token_reused');
      const me = await server.api.get('/api/v1/me', { token: rotated.accessToken });
      expectProblem(me, 401, 'session_ended');
    });

    it('clears the cookies of a dashboard that logs out with its access token', async () => {
      const session = await startDashboardSession();

      const response = await server.api.post('/api/v1/auth/logout', undefined, {
        token: session.accessToken,
        headers: { 'x-client': 'dashboard', origin: DASHBOARD },
      });

      expect(response.status).toBe(204);
      expect(setCookiesOf(response).get(REFRESH_COOKIE)?.attributes['max-age']).toBe('0');
      expect((await cookieRefresh(session)).status).toBe(401);
    });
  });

  describe('bearer clients', () => {
    it('get the refresh token in the body and never a cookie', async () => {
      const loggedIn = await server.api.post('/api/v1/auth/login', {
        organizationSlug: organization.slug,
        email: organization.admin.email,
        password: organization.admin.password,
      });
      const refreshed = await server.api.post('/api/v1/auth/refresh', {
        refreshToken: loggedIn.body.refreshToken,
      });
      const otherClient = await server.api.post(
        '/api/v1/auth/refresh',
        { refreshToken: refreshed.body.refreshToken },
        { headers: { 'x-client': 'mobile', origin: 'https://evil.example' } },
      );
      const logout = await server.api.post('/api/v1/auth/logout', undefined, {
        token: otherClient.body.accessToken,
      });

      for (const response of [loggedIn, refreshed, otherClient]) {
        expect(response.status).toBe(200);
        expect(response.body).toEqual({
          accessToken: expect.any(String),
          refreshToken: expect.stringMatching(/^prt_/),
          tokenType: 'Bearer',
          expiresIn: server.config.accessTokenTtlSeconds,
        });
        expect(response.headers.getSetCookie()).toEqual([]);
      }
      expect(logout.status).toBe(204);
      expect(logout.headers.getSetCookie()).toEqual([]);
    });

    it('still get a validation error for a refresh without a token', async () => {
      const empty = await server.api.post('/api/v1/auth/refresh', {});
      const noBody = await server.api.post('/api/v1/auth/refresh');
      const nullToken = await server.api.post('/api/v1/auth/refresh', { refreshToken: null });

      expectProblem(empty, 400, 'validation_failed');
      expectProblem(noBody, 400, 'validation_failed');
      expectProblem(nullToken, 400, 'validation_failed');
    });

    it('still need a token to log out', async () => {
      const response = await server.api.post('/api/v1/auth/logout');

      expectProblem(response, 401, 'invalid_token');
    });
  });

  describe('afterwards', () => {
    it('never logs a cookie value or a CSRF token', () => {
      expectNoSecretsInLogs(server);
    });
  });
});

describe('dashboard cookie mode on the embedded database', () => {
  let server: TestServer;

  beforeAll(async () => {
    server = await startServer({
      embedded: true,
      env: { DASHBOARD_ORIGINS: DASHBOARD, CREDENTIAL_RATE_LIMIT_PER_MINUTE: '100000' },
    });
  });

  afterAll(async () => {
    await server?.close();
  });

  it('logs in, refreshes and logs out by cookie', async () => {
    const organization = await signupOrganization(server.api);
    const dashboard = { 'x-client': 'dashboard', origin: DASHBOARD };
    const loggedIn = await server.api.post(
      '/api/v1/auth/login',
      {
        organizationSlug: organization.slug,
        email: organization.admin.email,
        password: organization.admin.password,
      },
      { headers: dashboard },
    );
    const refreshCookie = setCookiesOf(loggedIn).get(REFRESH_COOKIE)?.value ?? '';
    const { csrfToken } = loggedIn.body;
    server.api.remember(refreshCookie);
    server.api.remember(csrfToken);
    const withCookie = (cookie: string) => ({
      headers: { ...dashboard, 'x-csrf-token': csrfToken, cookie: `${REFRESH_COOKIE}=${cookie}` },
    });

    const refreshed = await server.api.post(
      '/api/v1/auth/refresh',
      undefined,
      withCookie(refreshCookie),
    );
    const rotated = setCookiesOf(refreshed).get(REFRESH_COOKIE)?.value ?? '';
    server.api.remember(rotated);
    const loggedOut = await server.api.post('/api/v1/auth/logout', undefined, withCookie(rotated));

    expect(loggedIn.status).toBe(200);
    expect(refreshCookie).toMatch(/^prt_/);
    expect(refreshed.status).toBe(200);
    expect(rotated).toMatch(/^prt_/);
    expect(rotated).not.toBe(refreshCookie);
    expect(loggedOut.status).toBe(204);
    const me = await server.api.get('/api/v1/me', { token: refreshed.body.accessToken });
    expectProblem(me, 401, 'session_ended');
    expectNoSecretsInLogs(server);
  });
});
