import { Client } from 'pg';
import { Socket } from 'socket.io-client';

import { SessionsService } from '@parley/auth';
import { Clock } from '@parley/core';

import {
  addMember,
  decideElevation,
  login,
  requestElevation,
  signupOrganization,
} from './factories';
import { TestServer, connectSocket, expectProblem, startServer, testDatabaseUrl } from './support';

const REDIS_URL = process.env.TEST_REDIS_URL ?? 'redis://127.0.0.1:6379';

function disconnected(socket: Socket, withinMs: number): Promise<number> {
  const started = Date.now();

  return new Promise((resolve, reject) => {
    const timer = setTimeout(
      () => reject(new Error(`socket still connected after ${withinMs} ms`)),
      withinMs,
    );
    socket.once('disconnect', () => {
      clearTimeout(timer);
      resolve(Date.now() - started);
    });
  });
}

describe('server-side sessions', () => {
  let server: TestServer;

  beforeAll(async () => {
    server = await startServer({ env: { CREDENTIAL_RATE_LIMIT_PER_MINUTE: '10000' } });
  });

  afterAll(async () => {
    await server?.close();
  });

  /** A new organization's admin session, with the server's session service and clock. */
  async function signedUpSession() {
    const organization = await signupOrganization(server.api);
    const listed = await server.api.get('/api/v1/auth/sessions', {
      token: organization.admin.tokens.accessToken,
    });
    const sessionId: string = listed.body.items.find(
      (item: { current: boolean }) => item.current,
    ).id;

    return {
      organization,
      sessionId,
      sessions: server.app.get(SessionsService),
      clock: server.app.get(Clock),
    };
  }

  /** The one database read behind a session check; background jobs open transactions of their own. */
  function spyOnReads(sessions: SessionsService) {
    return jest.spyOn(sessions as unknown as { read: () => Promise<unknown> }, 'read');
  }

  it('reads a session once for all the checks that arrive while its cached copy is renewed, and sees its end', async () => {
    const { organization, sessionId, sessions, clock } = await signedUpSession();
    const reads = spyOnReads(sessions);
    try {
      clock.advance(5_000);
      const checks = await Promise.all(
        Array.from({ length: 20 }, () => sessions.findActive(organization.id, sessionId)),
      );

      expect(reads).toHaveBeenCalledTimes(1);
      expect(new Set(checks.map((check) => check?.id))).toEqual(new Set([sessionId]));

      const ended = await server.api.post('/api/v1/auth/logout', undefined, {
        token: organization.admin.tokens.accessToken,
      });
      expect(ended.status).toBe(204);
      const after = await Promise.all(
        Array.from({ length: 5 }, () => sessions.findActive(organization.id, sessionId)),
      );
      expect(after).toEqual([undefined, undefined, undefined, undefined, undefined]);
    } finally {
      reads.mockRestore();
    }
  });

  it('renews a session in steady use in the background, and still refuses it once ended elsewhere', async () => {
    const { organization, sessionId, sessions, clock } = await signedUpSession();
    clock.advance(5_000);
    expect((await sessions.findActive(organization.id, sessionId))?.id).toBe(sessionId);
    const reads = spyOnReads(sessions);
    const database = new Client({ connectionString: testDatabaseUrl() });
    await database.connect();
    try {
      // Half as old as the cache allows: answered from the copy, and read again behind it.
      clock.advance(600);
      expect((await sessions.findActive(organization.id, sessionId))?.id).toBe(sessionId);
      expect(reads).toHaveBeenCalledTimes(1);
      await reads.mock.results[0].value;

      // Another instance ends it: no copy outlives SESSION_CACHE_MS from its read.
      await database.query('update auth_sessions set ended_at = now() where id = $1', [sessionId]);
      clock.advance(1_001);
      expect(await sessions.findActive(organization.id, sessionId)).toBeUndefined();
    } finally {
      reads.mockRestore();
      await database.end();
    }
  });

  it('caches no session read that an elevation approval overtook, and shares none with the checks after it', async () => {
    const { organization, sessions, clock } = await signedUpSession();
    const manager = await addMember(server.api, organization, 'manager');
    const listed = await server.api.get('/api/v1/auth/sessions', {
      token: manager.tokens.accessToken,
    });
    const sessionId: string = listed.body.items.find(
      (item: { current: boolean }) => item.current,
    ).id;
    const requested = await requestElevation(server.api, manager, 'admin', 30);
    expect(requested.status).toBe(201);
    const locker = new Client({ connectionString: testDatabaseUrl() });
    await locker.connect();
    try {
      // Past the last-seen resolution, a read of the session ends by recording its use, which
      // waits here on the row lock: the read has already seen the member without the elevation.
      clock.advance(120_000);
      await locker.query('begin');
      await locker.query('select 1 from auth_sessions where id = $1 for update', [sessionId]);
      const overtaken = sessions.findActive(organization.id, sessionId);
      await new Promise((resolve) => setTimeout(resolve, 200));

      const approved = await decideElevation(
        server.api,
        organization.admin,
        requested.body.id,
        'approve',
      );
      expect(approved.status).toBe(200);
      const after = sessions.findActive(organization.id, sessionId);
      await locker.query('commit');

      expect((await overtaken)?.elevation).toBeNull();
      expect((await after)?.elevation).toEqual(expect.objectContaining({ role: 'admin' }));
      expect((await sessions.findActive(organization.id, sessionId))?.elevation).toEqual(
        expect.objectContaining({ role: 'admin' }),
      );
      const audit = await server.api.get('/api/v1/audit/events', {
        token: manager.tokens.accessToken,
      });
      expect(audit.status).toBe(200);
    } finally {
      await locker.query('rollback').catch(() => undefined);
      await locker.end();
    }
  });

  it('lists the caller’s own active sessions and marks the current one', async () => {
    const organization = await signupOrganization(server.api);
    const second = await login(
      server.api,
      organization.slug,
      organization.admin.email,
      organization.admin.password,
    );

    const response = await server.api.get('/api/v1/auth/sessions', { token: second.accessToken });

    expect(response.status).toBe(200);
    expect(response.body.items).toHaveLength(2);
    expect(
      response.body.items.filter((session: { current: boolean }) => session.current),
    ).toHaveLength(1);
    expect(Object.keys(response.body.items[0]).sort()).toEqual(
      ['createdAt', 'current', 'expiresAt', 'id', 'ip', 'lastSeenAt', 'userAgent'].sort(),
    );
  });

  it('ends one session by id, and answers 404 for a session of somebody else', async () => {
    const organization = await signupOrganization(server.api);
    const agent = await addMember(server.api, organization, 'agent');
    const other = await login(
      server.api,
      organization.slug,
      organization.admin.email,
      organization.admin.password,
    );
    const sessions = await server.api.get('/api/v1/auth/sessions', { token: other.accessToken });
    const firstSession = sessions.body.items.find(
      (session: { current: boolean }) => !session.current,
    );

    const foreign = await server.api.delete(`/api/v1/auth/sessions/${firstSession.id}`, {
      token: agent.tokens.accessToken,
    });
    const stillWorks = await server.api.get('/api/v1/me', {
      token: organization.admin.tokens.accessToken,
    });
    const ended = await server.api.delete(`/api/v1/auth/sessions/${firstSession.id}`, {
      token: other.accessToken,
    });
    const refused = await server.api.get('/api/v1/me', {
      token: organization.admin.tokens.accessToken,
    });

    expectProblem(foreign, 404, 'not_found');
    expect(stillWorks.status).toBe(200);
    expect(ended.status).toBe(204);
    expectProblem(refused, 401, 'session_ended');
  });

  it('ends every other session but keeps the current one', async () => {
    const organization = await signupOrganization(server.api);
    const current = await login(
      server.api,
      organization.slug,
      organization.admin.email,
      organization.admin.password,
    );

    const response = await server.api.delete('/api/v1/auth/sessions', {
      token: current.accessToken,
    });

    expect(response.status).toBe(204);
    expectProblem(
      await server.api.get('/api/v1/me', { token: organization.admin.tokens.accessToken }),
      401,
      'session_ended',
    );
    expect((await server.api.get('/api/v1/me', { token: current.accessToken })).status).toBe(200);
    const refresh = await server.api.post('/api/v1/auth/refresh', {
      refreshToken: organization.admin.tokens.refreshToken,
    });
    expect(refresh.status).toBe(401);
  });

  it('lets exactly one of 20 parallel refreshes of one token succeed', async () => {
    const organization = await signupOrganization(server.api);
    const { refreshToken } = organization.admin.tokens;

    const responses = await Promise.all(
      Array.from({ length: 20 }, () => server.api.post('/api/v1/auth/refresh', { refreshToken })),
    );

    expect(responses.filter((response) => response.status === 200)).toHaveLength(1);
    expect(responses.filter((response) => response.status === 401)).toHaveLength(19);
  });

  it('lets an admin end all sessions of a member, and nobody else', async () => {
    const organization = await signupOrganization(server.api);
    const agent = await addMember(server.api, organization, 'agent');
    const manager = await addMember(server.api, organization, 'manager');

    const byManager = await server.api.delete(`/api/v1/users/${agent.id}/sessions`, {
      token: manager.tokens.accessToken,
    });
    const agentStill = await server.api.get('/api/v1/me', { token: agent.tokens.accessToken });
    const byAdmin = await server.api.delete(`/api/v1/users/${agent.id}/sessions`, {
      token: organization.admin.tokens.accessToken,
    });

    expectProblem(byManager, 403, 'forbidden');
    expect(agentStill.status).toBe(200);
    expect(byAdmin.status).toBe(204);
    expectProblem(
      await server.api.get('/api/v1/me', { token: agent.tokens.accessToken }),
      401,
      'session_ended',
    );
  });

  it('answers 404 when an admin ends the sessions of another organization’s member', async () => {
    const mine = await signupOrganization(server.api);
    const theirs = await signupOrganization(server.api);

    const response = await server.api.delete(`/api/v1/users/${theirs.admin.id}/sessions`, {
      token: mine.admin.tokens.accessToken,
    });

    expectProblem(response, 404, 'not_found');
    expect(
      (await server.api.get('/api/v1/me', { token: theirs.admin.tokens.accessToken })).status,
    ).toBe(200);
  });

  it('ends the sessions of a member whose role changes', async () => {
    const organization = await signupOrganization(server.api);
    const agent = await addMember(server.api, organization, 'agent');

    const change = await server.api.patch(
      `/api/v1/users/${agent.id}`,
      { role: 'viewer' },
      { token: organization.admin.tokens.accessToken },
    );

    expect(change.status).toBe(200);
    expectProblem(
      await server.api.get('/api/v1/me', { token: agent.tokens.accessToken }),
      401,
      'session_ended',
    );
  });

  it('ends a session left idle past the organization’s idle time, and keeps a used one alive', async () => {
    const organization = await signupOrganization(server.api);
    const idle = await addMember(server.api, organization, 'agent');
    const busy = await addMember(server.api, organization, 'agent');
    const clock = server.app.get(Clock);

    try {
      for (let minute = 0; minute < 40; minute += 10) {
        clock.advance(10 * 60_000);
        expect(
          (await server.api.get('/api/v1/me', { token: busy.tokens.accessToken })).status,
        ).toBe(200);
      }
      const refused = await server.api.get('/api/v1/me', { token: idle.tokens.accessToken });

      expectProblem(refused, 401, 'session_ended');
    } finally {
      clock.advance(-40 * 60_000);
    }
  });

  it('ends a login at the organization’s absolute lifetime, refreshes included', async () => {
    const organization = await signupOrganization(server.api);
    await server.api.patch(
      '/api/v1/organization',
      { security: { sessionAbsoluteHours: 1 } },
      { token: organization.admin.tokens.accessToken },
    );
    const tokens = await login(
      server.api,
      organization.slug,
      organization.admin.email,
      organization.admin.password,
    );
    const clock = server.app.get(Clock);

    try {
      clock.advance(25 * 60_000);
      const first = await server.api.post('/api/v1/auth/refresh', {
        refreshToken: tokens.refreshToken,
      });
      clock.advance(25 * 60_000);
      const second = await server.api.post('/api/v1/auth/refresh', {
        refreshToken: first.body.refreshToken,
      });
      clock.advance(15 * 60_000);
      const third = await server.api.post('/api/v1/auth/refresh', {
        refreshToken: second.body.refreshToken,
      });

      expect(first.status).toBe(200);
      expect(second.status).toBe(200);
      expectProblem(third, 401, 'invalid_refresh_token');
    } finally {
      clock.advance(-65 * 60_000);
    }
  });
});

describe('session revocation across instances', () => {
  let first: TestServer;
  let second: TestServer;

  beforeAll(async () => {
    first = await startServer({ env: { REDIS_URL } });
    second = await startServer({ env: { REDIS_URL } });
  });

  afterAll(async () => {
    await second?.close();
    await first?.close();
  });

  it('disconnects a socket held on another instance within a second of logout', async () => {
    const organization = await signupOrganization(first.api);
    const socket = await connectSocket(second, organization.admin.tokens.accessToken);

    const cut = disconnected(socket, 1000);
    const logout = await first.api.post('/api/v1/auth/logout', undefined, {
      token: organization.admin.tokens.accessToken,
    });

    expect(logout.status).toBe(204);
    await expect(cut).resolves.toBeLessThan(1000);
    socket.close();
  });

  it('refuses a revoked session’s token on the other instance', async () => {
    const organization = await signupOrganization(first.api);
    expect(
      (await second.api.get('/api/v1/me', { token: organization.admin.tokens.accessToken })).status,
    ).toBe(200);

    await first.api.post('/api/v1/auth/logout', undefined, {
      token: organization.admin.tokens.accessToken,
    });

    expectProblem(
      await second.api.get('/api/v1/me', { token: organization.admin.tokens.accessToken }),
      401,
      'session_ended',
    );
  });
});
