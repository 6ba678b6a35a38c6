import { randomBytes } from 'node:crypto';

import { Clock } from '@parley/core';

import {
  Member,
  SignedUpOrganization,
  addMember,
  signupOrganization,
  uniqueEmail,
  uniqueSlug,
} from './factories';
import {
  ApiResponse,
  TestServer,
  expectNoSecretsInLogs,
  expectProblem,
  startServer,
} from './support';

interface AuditEvent {
  actorType: string;
  actorId: string | null;
  action: string;
  targetId: string | null;
  ip: string | null;
  metadata: Record<string, unknown>;
}

const ADDRESS_LIMIT = 10;

/**
 * A client address of its own for each test, from the IPv4 documentation range, sent through
 * X-Forwarded-For (the servers trust it here): every suite shares one database, and counting
 * these failures against 127.0.0.1 would block the other suites' sign-ins.
 */
function uniqueAddress(): string {
  const [a, b] = randomBytes(2);

  return `198.51.${a}.${b}`;
}

function body(response: ApiResponse): Record<string, unknown> {
  return { ...response.body, requestId: undefined };
}

describe('brute-force protection', () => {
  let server: TestServer;
  let clock: Clock;

  beforeAll(async () => {
    server = await startServer({
      env: {
        CREDENTIAL_RATE_LIMIT_PER_MINUTE: '100000',
        TRUST_PROXY: 'true',
        LOGIN_ADDRESS_FAILURE_LIMIT: String(ADDRESS_LIMIT),
      },
    });
    clock = server.app.get(Clock);
  });

  afterAll(async () => {
    await server?.close();
  });

  function signIn(
    organizationSlug: string,
    email: string,
    password: string,
    address: string,
  ): Promise<ApiResponse> {
    return server.api.post(
      '/api/v1/auth/login',
      { organizationSlug, email, password },
      { headers: { 'x-forwarded-for': address } },
    );
  }

  async function failTimes(
    times: number,
    organization: SignedUpOrganization,
    email: string,
    address: string,
  ): Promise<number[]> {
    const statuses = [];
    for (let attempt = 0; attempt < times; attempt += 1) {
      const response = await signIn(
        organization.slug,
        email,
        `wrong-${attempt}-guess-xyz`,
        address,
      );
      statuses.push(response.status);
    }

    return statuses;
  }

  async function auditEvents(
    organization: SignedUpOrganization,
    action: string,
  ): Promise<AuditEvent[]> {
    const response = await server.api.get(`/api/v1/audit/events?action=${action}&limit=500`, {
      token: organization.admin.tokens.accessToken,
    });
    expect(response.status).toBe(200);

    return response.body.items;
  }

  describe('per account', () => {
    let organization: SignedUpOrganization;
    let agent: Member;

    beforeEach(async () => {
      organization = await signupOrganization(server.api);
      agent = await addMember(server.api, organization, 'agent', { login: false });
    });

    it('locks on the fifth wrong password; the sixth, even the right one, gets 429', async () => {
      const address = uniqueAddress();

      const statuses = await failTimes(5, organization, agent.email, address);
      const right = await signIn(organization.slug, agent.email, agent.password, address);
      const fromElsewhere = await signIn(
        organization.slug,
        agent.email,
        agent.password,
        uniqueAddress(),
      );

      expect(statuses).toEqual([401, 401, 401, 401, 401]);
      expectProblem(right, 429, 'account_locked');
      const retryAfter = Number(right.headers.get('retry-after'));
      expect(retryAfter).toBeGreaterThanOrEqual(1);
      expect(retryAfter).toBeLessThanOrEqual(60);
      expect(right.text).not.toMatch(/token/i);
      expectProblem(fromElsewhere, 429, 'account_locked');
      const [locked] = await auditEvents(organization, 'auth.account_locked');
      expect(locked).toMatchObject({
        actorType: 'anonymous',
        targetId: agent.id,
        ip: address,
        metadata: { lockSeconds: 60, consecutiveFailures: 5, until: expect.any(String) },
      });
    });

    it('lets the right password in after the lock, audits it, and starts over', async () => {
      const address = uniqueAddress();
      await failTimes(5, organization, agent.email, address);

      clock.advance(61_000);
      const right = await signIn(organization.slug, agent.email, agent.password, address);
      // Another address, so this test stays below the per-address limit.
      const next = uniqueAddress();
      await failTimes(5, organization, agent.email, next);
      const sixth = await signIn(organization.slug, agent.email, agent.password, next);

      expect(right.status).toBe(200);
      const [unlocked] = await auditEvents(organization, 'auth.account_unlocked');
      expect(unlocked).toMatchObject({
        actorType: 'anonymous',
        targetId: agent.id,
        metadata: { reason: 'expired', wasLocked: true },
      });
      // The successful sign-in started the account over: the next lock is the first again.
      expectProblem(sixth, 429, 'account_locked');
      expect(Number(sixth.headers.get('retry-after'))).toBeLessThanOrEqual(60);
    });

    it('doubles the lock when the failures go on without a successful sign-in', async () => {
      const address = uniqueAddress();
      await failTimes(5, organization, agent.email, address);
      clock.advance(61_000);
      const next = uniqueAddress();

      const statuses = await failTimes(5, organization, agent.email, next);
      const locked = await signIn(organization.slug, agent.email, agent.password, next);

      expect(statuses).toEqual([401, 401, 401, 401, 401]);
      expectProblem(locked, 429, 'account_locked');
      expect(Number(locked.headers.get('retry-after'))).toBeGreaterThan(60);
      expect(Number(locked.headers.get('retry-after'))).toBeLessThanOrEqual(120);
      const lockSeconds = (await auditEvents(organization, 'auth.account_locked')).map(
        (event) => event.metadata.lockSeconds,
      );
      expect(lockSeconds).toEqual([120, 60]);
    });

    it('lets an admin unlock a member at once, audited; other roles may not', async () => {
      const address = uniqueAddress();
      await failTimes(5, organization, agent.email, address);
      const manager = await addMember(server.api, organization, 'manager');

      const byManager = await server.api.post(`/api/v1/users/${agent.id}/unlock`, undefined, {
        token: manager.tokens.accessToken,
      });
      const byAdmin = await server.api.post(`/api/v1/users/${agent.id}/unlock`, undefined, {
        token: organization.admin.tokens.accessToken,
      });
      const right = await signIn(organization.slug, agent.email, agent.password, address);

      expectProblem(byManager, 403, 'forbidden');
      expect(byAdmin.status).toBe(204);
      expect(right.status).toBe(200);
      const [unlocked] = await auditEvents(organization, 'auth.account_unlocked');
      expect(unlocked).toMatchObject({
        actorType: 'user',
        actorId: organization.admin.id,
        targetId: agent.id,
        metadata: { reason: 'admin', wasLocked: true },
      });
    });

    it('refuses to unlock a member of another organization', async () => {
      const other = await signupOrganization(server.api);

      const response = await server.api.post(`/api/v1/users/${agent.id}/unlock`, undefined, {
        token: other.admin.tokens.accessToken,
      });

      expectProblem(response, 404, 'not_found');
    });

    it('checks no more than five of many guesses sent at once', async () => {
      const address = uniqueAddress();

      const responses = await Promise.all(
        Array.from({ length: 12 }, (_, attempt) =>
          signIn(organization.slug, agent.email, `parallel-${attempt}-guess-xyz`, address),
        ),
      );

      const statuses = responses.map((response) => response.status);
      expect(statuses.filter((status) => status === 401).length).toBeLessThanOrEqual(5);
      expect(statuses.filter((status) => status === 429).length).toBeGreaterThanOrEqual(7);
      expect(statuses.every((status) => status === 401 || status === 429)).toBe(true);
    });
  });

  describe('an unknown email', () => {
    it('gets the same answers as a wrong password, lock included', async () => {
      const organization = await signupOrganization(server.api);
      const agent = await addMember(server.api, organization, 'agent', { login: false });
      const unknown = uniqueEmail('nobody');
      const [knownAddress, unknownAddress] = [uniqueAddress(), uniqueAddress()];

      const known: ApiResponse[] = [];
      const stranger: ApiResponse[] = [];
      for (let attempt = 0; attempt < 6; attempt += 1) {
        const password = `wrong-${attempt}-guess-xyz`;
        known.push(await signIn(organization.slug, agent.email, password, knownAddress));
        stranger.push(await signIn(organization.slug, unknown, password, unknownAddress));
      }

      expect(known.map((response) => response.status)).toEqual([401, 401, 401, 401, 401, 429]);
      expect(stranger.map((response) => response.status)).toEqual(
        known.map((response) => response.status),
      );
      for (let attempt = 0; attempt < 6; attempt += 1) {
        expect(body(stranger[attempt])).toEqual(body(known[attempt]));
        expect(stranger[attempt].headers.has('retry-after')).toBe(
          known[attempt].headers.has('retry-after'),
        );
      }
      const locks = await auditEvents(organization, 'auth.account_locked');
      expect(locks.map((event) => event.targetId).sort()).toEqual([agent.id, null].sort());
    });

    it('takes about as long as a wrong password', async () => {
      const organization = await signupOrganization(server.api);
      const agent = await addMember(server.api, organization, 'agent', { login: false });
      const timings = { known: [] as number[], unknown: [] as number[] };
      const median = (values: number[]) => [...values].sort((a, b) => a - b)[values.length >> 1];

      for (let attempt = 0; attempt < 4; attempt += 1) {
        for (const kind of ['known', 'unknown'] as const) {
          const email = kind === 'known' ? agent.email : uniqueEmail('nobody');
          const started = process.hrtime.bigint();
          const response = await signIn(
            organization.slug,
            email,
            `wrong-${attempt}-guess-xyz`,
            uniqueAddress(),
          );
          timings[kind].push(Number(process.hrtime.bigint() - started) / 1e6);
          expect(response.status).toBe(401);
        }
      }

      // argon2 dominates both; a path that skipped it would answer several times faster.
      const ratio = median(timings.unknown) / median(timings.known);
      expect(ratio).toBeGreaterThan(0.4);
      expect(ratio).toBeLessThan(2.5);
    });
  });

  describe('per address', () => {
    it('blocks an address failing across accounts, even for a right password', async () => {
      const organization = await signupOrganization(server.api);
      const address = uniqueAddress();
      const statuses = [];
      for (let attempt = 0; attempt < ADDRESS_LIMIT; attempt += 1) {
        const slug = attempt % 3 === 0 ? uniqueSlug('missing') : organization.slug;
        const response = await signIn(
          slug,
          uniqueEmail('spray'),
          'Spring2026-spray-guess',
          address,
        );
        statuses.push(response.status);
      }

      const admin = organization.admin;
      const blocked = await signIn(organization.slug, admin.email, admin.password, address);
      const elsewhere = await signIn(
        organization.slug,
        admin.email,
        admin.password,
        uniqueAddress(),
      );

      expect(statuses).toEqual(Array(ADDRESS_LIMIT).fill(401));
      expectProblem(blocked, 429, 'too_many_attempts');
      expect(Number(blocked.headers.get('retry-after'))).toBeGreaterThan(0);
      expect(elsewhere.status).toBe(200);
    });

    it('lets the address in again once the block is over', async () => {
      const organization = await signupOrganization(server.api);
      const address = uniqueAddress();
      for (let attempt = 0; attempt < ADDRESS_LIMIT; attempt += 1) {
        await signIn(organization.slug, uniqueEmail('spray'), 'Spring2026-spray-guess', address);
      }
      const admin = organization.admin;

      const blocked = await signIn(organization.slug, admin.email, admin.password, address);
      clock.advance(server.config.loginAddressBlockSeconds * 1000 + 1000);
      const after = await signIn(organization.slug, admin.email, admin.password, address);

      expectProblem(blocked, 429, 'too_many_attempts');
      expect(after.status).toBe(200);
    });
  });

  it('leaves no password in the logs', () => {
    expectNoSecretsInLogs(server);
  });
});

describe('brute-force protection on the embedded database', () => {
  let server: TestServer;

  beforeAll(async () => {
    server = await startServer({
      embedded: true,
      env: { CREDENTIAL_RATE_LIMIT_PER_MINUTE: '100000', LOGIN_ADDRESS_FAILURE_LIMIT: '8' },
    });
  });

  afterAll(async () => {
    await server?.close();
  });

  it('locks an account and blocks an address there too', async () => {
    const organization = await signupOrganization(server.api);
    const { admin } = organization;
    const attempt = (slug: string, email: string, password: string) =>
      server.api.post('/api/v1/auth/login', { organizationSlug: slug, email, password });

    const statuses = [];
    for (let count = 0; count < 5; count += 1) {
      statuses.push(
        (await attempt(organization.slug, admin.email, `wrong-${count}-xyz-guess`)).status,
      );
    }
    const locked = await attempt(organization.slug, admin.email, admin.password);
    for (let count = 0; count < 3; count += 1) {
      statuses.push(
        (await attempt(uniqueSlug('missing'), uniqueEmail(), 'any-guess-at-all-xyz')).status,
      );
    }
    const blocked = await attempt(uniqueSlug('missing'), uniqueEmail(), 'any-guess-at-all-xyz');

    expect(statuses).toEqual(Array(8).fill(401));
    expectProblem(locked, 429, 'account_locked');
    expectProblem(blocked, 429, 'too_many_attempts');
  });
});
