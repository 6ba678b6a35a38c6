import { Client } from 'pg';

import { Clock } from '@parley/core';

import {
  IssuedApiKey,
  Member,
  MembersByRole,
  SignedUpOrganization,
  addMember,
  addMemberOfEachRole,
  createApiKey,
  enrollTotp,
  grantElevation,
  login,
  requestElevation,
  requestWithApiKey,
  signupOrganization,
} from './factories';
import {
  JsonBody,
  TestServer,
  expectNoSecretsInLogs,
  expectProblem,
  startServer,
  testDatabaseUrl,
} from './support';

const DAY_MS = 24 * 3600 * 1000;

describe('access review', () => {
  let server: TestServer;
  let clock: Clock;
  let database: Client;
  let organization: SignedUpOrganization;
  let members: MembersByRole;
  /** Added by the admin and never signed in. */
  let dormant: Member;
  let managerKey: IssuedApiKey;
  let adminKey: IssuedApiKey;
  let elevation: JsonBody;

  async function review(member: Member = organization.admin): Promise<JsonBody> {
    const response = await server.api.get('/api/v1/access/review', {
      token: member.tokens.accessToken,
    });
    expect(response.status).toBe(200);

    return response.body;
  }

  function itemOf(body: JsonBody, member: Member): JsonBody {
    return (body.items as { id: string }[]).find((item) => item.id === member.id);
  }

  function lastLoginDaysAgo(member: Member, days: number): Promise<unknown> {
    // The test superuser writes past row-level security, as a long-running deployment would have.
    return database.query('update users set last_login_at = $1 where id = $2', [
      new Date(clock.nowMs() - days * DAY_MS),
      member.id,
    ]);
  }

  beforeAll(async () => {
    server = await startServer();
    clock = server.app.get(Clock);
    database = new Client({ connectionString: testDatabaseUrl() });
    await database.connect();
    organization = await signupOrganization(server.api);
    members = await addMemberOfEachRole(server.api, organization);
    dormant = await addMember(server.api, organization, 'agent', {
      login: false,
      name: 'Dormant',
    });
    await signupOrganization(server.api);

    await enrollTotp(server.api, clock, members.manager);
    managerKey = await createApiKey(server.api, members.manager, ['conversations:read'], {
      name: 'manager sync',
    });
    const revokedKey = await createApiKey(server.api, members.manager, ['contacts:read']);
    const revoked = await server.api.delete(`/api/v1/api-keys/${revokedKey.id}`, {
      token: members.manager.tokens.accessToken,
    });
    expect(revoked.status).toBe(204);
    adminKey = await createApiKey(server.api, organization.admin, ['audit:read']);
    elevation = await grantElevation(server.api, members.viewer, organization.admin, 'agent', 120);
    // Waiting for approval: not a running elevation.
    expect((await requestElevation(server.api, members.agent, 'manager')).status).toBe(201);
  });

  afterAll(async () => {
    await database?.end();
    await server?.close();
  });

  it('lists every member of the organization, and only those', async () => {
    const body = await review();

    expect(body.items.map((item: JsonBody) => item.id).sort()).toEqual(
      [
        organization.admin.id,
        members.manager.id,
        members.agent.id,
        members.viewer.id,
        dormant.id,
      ].sort(),
    );
    expect(body.inactiveAfterDays).toBe(90);
  });

  it("shows each member's own role, last login, MFA, working keys and running elevations", async () => {
    const body = await review();

    expect(itemOf(body, members.manager)).toMatchObject({
      email: members.manager.email,
      name: members.manager.name,
      role: 'manager',
      lastLoginAt: expect.any(String),
      inactive: false,
      mfa: { enrolled: true, required: false },
      apiKeys: {
        active: 1,
        items: [{ id: managerKey.id, name: 'manager sync', prefix: managerKey.prefix }],
      },
      elevations: [],
    });
    expect(itemOf(body, members.viewer)).toMatchObject({
      role: 'viewer',
      mfa: { enrolled: false },
      apiKeys: { active: 0, items: [] },
      elevations: [
        { id: elevation.id, role: 'agent', startsAt: elevation.startsAt, endsAt: elevation.endsAt },
      ],
    });
    expect(itemOf(body, members.agent)).toMatchObject({ role: 'agent', elevations: [] });
    expect(itemOf(body, organization.admin).apiKeys).toMatchObject({
      active: 1,
      items: [{ id: adminKey.id }],
    });
    expect(itemOf(body, dormant)).toMatchObject({ lastLoginAt: null, inactive: false });
    expect(body.summary).toEqual({
      members: 5,
      inactive: 0,
      mfaEnrolled: 1,
      mfaMissing: 0,
      activeApiKeys: 2,
      activeElevations: 1,
    });
  });

  it('flags a member whose last login is more than 90 days old', async () => {
    await lastLoginDaysAgo(members.agent, 91);
    await lastLoginDaysAgo(members.manager, 89);

    const body = await review();

    expect(itemOf(body, members.agent).inactive).toBe(true);
    expect(itemOf(body, members.manager).inactive).toBe(false);
    expect(body.summary.inactive).toBe(1);
  });

  it('flags a member who never signed in once they were added more than 90 days ago', async () => {
    clock.advance(91 * DAY_MS);
    const admin = organization.admin;
    admin.tokens = await login(server.api, organization.slug, admin.email, admin.password);

    const body = await review();

    expect(itemOf(body, dormant)).toMatchObject({ lastLoginAt: null, inactive: true });
    expect(itemOf(body, members.viewer).inactive).toBe(true);
    expect(itemOf(body, members.manager).inactive).toBe(true);
    expect(itemOf(body, admin).inactive).toBe(false);
    // The keys expired after their default 90 days, and the elevation after its two hours.
    expect(itemOf(body, members.manager).apiKeys).toEqual({ active: 0, items: [] });
    expect(itemOf(body, members.viewer).elevations).toEqual([]);
    expect(body.summary).toMatchObject({
      members: 5,
      inactive: 4,
      mfaEnrolled: 1,
      activeApiKeys: 0,
      activeElevations: 0,
    });
  });

  it("counts members whose role needs MFA by the organization's policy and who lack it", async () => {
    const strict = await signupOrganization(server.api);
    const agent = await addMember(server.api, strict, 'agent');
    const policy = await server.api.patch(
      '/api/v1/organization',
      { security: { mfaRequiredRoles: ['agent'] } },
      { token: strict.admin.tokens.accessToken },
    );
    expect(policy.status).toBe(200);

    const body = await review(strict.admin);

    expect(itemOf(body, agent).mfa).toEqual({ enrolled: false, required: true });
    expect(itemOf(body, strict.admin).mfa).toEqual({ enrolled: false, required: false });
    expect(body.summary).toMatchObject({ members: 2, mfaEnrolled: 0, mfaMissing: 1 });
  });

  it('is for admins only, and never for an API key', async () => {
    const admin = organization.admin;
    for (const role of ['manager', 'agent', 'viewer'] as const) {
      const member = await addMember(server.api, organization, role);
      const response = await server.api.get('/api/v1/access/review', {
        token: member.tokens.accessToken,
      });
      expectProblem(response, 403, 'forbidden');
    }
    const key = await createApiKey(server.api, admin, ['audit:read']);
    const withKey = await requestWithApiKey(server.api, key.key, 'GET', '/api/v1/access/review');

    expectProblem(withKey, 401, 'token_not_accepted_here');
  });

  it('logs no secret', () => {
    expectNoSecretsInLogs(server);
  });
});
