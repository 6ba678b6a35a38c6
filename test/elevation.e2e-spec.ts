import { Client } from 'pg';
import { Socket, io } from 'socket.io-client';

import { Clock } from '@parley/core';

import {
  ELEVATION_REASON,
  Member,
  MembersByRole,
  SignedUpOrganization,
  addMember,
  addMemberOfEachRole,
  createApiKey,
  decideElevation,
  enrollTotp,
  grantElevation,
  login,
  requestElevation,
  requestWithApiKey,
  signupOrganization,
  uniqueEmail,
} from './factories';
import {
  ApiResponse,
  JsonBody,
  TestServer,
  expectNoSecretsInLogs,
  expectProblem,
  startServer,
  testDatabaseUrl,
} from './support';

const MINUTE_MS = 60_000;

describe('just-in-time elevation', () => {
  let server: TestServer;
  let clock: Clock;
  let database: Client;
  let organization: SignedUpOrganization;
  let members: MembersByRole;
  let other: SignedUpOrganization;
  /** Assigned to the manager, so an agent may not change it or write in it. */
  let conversationId: string;
  const sockets: Socket[] = [];

  function admin(): Member {
    return organization.admin;
  }

  /** Moving the clock by more than an hour expires access tokens; members then sign in again. */
  async function signInAgain(...again: Member[]): Promise<void> {
    for (const member of again) {
      member.tokens = await login(server.api, organization.slug, member.email, member.password);
    }
  }

  function changeConversation(member: Member, status: string): Promise<ApiResponse> {
    return server.api.patch(
      `/api/v1/conversations/${conversationId}`,
      { status },
      { token: member.tokens.accessToken },
    );
  }

  function readAudit(member: Member, query = ''): Promise<ApiResponse> {
    return server.api.get(`/api/v1/audit/events${query}`, { token: member.tokens.accessToken });
  }

  async function auditEntries(query: string): Promise<JsonBody[]> {
    const response = await readAudit(admin(), query);
    expect(response.status).toBe(200);

    return response.body.items;
  }

  async function listed(member: Member, id: string): Promise<JsonBody> {
    const response = await server.api.get('/api/v1/access/elevations', {
      token: member.tokens.accessToken,
    });
    expect(response.status).toBe(200);

    return (response.body.items as { id: string }[]).find((item) => item.id === id);
  }

  async function connect(member: Member): Promise<Socket> {
    const socket = io(`${server.baseUrl}/chat`, {
      transports: ['websocket'],
      reconnection: false,
      forceNew: true,
      auth: { token: member.tokens.accessToken },
    });
    sockets.push(socket);
    await new Promise<void>((resolve, reject) => {
      socket.once('connect', () => resolve());
      socket.once('connect_error', (error) => reject(error));
    });

    return socket;
  }

  beforeAll(async () => {
    // The longest cache sessions allow, so the elevation's end is shown to hold within it.
    server = await startServer({ env: { SESSION_CACHE_MS: '1000' } });
    clock = server.app.get(Clock);
    database = new Client({ connectionString: testDatabaseUrl() });
    await database.connect();
    organization = await signupOrganization(server.api);
    members = await addMemberOfEachRole(server.api, organization);
    other = await signupOrganization(server.api);

    const token = admin().tokens.accessToken;
    const contact = await server.api.post(
      '/api/v1/contacts',
      { email: uniqueEmail('contact'), name: 'Elevation Contact' },
      { token },
    );
    const conversation = await server.api.post(
      '/api/v1/conversations',
      { contactId: contact.body.id, subject: 'assigned to the manager' },
      { token },
    );
    conversationId = conversation.body.id;
    const assigned = await server.api.patch(
      `/api/v1/conversations/${conversationId}`,
      { assigneeId: members.manager.id },
      { token },
    );
    expect(assigned.status).toBe(200);
  });

  afterAll(async () => {
    for (const socket of sockets) {
      socket.disconnect();
    }
    await database?.end();
    await server?.close();
  });

  describe('asking', () => {
    it.each([
      ['more than 480 minutes', { role: 'manager', minutes: 481, reason: ELEVATION_REASON }],
      ['no minutes at all', { role: 'manager', minutes: 0, reason: ELEVATION_REASON }],
      ['minutes as text', { role: 'manager', minutes: '30', reason: ELEVATION_REASON }],
      ['a reason under 10 characters', { role: 'manager', minutes: 30, reason: '  because ' }],
      ['a reason over 500 characters', { role: 'manager', minutes: 30, reason: 'x'.repeat(501) }],
      ['an unknown role', { role: 'owner', minutes: 30, reason: ELEVATION_REASON }],
    ])('refuses %s', async (_name, body) => {
      const response = await server.api.post('/api/v1/access/elevations', body, {
        token: members.agent.tokens.accessToken,
      });

      expectProblem(response, 400, 'validation_failed');
    });

    it('accepts 480 minutes, the most there is', async () => {
      const response = await requestElevation(server.api, members.viewer, 'agent', 480);
      expect(response.status).toBe(201);

      const withdrawn = await decideElevation(
        server.api,
        members.viewer,
        response.body.id,
        'revoke',
      );
      expect(withdrawn.body).toMatchObject({ status: 'revoked', active: false });
    });

    it.each([
      ['agent', 'agent'],
      ['agent', 'viewer'],
      ['manager', 'manager'],
      ['admin', 'admin'],
    ] as const)('refuses to a member whose own role is %s the role %s', async (role, asked) => {
      const response = await requestElevation(server.api, members[role], asked);

      expectProblem(response, 422, 'elevation_role_not_higher');
    });

    it('keeps one request waiting per member at a time', async () => {
      const first = await requestElevation(server.api, members.viewer, 'manager');
      const second = await requestElevation(server.api, members.viewer, 'agent');

      expect(first.status).toBe(201);
      expectProblem(second, 409, 'elevation_already_pending');
      await decideElevation(server.api, members.viewer, first.body.id, 'revoke');
    });

    it('refuses an API key on every elevation route', async () => {
      const key = await createApiKey(server.api, admin(), ['conversations:read']);
      const asked = await requestWithApiKey(
        server.api,
        key.key,
        'POST',
        '/api/v1/access/elevations',
        { role: 'admin', minutes: 30, reason: ELEVATION_REASON },
      );
      const list = await requestWithApiKey(server.api, key.key, 'GET', '/api/v1/access/elevations');

      expectProblem(asked, 401, 'token_not_accepted_here');
      expectProblem(list, 401, 'token_not_accepted_here');
    });
  });

  describe('an agent elevated to manager for 30 minutes', () => {
    let elevation: JsonBody;

    it('cannot do what managers do while the request waits', async () => {
      const requested = await requestElevation(server.api, members.agent, 'manager', 30);
      elevation = requested.body;

      expect(requested.status).toBe(201);
      expect(elevation).toMatchObject({
        requester: { id: members.agent.id },
        requesterRole: 'agent',
        role: 'manager',
        minutes: 30,
        reason: ELEVATION_REASON,
        status: 'pending',
        active: false,
        startsAt: null,
        endsAt: null,
      });
      expectProblem(await changeConversation(members.agent, 'pending'), 403, 'forbidden');
    });

    it('is approved only by an admin', async () => {
      const byManager = await decideElevation(server.api, members.manager, elevation.id, 'approve');

      expectProblem(byManager, 403, 'forbidden');
      expect(await listed(admin(), elevation.id)).toMatchObject({ status: 'pending' });
    });

    it('starts at the approval and lasts the minutes asked', async () => {
      clock.advance(5 * MINUTE_MS);
      const before = clock.nowMs();
      const approved = await decideElevation(server.api, admin(), elevation.id, 'approve');

      expect(approved.status).toBe(200);
      expect(approved.body).toMatchObject({
        status: 'approved',
        active: true,
        decidedBy: { id: admin().id, name: admin().name },
      });
      const startsAt = Date.parse(approved.body.startsAt);
      expect(startsAt).toBeGreaterThanOrEqual(before);
      expect(startsAt).toBeLessThanOrEqual(clock.nowMs());
      expect(Date.parse(approved.body.endsAt) - startsAt).toBe(30 * MINUTE_MS);
    });

    it('now does what managers do, on HTTP and on the socket', async () => {
      const changed = await changeConversation(members.agent, 'pending');
      const sent = await server.api.post(
        `/api/v1/conversations/${conversationId}/messages`,
        { body: 'written under an elevation' },
        { token: members.agent.tokens.accessToken },
      );
      const socket = await connect(members.agent);
      const acked = await socket.emitWithAck('message:send', {
        conversationId,
        body: 'sent over the socket under an elevation',
        clientMessageId: 'elevated-1',
      });

      expect(changed.status).toBe(200);
      expect(sent.status).toBe(201);
      expect(acked).toMatchObject({ ok: true });
    });

    it('marks every act under it with the elevation, and not the approval', async () => {
      const under = await auditEntries(`?elevation=${elevation.id}`);
      const actions = under.map((entry) => entry.action);

      expect(actions).toEqual(
        expect.arrayContaining(['conversation.updated', 'message.created', 'message.created']),
      );
      expect(actions.filter((action) => action === 'message.created')).toHaveLength(2);
      for (const entry of under) {
        expect(entry).toMatchObject({
          actorType: 'user',
          actorId: members.agent.id,
          elevationId: elevation.id,
        });
      }
      const approval = await auditEntries('?action=elevation.approved');
      expect(approval.find((entry) => entry.targetId === elevation.id)).toMatchObject({
        actorId: admin().id,
        elevationId: null,
        metadata: { role: 'manager', requesterId: members.agent.id },
      });
    });

    it('records an explicit security event under it with the elevation too', async () => {
      // A session ended by its own member is an explicit entry, written by AuditService.record.
      const spare = await login(
        server.api,
        organization.slug,
        members.agent.email,
        members.agent.password,
      );
      const sessions = await server.api.get('/api/v1/auth/sessions', {
        token: spare.accessToken,
      });
      const spareSession = (sessions.body.items as { id: string; current: boolean }[]).find(
        (session) => session.current,
      ) as { id: string };
      const ended = await server.api.delete(`/api/v1/auth/sessions/${spareSession.id}`, {
        token: members.agent.tokens.accessToken,
      });

      expect(ended.status).toBe(204);
      const entries = await auditEntries('?action=session.ended');
      expect(entries.find((entry) => entry.targetId === spareSession.id)).toMatchObject({
        actorId: members.agent.id,
        elevationId: elevation.id,
      });
    });

    it('stops when its time is up, in the same session and on the socket', async () => {
      clock.advance(15 * MINUTE_MS);
      expect((await changeConversation(members.agent, 'open')).status).toBe(200);

      clock.advance(16 * MINUTE_MS);
      const socket = await connect(members.agent);
      const acked = await socket.emitWithAck('message:send', {
        conversationId,
        body: 'sent after the elevation ended',
        clientMessageId: 'elevated-2',
      });

      expectProblem(await changeConversation(members.agent, 'pending'), 403, 'forbidden');
      expect(acked).toMatchObject({ ok: false, error: { code: 'forbidden' } });
    });

    it('is recorded as expired once noticed, with the time it really ended', async () => {
      const ended = await listed(members.agent, elevation.id);
      // Half an hour passed: the sessions not used since then have idled out.
      await signInAgain(members.admin, members.manager, members.viewer);
      other.admin.tokens = await login(
        server.api,
        other.slug,
        other.admin.email,
        other.admin.password,
      );
      const expired = await auditEntries('?action=elevation.expired');
      const entry = expired.find((candidate) => candidate.targetId === elevation.id);

      expect(ended).toMatchObject({ status: 'expired', active: false });
      expect(ended.endedAt).toBe(ended.endsAt);
      expect(entry).toMatchObject({
        actorType: 'system',
        elevationId: null,
        metadata: {
          role: 'manager',
          requesterId: members.agent.id,
          reason: 'ended',
          endedAt: ended.endsAt,
        },
      });
    });
  });

  it('ends on time even when the session was read just before', async () => {
    const elevation = await grantElevation(server.api, members.agent, admin(), 'manager', 1);
    clock.advance(MINUTE_MS - 50);
    // This read is cached for up to SESSION_CACHE_MS (one second here).
    expect((await changeConversation(members.agent, 'pending')).status).toBe(200);

    clock.advance(100);
    const after = await changeConversation(members.agent, 'open');

    expectProblem(after, 403, 'forbidden');
    expect(Date.parse(elevation.endsAt)).toBeLessThanOrEqual(clock.nowMs());
  });

  it('lets a viewer act as admin only once approved, and no longer once revoked', async () => {
    const viewer = members.viewer;
    expectProblem(await readAudit(viewer), 403, 'forbidden');

    const requested = await requestElevation(server.api, viewer, 'admin', 60);
    expect(requested.status).toBe(201);
    expectProblem(await readAudit(viewer), 403, 'forbidden');

    const approved = await decideElevation(server.api, admin(), requested.body.id, 'approve');
    expect(approved.status).toBe(200);
    expect((await readAudit(viewer)).status).toBe(200);

    const revoked = await decideElevation(server.api, admin(), requested.body.id, 'revoke');
    expect(revoked.body).toMatchObject({
      status: 'revoked',
      active: false,
      revokedBy: { id: admin().id },
    });
    expectProblem(await readAudit(viewer), 403, 'forbidden');
    const entries = await auditEntries('?action=elevation.revoked');
    expect(entries.find((entry) => entry.targetId === requested.body.id)).toMatchObject({
      actorId: admin().id,
      metadata: { role: 'admin', requesterId: viewer.id, wasActive: true },
    });
  });

  it('leaves a denied request without effect', async () => {
    const requested = await requestElevation(server.api, members.viewer, 'admin', 60);
    const denied = await decideElevation(server.api, admin(), requested.body.id, 'deny');
    const approvedAfter = await decideElevation(server.api, admin(), requested.body.id, 'approve');

    expect(denied.body).toMatchObject({ status: 'denied', decidedBy: { id: admin().id } });
    expectProblem(approvedAfter, 409, 'elevation_not_pending');
    expectProblem(await readAudit(members.viewer), 403, 'forbidden');
    expect((await auditEntries('?action=elevation.denied')).map((e) => e.targetId)).toContain(
      requested.body.id,
    );
  });

  describe('self-approval', () => {
    let adminElevation: JsonBody;
    let ownRequest: JsonBody;

    it('is refused to a member who is admin through an elevation', async () => {
      adminElevation = await grantElevation(server.api, members.agent, admin(), 'admin', 60);
      expect((await readAudit(members.agent)).status).toBe(200);

      // Above the agent's own role, so they may ask, though they act as admin just now.
      const requested = await requestElevation(server.api, members.agent, 'manager', 480);
      ownRequest = requested.body;
      const approved = await decideElevation(server.api, members.agent, ownRequest.id, 'approve');
      const denied = await decideElevation(server.api, members.agent, ownRequest.id, 'deny');

      expect(requested.status).toBe(201);
      expectProblem(approved, 403, 'elevation_own_request');
      expectProblem(denied, 403, 'elevation_own_request');
      expect(await listed(admin(), ownRequest.id)).toMatchObject({ status: 'pending' });
    });

    it('is refused by the database too', async () => {
      await expect(
        database.query(
          `update access_elevations
              set status = 'approved', approver_id = requester_id, decided_at = now(),
                  starts_at = now(), ends_at = now() + make_interval(mins => minutes)
            where id = $1`,
          [ownRequest.id],
        ),
      ).rejects.toMatchObject({ code: '23514' });
    });

    it('lets the member end their own elevation early', async () => {
      const withdrawn = await decideElevation(server.api, members.agent, ownRequest.id, 'revoke');
      const ended = await decideElevation(server.api, members.agent, adminElevation.id, 'revoke');
      const again = await decideElevation(server.api, members.agent, adminElevation.id, 'revoke');

      expect(withdrawn.body).toMatchObject({ status: 'revoked', startsAt: null });
      expect(ended.body).toMatchObject({ status: 'revoked', revokedBy: { id: members.agent.id } });
      expectProblem(again, 409, 'elevation_not_open');
      expectProblem(await readAudit(members.agent), 403, 'forbidden');
    });
  });

  describe('who sees and touches whose requests', () => {
    let pending: JsonBody;

    beforeAll(async () => {
      pending = (await requestElevation(server.api, members.manager, 'admin', 30)).body;
    });

    it('shows admins every request and others only their own', async () => {
      const forAdmin = await server.api.get('/api/v1/access/elevations', {
        token: admin().tokens.accessToken,
      });
      const forAgent = await server.api.get('/api/v1/access/elevations', {
        token: members.agent.tokens.accessToken,
      });

      expect(forAdmin.body.items.map((item: JsonBody) => item.requester.id)).toEqual(
        expect.arrayContaining([members.manager.id, members.agent.id, members.viewer.id]),
      );
      expect(forAgent.body.items.length).toBeGreaterThan(0);
      for (const item of forAgent.body.items) {
        expect(item.requester.id).toBe(members.agent.id);
      }
    });

    it("answers 404 to a member who revokes someone else's request", async () => {
      const response = await decideElevation(server.api, members.agent, pending.id, 'revoke');

      expectProblem(response, 404, 'not_found');
    });

    it.each(['approve', 'deny', 'revoke'] as const)(
      "answers 404 to another organization's admin who tries to %s it",
      async (act) => {
        const response = await decideElevation(server.api, other.admin, pending.id, act);

        expectProblem(response, 404, 'not_found');
      },
    );

    it("lists none of it to another organization's admin", async () => {
      const response = await server.api.get('/api/v1/access/elevations', {
        token: other.admin.tokens.accessToken,
      });

      expect(response.body.items).toEqual([]);
    });

    it('finds a request by its id in upper case in its own organization only', async () => {
      const unknown = await decideElevation(
        server.api,
        admin(),
        '00000000-0000-4000-8000-000000000000',
        'deny',
      );
      const elsewhere = await decideElevation(
        server.api,
        other.admin,
        pending.id.toUpperCase(),
        'deny',
      );
      const own = await decideElevation(server.api, admin(), pending.id.toUpperCase(), 'deny');

      expectProblem(unknown, 404, 'not_found');
      expectProblem(elsewhere, 404, 'not_found');
      expect(own.body).toMatchObject({ id: pending.id, status: 'denied' });
    });
  });

  it("applies an approval at once while the approver's own session is renewed in the background", async () => {
    const manager = await addMember(server.api, organization, 'manager');
    const requested = await requestElevation(server.api, manager, 'admin', 60);
    expect(requested.status).toBe(201);
    // The approver's and the member's cached sessions are now past half their age: the approval
    // request renews the approver's in the background, in a transaction of its own, while its
    // own transaction runs, and the member's would still be trusted without the approval's
    // after-commit eviction.
    clock.advance(600);

    const approved = await decideElevation(server.api, admin(), requested.body.id, 'approve');

    expect(approved.status).toBe(200);
    expect((await readAudit(manager)).status).toBe(200);
  });

  it('ends when the member is demoted: an elevation holds only over the role it was granted on', async () => {
    const manager = await addMember(server.api, organization, 'manager');
    const elevation = await grantElevation(server.api, manager, admin(), 'admin', 60);
    expect((await readAudit(manager)).status).toBe(200);

    const demoted = await server.api.patch(
      `/api/v1/users/${manager.id}`,
      { role: 'agent' },
      { token: admin().tokens.accessToken },
    );
    expect(demoted.status).toBe(200);
    await signInAgain(manager);

    expectProblem(await readAudit(manager), 403, 'forbidden');
    expect(await listed(admin(), elevation.id)).toMatchObject({ status: 'expired', active: false });
    const expired = await auditEntries('?action=elevation.expired');
    expect(expired.find((entry) => entry.targetId === elevation.id)).toMatchObject({
      metadata: { reason: 'role_changed' },
    });
  });

  it('never lends the elevated role to API keys', async () => {
    const formerAdmin = await addMember(server.api, organization, 'admin');
    const key = await createApiKey(server.api, formerAdmin, ['audit:read']);
    const auditWithKey = () =>
      requestWithApiKey(server.api, key.key, 'GET', '/api/v1/audit/events');
    expect((await auditWithKey()).status).toBe(200);

    await server.api.patch(
      `/api/v1/users/${formerAdmin.id}`,
      { role: 'manager' },
      { token: admin().tokens.accessToken },
    );
    await signInAgain(formerAdmin);
    await grantElevation(server.api, formerAdmin, admin(), 'admin', 60);
    // A key's creator and role are trusted for up to SESSION_CACHE_MS, like a session.
    clock.advance(1_001);
    const newKey = await server.api.post(
      '/api/v1/api-keys',
      { name: 'minted while elevated', scopes: ['audit:read'] },
      { token: formerAdmin.tokens.accessToken },
    );

    expect((await readAudit(formerAdmin)).status).toBe(200);
    expectProblem(await auditWithKey(), 403, 'forbidden');
    expectProblem(newKey, 403, 'scope_not_allowed');
  });

  it('refuses an elevated member a key their own role could not create', async () => {
    const agent = await addMember(server.api, organization, 'agent');
    await grantElevation(server.api, agent, admin(), 'manager', 60);

    const response = await server.api.post(
      '/api/v1/api-keys',
      { name: 'minted by an elevated agent', scopes: ['conversations:read'] },
      { token: agent.tokens.accessToken },
    );

    expectProblem(response, 403, 'forbidden');
  });

  it('needs a confirmed MFA factor for a role the organization requires MFA for', async () => {
    const strict = await signupOrganization(server.api);
    const viewer = await addMember(server.api, strict, 'viewer');
    const policy = await server.api.patch(
      '/api/v1/organization',
      { security: { mfaRequiredRoles: ['admin'] } },
      { token: strict.admin.tokens.accessToken },
    );
    expect(policy.status).toBe(200);

    const refused = await requestElevation(server.api, viewer, 'admin');
    const manager = await requestElevation(server.api, viewer, 'manager');
    await decideElevation(server.api, viewer, manager.body.id, 'revoke');
    await enrollTotp(server.api, clock, viewer);
    const accepted = await requestElevation(server.api, viewer, 'admin');
    const approved = await decideElevation(server.api, strict.admin, accepted.body.id, 'approve');

    expectProblem(refused, 403, 'elevation_mfa_required');
    expect(manager.status).toBe(201);
    expect(accepted.status).toBe(201);
    expect(approved.body).toMatchObject({ status: 'approved', active: true });
  });

  it('audits every request', async () => {
    const requested = await auditEntries('?action=elevation.requested&limit=500');

    expect(requested.length).toBeGreaterThanOrEqual(8);
    for (const entry of requested) {
      expect(entry).toMatchObject({
        targetType: 'elevation',
        metadata: { role: expect.any(String), minutes: expect.any(Number) },
      });
      expect(JSON.stringify(entry)).not.toContain(ELEVATION_REASON);
    }
  });

  it('logs no secret', () => {
    expectNoSecretsInLogs(server);
  });
});
