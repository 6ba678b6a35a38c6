import { randomUUID } from 'node:crypto';

import { Client } from 'pg';

import { Clock, ConfigError, loadConfig } from '@parley/core';
import {
  AlertSeverity,
  Alerts,
  IncidentAlertListener,
  IncidentEscalation,
  SecurityAlert,
} from '@parley/security';

import {
  Member,
  MembersByRole,
  SignedUpOrganization,
  addMemberOfEachRole,
  createApiKey,
  login,
  requestWithApiKey,
  signupOrganization,
} from './factories';
import {
  ApiResponse,
  JsonBody,
  TestServer,
  connectSocket,
  expectNoSecretsInLogs,
  expectProblem,
  startServer,
  testDatabaseUrl,
} from './support';

const MINUTE_MS = 60_000;
const HOUR_MS = 60 * MINUTE_MS;

describe('incidents', () => {
  let server: TestServer;
  let clock: Clock;
  let alerts: Alerts;
  let listener: IncidentAlertListener;
  let escalation: IncidentEscalation;
  let database: Client;
  let organization: SignedUpOrganization;
  let members: MembersByRole;
  let other: SignedUpOrganization;
  /** Every alert raised in this process after boot, as a webhook dispatcher would get it. */
  const raised: SecurityAlert[] = [];

  /** Moving the clock past the idle time ends sessions: members sign in again before acting. */
  async function signIn(member: Member, into = organization): Promise<Member> {
    member.tokens = await login(server.api, into.slug, member.email, member.password);

    return member;
  }

  function alertFor(
    into: SignedUpOrganization,
    overrides: Partial<SecurityAlert> = {},
  ): SecurityAlert {
    return {
      id: randomUUID(),
      organizationId: into.id,
      rule: 'failed_login_burst_account',
      severity: 'medium',
      summary: 'Five failed sign-ins to one account within 300 seconds.',
      subject: { type: 'user', id: randomUUID() },
      occurredAt: clock.now(),
      details: { failures: 5, windowSeconds: 300 },
      ...overrides,
    };
  }

  /** Hands an alert to the incident listener as `Alerts` does and returns the incident it hit. */
  async function deliver(alert: SecurityAlert): Promise<string> {
    const outcome = await listener.receive(alert);
    if (!outcome) {
      throw new Error(`alert ${alert.rule} opened no incident`);
    }

    return outcome.incidentId;
  }

  async function openIncident(severity: AlertSeverity = 'medium'): Promise<string> {
    return deliver(alertFor(organization, { severity }));
  }

  function read(id: string, member: Member = organization.admin): Promise<ApiResponse> {
    return server.api.get(`/api/v1/security/incidents/${id}`, {
      token: member.tokens.accessToken,
    });
  }

  async function incident(id: string): Promise<JsonBody> {
    const response = await read(id);
    expect(response.status).toBe(200);

    return response.body;
  }

  function change(id: string, body: unknown, member: Member = organization.admin) {
    return server.api.patch(`/api/v1/security/incidents/${id}`, body, {
      token: member.tokens.accessToken,
    });
  }

  function act(
    id: string,
    body: unknown,
    member: Member = organization.admin,
    headers: Record<string, string> = {},
  ) {
    return server.api.post(`/api/v1/security/incidents/${id}/actions`, body, {
      token: member.tokens.accessToken,
      headers,
    });
  }

  async function auditOf(action: string, targetId: string): Promise<JsonBody[]> {
    const response = await server.api.get(`/api/v1/audit/events?action=${action}&limit=500`, {
      token: organization.admin.tokens.accessToken,
    });
    expect(response.status).toBe(200);

    return response.body.items.filter((entry: JsonBody) => entry.targetId === targetId);
  }

  /** One escalation pass over this suite's organizations, then every alert it raised delivered. */
  async function escalate(): Promise<{ incidentId: string; deadline: string; level: number }[]> {
    const escalations = await escalation.run([organization.id, other.id]);
    await alerts.whenDispatched();
    await listener.whenIdle();

    return escalations;
  }

  function overdueAlertsOf(incidentId: string): SecurityAlert[] {
    return raised.filter(
      (alert) => alert.rule === 'incident_overdue' && alert.subject?.id === incidentId,
    );
  }

  beforeAll(async () => {
    server = await startServer({
      env: {
        TRUST_PROXY: 'true',
        CREDENTIAL_RATE_LIMIT_PER_MINUTE: '1000',
      },
    });
    clock = server.app.get(Clock);
    alerts = server.app.get(Alerts);
    listener = server.app.get(IncidentAlertListener);
    escalation = server.app.get(IncidentEscalation);
    alerts.addListener({
      name: 'incidents-suite',
      onAlert: async (alert) => {
        raised.push(alert);
      },
    });
    database = new Client({ connectionString: testDatabaseUrl() });
    await database.connect();
    organization = await signupOrganization(server.api);
    members = await addMemberOfEachRole(server.api, organization);
    other = await signupOrganization(server.api);
  });

  afterAll(async () => {
    await database?.end();
    await server?.close();
  });

  describe('alerts open and join incidents', () => {
    it('opens an incident from an alert raised through Alerts, with the deadline of its severity', async () => {
      const subject = { type: 'user', id: randomUUID() };
      const raisedAlert = alerts.raise({
        organizationId: organization.id,
        rule: 'failed_login_burst_account',
        severity: 'high',
        summary: 'Five failed sign-ins to one account within 300 seconds.',
        subject,
        details: { failures: 5 },
      });
      await alerts.whenDispatched();
      await listener.whenIdle();

      const rows = await database.query(
        `select id from incidents where organization_id = $1 and subject_id = $2`,
        [organization.id, subject.id],
      );
      expect(rows.rows).toHaveLength(1);
      const opened = await incident(rows.rows[0].id);
      expect(opened).toMatchObject({
        rule: 'failed_login_burst_account',
        subjectType: 'user',
        subjectId: subject.id,
        severity: 'high',
        status: 'open',
        alertCount: 1,
        escalationLevel: 0,
        personalDataBreach: false,
        regulatorDueAt: null,
      });
      expect(Date.parse(opened.responseDueAt) - Date.parse(opened.openedAt)).toBe(HOUR_MS);
      expect(opened.alerts).toEqual([
        expect.objectContaining({ id: raisedAlert.id, severity: 'high', details: { failures: 5 } }),
      ]);
      expect(await auditOf('incident.opened', opened.id)).toEqual([
        expect.objectContaining({
          actorType: 'system',
          metadata: {
            rule: 'failed_login_burst_account',
            severity: 'high',
            alertId: raisedAlert.id,
          },
        }),
      ]);
    });

    it.each([
      ['low', 24 * HOUR_MS],
      ['medium', 8 * HOUR_MS],
      ['critical', 0],
    ] as const)(
      'gives a %s incident a response deadline %d ms after it opened',
      async (severity, ms) => {
        const opened = await incident(await openIncident(severity));

        expect(Date.parse(opened.responseDueAt) - Date.parse(opened.openedAt)).toBe(ms);
        expect(opened.overdue).toBe(ms === 0);
      },
    );

    it('joins a second alert of the same rule and subject, raising the severity; another subject opens another', async () => {
      const first = alertFor(organization, { severity: 'low' });
      const incidentId = await deliver(first);
      const joined = await deliver(
        alertFor(organization, { severity: 'high', subject: first.subject }),
      );
      const elsewhere = await deliver(alertFor(organization, { severity: 'high' }));
      const otherRule = await deliver(
        alertFor(organization, { rule: 'refresh_token_reuse', subject: first.subject }),
      );

      expect(joined).toBe(incidentId);
      expect(elsewhere).not.toBe(incidentId);
      expect(otherRule).not.toBe(incidentId);
      const both = await incident(incidentId);
      expect(both).toMatchObject({ alertCount: 2, severity: 'high' });
      expect(both.alerts).toHaveLength(2);
      // Counted from the opening: a high incident is due an hour after it opened.
      expect(Date.parse(both.responseDueAt) - Date.parse(both.openedAt)).toBe(HOUR_MS);
      expect(await auditOf('incident.severity_raised', incidentId)).toEqual([
        expect.objectContaining({ metadata: expect.objectContaining({ from: 'low', to: 'high' }) }),
      ]);
      expect((await incident(elsewhere)).alertCount).toBe(1);
    });

    it('keeps the higher severity when a lower alert joins, and counts a repeated alert once', async () => {
      const first = alertFor(organization, { severity: 'critical' });
      const incidentId = await deliver(first);
      await deliver(alertFor(organization, { severity: 'low', subject: first.subject }));
      const again = await listener.receive(first);

      expect(again).toEqual({ incidentId, outcome: 'seen' });
      expect(await incident(incidentId)).toMatchObject({ severity: 'critical', alertCount: 2 });
    });

    it('opens the same rule and subject separately in each organization', async () => {
      const mine = alertFor(organization);
      const incidentId = await deliver(mine);
      const theirs = await deliver(alertFor(other, { subject: mine.subject, rule: mine.rule }));

      expect(theirs).not.toBe(incidentId);
      expect((await incident(incidentId)).alertCount).toBe(1);
    });

    it('opens a new incident once the join window has passed, and none for an alert without an organization or for incident_overdue', async () => {
      const first = alertFor(organization);
      const incidentId = await deliver(first);
      clock.advance(24 * HOUR_MS + MINUTE_MS);
      const later = await deliver(alertFor(organization, { subject: first.subject }));
      const installation = await listener.receive(alertFor(organization, { organizationId: null }));
      const overdue = await listener.receive(alertFor(organization, { rule: 'incident_overdue' }));

      expect(later).not.toBe(incidentId);
      expect(installation).toBeUndefined();
      expect(overdue).toBeUndefined();
      await signIn(organization.admin);
      expect((await incident(incidentId)).alertCount).toBe(1);
    });
  });

  describe('lifecycle', () => {
    beforeAll(async () => {
      await signIn(organization.admin);
    });

    it('moves open, acknowledged, contained, resolved, recording who and when, with notes', async () => {
      const id = await openIncident('high');

      const acknowledged = await change(id, {
        status: 'acknowledged',
        note: 'Paged the on-call engineer, Dana Whitfield.',
      });
      expect(acknowledged.status).toBe(200);
      expect(acknowledged.body).toMatchObject({
        status: 'acknowledged',
        acknowledged: { by: organization.admin.id, at: expect.any(String) },
        contained: { at: null, by: null },
        overdue: false,
      });
      clock.advance(1000);
      const contained = await change(id, {
        status: 'contained',
        note: 'Sessions of the account ended.',
      });
      expect(contained.body).toMatchObject({
        status: 'contained',
        contained: { by: organization.admin.id },
      });

      const noRootCause = await change(id, { status: 'resolved' });
      expectProblem(noRootCause, 422, 'incident_root_cause_required');
      expect((await incident(id)).status).toBe('contained');

      const resolved = await change(id, {
        status: 'resolved',
        rootCause: 'A reused password from another breach.',
        lessonsLearned: 'Require MFA for every admin.',
      });
      expect(resolved.status).toBe(200);
      const final = await incident(id);
      expect(final).toMatchObject({
        status: 'resolved',
        resolved: { by: organization.admin.id, at: expect.any(String) },
        rootCause: 'A reused password from another breach.',
        lessonsLearned: 'Require MFA for every admin.',
      });
      expect(final.notes.map((note: JsonBody) => note.body)).toEqual([
        'Paged the on-call engineer, Dana Whitfield.',
        'Sessions of the account ended.',
      ]);
      expect(final.notes[0]).toMatchObject({ authorId: organization.admin.id });
      const trail = await auditOf('incident.updated', id);
      expect(trail.map((entry: JsonBody) => entry.metadata.status).sort()).toEqual([
        'acknowledged',
        'contained',
        'resolved',
      ]);
      expect(JSON.stringify(trail)).not.toContain('Dana Whitfield');
      expect(JSON.stringify(trail)).not.toContain('reused password');
    });

    it('refuses a skipped, backward or post-resolution transition and changes nothing', async () => {
      const id = await openIncident();

      expectProblem(await change(id, { status: 'contained' }), 409, 'incident_transition_refused');
      expectProblem(
        await change(id, { status: 'resolved', rootCause: 'x' }),
        409,
        'incident_transition_refused',
      );
      expect(await incident(id)).toMatchObject({ status: 'open', rootCause: null });

      await change(id, { status: 'acknowledged' });
      expectProblem(
        await change(id, { status: 'open', note: 'going back' }),
        409,
        'incident_transition_refused',
      );
      const unchanged = await incident(id);
      expect(unchanged).toMatchObject({ status: 'acknowledged', notes: [] });

      await change(id, { status: 'contained' });
      await change(id, { status: 'resolved', rootCause: 'A leaked key.' });
      expectProblem(await change(id, { status: 'contained' }), 409, 'incident_transition_refused');
      expectProblem(await change(id, { status: 'reopened' }), 400, 'validation_failed');
      expect((await incident(id)).status).toBe('resolved');
    });

    it('stores notes, root causes and lessons learned sealed, and the database refuses them in clear', async () => {
      const id = await openIncident();
      await change(id, {
        note: 'Caller said her name is Imogen Ravenscroft.',
        rootCause: 'Ravenscroft shared her password.',
        lessonsLearned: 'Train Ravenscroft.',
      });

      const notes = await database.query(`select body from incident_notes where incident_id = $1`, [
        id,
      ]);
      const row = await database.query(
        `select root_cause, lessons_learned from incidents where id = $1`,
        [id],
      );
      const stored = [notes.rows[0].body, row.rows[0].root_cause, row.rows[0].lessons_learned];
      for (const value of stored) {
        expect(value).toMatch(/^pv1\./);
        expect(value).not.toContain('Ravenscroft');
      }
      await expect(
        database.query(
          `insert into incident_notes (id, organization_id, incident_id, created_at, body)
           values ($1, $2, $3, now(), 'in clear')`,
          [randomUUID(), organization.id, id],
        ),
      ).rejects.toMatchObject({ code: '23514' });
      await expect(
        database.query(`update incidents set root_cause = 'in clear' where id = $1`, [id]),
      ).rejects.toMatchObject({ code: '23514' });
    });

    it('lists newest first, filtered by status and severity, one page at a time', async () => {
      const critical = await openIncident('critical');
      clock.advance(1000);
      const low = await openIncident('low');

      const filtered = await server.api.get('/api/v1/security/incidents?severity=critical', {
        token: organization.admin.tokens.accessToken,
      });
      expect(filtered.status).toBe(200);
      expect(filtered.body.items.every((item: JsonBody) => item.severity === 'critical')).toBe(
        true,
      );
      expect(filtered.body.items.map((item: JsonBody) => item.id)).toContain(critical);
      expect(filtered.body.items.map((item: JsonBody) => item.id)).not.toContain(low);
      expect(filtered.body.items[0]).not.toHaveProperty('rootCause');

      const resolved = await server.api.get('/api/v1/security/incidents?status=resolved', {
        token: organization.admin.tokens.accessToken,
      });
      expect(resolved.body.items.length).toBeGreaterThan(0);
      expect(resolved.body.items.every((item: JsonBody) => item.status === 'resolved')).toBe(true);

      const all = await server.api.get('/api/v1/security/incidents?limit=200', {
        token: organization.admin.tokens.accessToken,
      });
      const ids: string[] = all.body.items.map((item: JsonBody) => item.id);
      expect(ids.slice(0, 2)).toEqual([low, critical]);
      const opened = all.body.items.map((item: JsonBody) => Date.parse(item.openedAt));
      expect(opened).toEqual([...opened].sort((a, b) => b - a));

      const paged: string[] = [];
      let cursor: string | null = null;
      do {
        const page: ApiResponse = await server.api.get(
          `/api/v1/security/incidents?limit=3${cursor ? `&cursor=${cursor}` : ''}`,
          { token: organization.admin.tokens.accessToken },
        );
        expect(page.status).toBe(200);
        paged.push(...page.body.items.map((item: JsonBody) => item.id));
        cursor = page.body.nextCursor;
      } while (cursor);
      expect(paged).toEqual(ids);
      expectProblem(
        await server.api.get('/api/v1/security/incidents?cursor=bm90LWEtY3Vyc29y', {
          token: organization.admin.tokens.accessToken,
        }),
        400,
        'validation_failed',
      );
    });
  });

  describe('deadlines and escalation', () => {
    it('escalates an incident still open past its response deadline once per level, raising incident_overdue', async () => {
      await signIn(organization.admin);
      const id = await openIncident('medium');
      expect((await escalate()).filter((found) => found.incidentId === id)).toEqual([]);

      clock.advance(8 * HOUR_MS);
      const first = (await escalate()).filter((found) => found.incidentId === id);
      const repeated = (await escalate()).filter((found) => found.incidentId === id);
      expect(first).toEqual([expect.objectContaining({ deadline: 'response', level: 1 })]);
      expect(repeated).toEqual([]);

      clock.advance(HOUR_MS);
      const second = (await escalate()).filter((found) => found.incidentId === id);
      expect(second).toEqual([expect.objectContaining({ deadline: 'response', level: 2 })]);
      expect((await escalate()).filter((found) => found.incidentId === id)).toEqual([]);

      const overdue = overdueAlertsOf(id);
      expect(overdue.map((alert) => alert.details.level)).toEqual([1, 2]);
      expect(overdue[0]).toMatchObject({
        organizationId: organization.id,
        severity: 'medium',
        subject: { type: 'incident', id },
        details: expect.objectContaining({ deadline: 'response', incidentId: id }),
      });
      const logged = server.logs
        .entries()
        .filter(
          (entry) => entry.message === 'incident overdue: escalated' && entry.incidentId === id,
        );
      expect(logged.map((entry) => entry.level)).toHaveLength(2);

      await signIn(organization.admin);
      expect(await incident(id)).toMatchObject({
        escalationLevel: 2,
        escalatedAt: expect.any(String),
        overdue: true,
      });
      expect((await auditOf('incident.escalated', id)).length).toBe(2);
      // The overdue alerts opened no incident of their own.
      const loops = await database.query(
        `select count(*)::int as count from incidents where organization_id = $1 and rule = 'incident_overdue'`,
        [organization.id],
      );
      expect(loops.rows[0].count).toBe(0);

      await change(id, { status: 'acknowledged' });
      clock.advance(2 * HOUR_MS);
      expect((await escalate()).filter((found) => found.incidentId === id)).toEqual([]);
      expect(overdueAlertsOf(id)).toHaveLength(2);
    });

    it('gives a personal-data breach a regulator deadline 72 hours after awareness, escalated until notified', async () => {
      await signIn(organization.admin);
      const id = await openIncident('high');
      await change(id, { status: 'acknowledged' });
      const awareAt = new Date(clock.nowMs() - HOUR_MS).toISOString();

      const marked = await change(id, { personalDataBreach: true, awareAt });
      expect(marked.status).toBe(200);
      expect(marked.body).toMatchObject({ personalDataBreach: true, awareAt });
      expect(Date.parse(marked.body.regulatorDueAt) - Date.parse(awareAt)).toBe(72 * HOUR_MS);

      clock.advance(70 * HOUR_MS);
      expect((await escalate()).filter((found) => found.incidentId === id)).toEqual([]);
      clock.advance(HOUR_MS + MINUTE_MS);
      expect((await escalate()).filter((found) => found.incidentId === id)).toEqual([
        expect.objectContaining({ deadline: 'regulator_notification', level: 1 }),
      ]);
      expect(overdueAlertsOf(id)).toEqual([
        expect.objectContaining({
          severity: 'critical',
          details: expect.objectContaining({ deadline: 'regulator_notification', level: 1 }),
        }),
      ]);

      await signIn(organization.admin);
      const notifiedAt = clock.now().toISOString();
      expect((await change(id, { regulatorNotifiedAt: notifiedAt })).body).toMatchObject({
        regulatorNotifiedAt: notifiedAt,
        regulatorEscalationLevel: 1,
      });
      clock.advance(3 * HOUR_MS);
      expect((await escalate()).filter((found) => found.incidentId === id)).toEqual([]);
      expect(overdueAlertsOf(id)).toHaveLength(1);
    });

    it('never escalates a breach notified in time, and starts the clock now when no awareAt is given', async () => {
      await signIn(organization.admin);
      const id = await openIncident('low');
      await change(id, { status: 'acknowledged' });
      const before = clock.nowMs();
      const marked = await change(id, { personalDataBreach: true });
      expect(Date.parse(marked.body.awareAt)).toBeGreaterThanOrEqual(before);
      expect(Date.parse(marked.body.awareAt)).toBeLessThanOrEqual(clock.nowMs());
      await change(id, { regulatorNotifiedAt: clock.now().toISOString() });

      clock.advance(80 * HOUR_MS);
      expect((await escalate()).filter((found) => found.incidentId === id)).toEqual([]);
    });

    it('refuses unmarking a breach, breach times on an incident that is none, and times in the future', async () => {
      await signIn(organization.admin);
      const id = await openIncident();
      const future = new Date(clock.nowMs() + HOUR_MS).toISOString();

      expectProblem(
        await change(id, { awareAt: clock.now().toISOString() }),
        409,
        'incident_not_a_breach',
      );
      expectProblem(
        await change(id, { personalDataBreach: true, awareAt: future }),
        400,
        'incident_time_in_future',
      );
      expect((await incident(id)).personalDataBreach).toBe(false);

      await change(id, { personalDataBreach: true });
      expectProblem(
        await change(id, { personalDataBreach: false }),
        409,
        'incident_breach_mark_permanent',
      );
      expectProblem(
        await change(id, {
          regulatorNotifiedAt: new Date(clock.nowMs() - 2 * HOUR_MS).toISOString(),
        }),
        400,
        'incident_notified_before_aware',
      );
      expect(await incident(id)).toMatchObject({
        personalDataBreach: true,
        regulatorNotifiedAt: null,
      });
    });
  });

  describe('containment actions', () => {
    beforeAll(async () => {
      await signIn(organization.admin);
      await signIn(other.admin, other);
    });

    it("ends a member's sessions: their token is refused at once", async () => {
      const agent = await signIn(members.agent);
      const id = await openIncident('high');
      expect((await server.api.get('/api/v1/me', { token: agent.tokens.accessToken })).status).toBe(
        200,
      );

      const action = await act(id, { type: 'end_user_sessions', userId: agent.id });
      expect(action.status).toBe(201);
      expect(action.body).toMatchObject({
        type: 'end_user_sessions',
        targetId: agent.id,
        takenBy: organization.admin.id,
      });
      // Every session not yet marked ended counts, the ones the moved clock let lapse too.
      const sessionsEnded = action.body.details.sessionsEnded;
      expect(sessionsEnded).toBeGreaterThanOrEqual(1);

      expectProblem(
        await server.api.get('/api/v1/me', { token: agent.tokens.accessToken }),
        401,
        'session_ended',
      );
      expect((await incident(id)).actions).toEqual([
        expect.objectContaining({ id: action.body.id }),
      ]);
      expect(await auditOf('incident.action_taken', id)).toEqual([
        expect.objectContaining({
          metadata: { type: 'end_user_sessions', targetId: agent.id, sessionsEnded },
        }),
      ]);
      expect(await auditOf('session.ended', agent.id)).toEqual(
        expect.arrayContaining([
          expect.objectContaining({
            metadata: { reason: 'incident_containment', count: sessionsEnded },
          }),
        ]),
      );
      // The admin's own session is untouched.
      expect((await read(id)).status).toBe(200);
    });

    it('revokes an API key: the key is refused at once', async () => {
      const id = await openIncident('high');
      const key = await createApiKey(server.api, organization.admin, ['conversations:read']);
      expect(
        (await requestWithApiKey(server.api, key.key, 'GET', '/api/v1/conversations')).status,
      ).toBe(200);

      const action = await act(id, { type: 'revoke_api_key', apiKeyId: key.id });
      expect(action.status).toBe(201);
      expect(action.body).toMatchObject({ type: 'revoke_api_key', targetId: key.id });

      expectProblem(
        await requestWithApiKey(server.api, key.key, 'GET', '/api/v1/conversations'),
        401,
        'invalid_api_key',
      );
      expect(await auditOf('api_key.revoked', key.id)).toHaveLength(1);
      expect(await auditOf('incident.action_taken', id)).toHaveLength(1);
    });

    it('blocks an address for the organization with 403 until the block ends, and no other address or organization', async () => {
      const agent = await signIn(members.agent);
      const id = await openIncident('high');
      const fromAdmin = { 'x-forwarded-for': '203.0.113.10' };
      const me = (token: string, address: string) =>
        server.api.get('/api/v1/me', { token, headers: { 'x-forwarded-for': address } });

      const action = await act(
        id,
        { type: 'block_address', address: '198.51.100.7', minutes: 20 },
        organization.admin,
        fromAdmin,
      );
      expect(action.status).toBe(201);
      expect(Date.parse(action.body.details.expiresAt) - Date.parse(action.body.takenAt)).toBe(
        20 * MINUTE_MS,
      );

      expectProblem(await me(agent.tokens.accessToken, '198.51.100.7'), 403, 'address_blocked');
      expectProblem(
        await me(organization.admin.tokens.accessToken, '198.51.100.7'),
        403,
        'address_blocked',
      );
      expect((await me(agent.tokens.accessToken, '198.51.100.8')).status).toBe(200);
      expect((await me(other.admin.tokens.accessToken, '198.51.100.7')).status).toBe(200);

      const stored = await database.query(
        `select b.address_index, a.details from blocked_addresses b
           join incident_actions a on a.target_id = b.id where b.incident_id = $1`,
        [id],
      );
      expect(stored.rows).toHaveLength(1);
      expect(stored.rows[0].address_index).toHaveLength(32);
      expect(JSON.stringify(stored.rows[0])).not.toContain('198.51.100.7');
      expect(stored.rows[0].address_index.toString('latin1')).not.toContain('198.51.100.7');

      clock.advance(20 * MINUTE_MS + 1000);
      expect((await me(agent.tokens.accessToken, '198.51.100.7')).status).toBe(200);
    });

    it('refuses sign-in, refresh, a widget session and a socket handshake from a blocked address, for that organization only', async () => {
      const agent = await signIn(members.agent);
      const id = await openIncident('high');
      const shop = 'https://shop.incidents.example.test';
      const patched = await server.api.patch(
        '/api/v1/organization',
        { widget: { allowedOrigins: [shop] } },
        {
          token: organization.admin.tokens.accessToken,
          headers: { 'x-forwarded-for': '203.0.113.10' },
        },
      );
      expect(patched.status).toBe(200);
      const widgetKey = patched.body.widget.key as string;
      const sessionsBefore = await database.query(
        'select count(*)::int as n from auth_sessions where organization_id = $1',
        [organization.id],
      );

      // The test clients connect from the loopback address, which sockets see whatever the headers say.
      const action = await act(
        id,
        { type: 'block_address', address: '127.0.0.1', minutes: 10 },
        organization.admin,
        { 'x-forwarded-for': '203.0.113.10' },
      );
      expect(action.status).toBe(201);

      const credentials = {
        organizationSlug: organization.slug,
        email: members.agent.email,
        password: members.agent.password,
      };
      expectProblem(
        await server.api.post('/api/v1/auth/login', credentials),
        403,
        'address_blocked',
      );
      expectProblem(
        await server.api.post('/api/v1/auth/refresh', { refreshToken: agent.tokens.refreshToken }),
        403,
        'address_blocked',
      );
      expectProblem(
        await server.api.post(
          '/api/v1/widget/sessions',
          { widgetKey },
          { headers: { origin: shop } },
        ),
        403,
        'address_blocked',
      );
      await expect(connectSocket(server, agent.tokens.accessToken)).rejects.toMatchObject({
        data: { code: 'address_blocked' },
      });
      // Nothing was handed out: no session opened, and the refresh token was not consumed.
      const sessionsAfter = await database.query(
        'select count(*)::int as n from auth_sessions where organization_id = $1',
        [organization.id],
      );
      expect(sessionsAfter.rows[0].n).toBe(sessionsBefore.rows[0].n);

      // Another address of the same organization, and the same address for another organization.
      expect(
        (
          await server.api.post('/api/v1/auth/login', credentials, {
            headers: { 'x-forwarded-for': '198.51.100.9' },
          })
        ).status,
      ).toBe(200);
      const otherSocket = await connectSocket(server, other.admin.tokens.accessToken);
      otherSocket.disconnect();
      expect(
        (
          await server.api.post('/api/v1/auth/login', {
            organizationSlug: other.slug,
            email: other.admin.email,
            password: other.admin.password,
          })
        ).status,
      ).toBe(200);

      clock.advance(10 * MINUTE_MS + 1000);
      const refreshed = await server.api.post('/api/v1/auth/refresh', {
        refreshToken: agent.tokens.refreshToken,
      });
      expect(refreshed.status).toBe(200);
    });

    it("blocks an IPv6 address by its /64 and refuses blocking the caller's own address", async () => {
      await signIn(organization.admin);
      const id = await openIncident('high');
      const fromAdmin = { 'x-forwarded-for': '203.0.113.10' };

      expectProblem(
        await act(
          id,
          { type: 'block_address', address: '203.0.113.10', minutes: 5 },
          organization.admin,
          fromAdmin,
        ),
        400,
        'incident_block_own_address',
      );
      expect(
        (
          await act(
            id,
            { type: 'block_address', address: '2001:db8:5:6::1', minutes: 5 },
            organization.admin,
            fromAdmin,
          )
        ).status,
      ).toBe(201);
      expectProblem(
        await server.api.get('/api/v1/me', {
          token: organization.admin.tokens.accessToken,
          headers: { 'x-forwarded-for': '2001:db8:5:6:aaaa::99' },
        }),
        403,
        'address_blocked',
      );
      expect(
        (
          await server.api.get('/api/v1/me', {
            token: organization.admin.tokens.accessToken,
            headers: { 'x-forwarded-for': '2001:db8:5:7::1' },
          })
        ).status,
      ).toBe(200);
      expect((await incident(id)).actions).toHaveLength(1);
    });

    it("refuses another organization's member or key, fields of another type, and a resolved incident", async () => {
      await signIn(organization.admin);
      const id = await openIncident('high');
      const theirKey = await createApiKey(server.api, other.admin, ['conversations:read']);

      expectProblem(
        await act(id, { type: 'end_user_sessions', userId: other.admin.id }),
        404,
        'not_found',
      );
      expectProblem(
        await act(id, { type: 'revoke_api_key', apiKeyId: theirKey.id }),
        404,
        'not_found',
      );
      expectProblem(
        await act(id, { type: 'end_user_sessions', userId: members.agent.id, minutes: 5 }),
        400,
        'validation_failed',
      );
      expectProblem(
        await act(id, { type: 'block_address', address: 'not-an-ip', minutes: 5 }),
        400,
        'validation_failed',
      );
      expect((await incident(id)).actions).toEqual([]);
      expect(
        (await server.api.get('/api/v1/me', { token: other.admin.tokens.accessToken })).status,
      ).toBe(200);
      expect(
        (await requestWithApiKey(server.api, theirKey.key, 'GET', '/api/v1/conversations')).status,
      ).toBe(200);

      await change(id, { status: 'acknowledged' });
      await change(id, { status: 'contained' });
      await change(id, { status: 'resolved', rootCause: 'Contained by hand.' });
      expectProblem(
        await act(id, { type: 'end_user_sessions', userId: members.viewer.id }),
        409,
        'incident_resolved',
      );
    });
  });

  describe('who may see and handle incidents', () => {
    let id: string;

    beforeAll(async () => {
      await signIn(organization.admin);
      await signIn(other.admin, other);
      for (const role of ['manager', 'agent', 'viewer'] as const) {
        await signIn(members[role]);
      }
      id = await openIncident('high');
    });

    it("answers 404 for another organization's incident on every route, and changes nothing", async () => {
      const theirs = other.admin;

      expectProblem(await read(id, theirs), 404, 'not_found');
      expectProblem(
        await change(id, { status: 'acknowledged', note: 'not mine' }, theirs),
        404,
        'not_found',
      );
      expectProblem(
        await act(id, { type: 'end_user_sessions', userId: theirs.id }, theirs),
        404,
        'not_found',
      );
      expectProblem(await read(id.toUpperCase(), theirs), 404, 'not_found');
      const listed = await server.api.get('/api/v1/security/incidents?limit=200', {
        token: theirs.tokens.accessToken,
      });
      expect(listed.body.items.map((item: JsonBody) => item.id)).not.toContain(id);
      expect(await incident(id)).toMatchObject({ status: 'open', notes: [], actions: [] });
      expect(
        (await server.api.get('/api/v1/me', { token: theirs.tokens.accessToken })).status,
      ).toBe(200);
    });

    it('refuses managers, agents, viewers and API keys', async () => {
      for (const role of ['manager', 'agent', 'viewer'] as const) {
        const member = members[role];
        expectProblem(
          await server.api.get('/api/v1/security/incidents', { token: member.tokens.accessToken }),
          403,
          'forbidden',
        );
        expectProblem(await read(id, member), 403, 'forbidden');
        expectProblem(await change(id, { status: 'acknowledged' }, member), 403, 'forbidden');
        expectProblem(
          await act(id, { type: 'end_user_sessions', userId: member.id }, member),
          403,
          'forbidden',
        );
      }
      const key = await createApiKey(server.api, organization.admin, ['audit:read']);
      expectProblem(
        await requestWithApiKey(server.api, key.key, 'GET', '/api/v1/security/incidents'),
        401,
        'token_not_accepted_here',
      );
      expect(await incident(id)).toMatchObject({ status: 'open', notes: [], actions: [] });
      expect(
        (await server.api.get('/api/v1/me', { token: members.manager.tokens.accessToken })).status,
      ).toBe(200);
    });

    it('keeps tokens and notes out of the logs', () => {
      expectNoSecretsInLogs(server);
      expect(server.logs.text()).not.toContain('Ravenscroft');
      expect(server.logs.text()).not.toContain('Dana Whitfield');
    });
  });
});

describe('incidents on the embedded database', () => {
  let server: TestServer;

  beforeAll(async () => {
    server = await startServer({
      embedded: true,
      // Its own database: the scheduled pass may visit every organization there.
      env: { TRUST_PROXY: 'true', INCIDENT_ESCALATION_CHECK_SECONDS: '1' },
    });
  });

  afterAll(async () => {
    await server?.close();
  });

  /** The scheduled pass runs on real time (every second here); this waits for it, bounded. */
  async function escalated(id: string, token: string, raised: SecurityAlert[]): Promise<JsonBody> {
    for (let attempt = 0; attempt < 100; attempt += 1) {
      await server.app.get(Alerts).whenDispatched();
      const response = await server.api.get(`/api/v1/security/incidents/${id}`, { token });
      if (response.body.escalationLevel > 0 && raised.some((alert) => alert.subject?.id === id)) {
        return response.body;
      }
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
    throw new Error('the scheduled escalation pass did not run within 10 seconds');
  }

  it('opens, escalates on schedule, handles and contains an incident on PGlite too', async () => {
    const clock = server.app.get(Clock);
    const raised: SecurityAlert[] = [];
    server.app.get(Alerts).addListener({
      name: 'embedded-suite',
      onAlert: async (alert) => {
        raised.push(alert);
      },
    });
    const organization = await signupOrganization(server.api);
    const token = organization.admin.tokens.accessToken;
    const outcome = await server.app.get(IncidentAlertListener).receive({
      id: randomUUID(),
      organizationId: organization.id,
      rule: 'failed_login_burst_address',
      severity: 'critical',
      summary: 'Twenty failed sign-ins from one address within 300 seconds.',
      subject: { type: 'address', id: 'a'.repeat(64) },
      occurredAt: clock.now(),
      details: {},
    });
    const id = outcome?.incidentId as string;

    expect(await escalated(id, token, raised)).toMatchObject({ escalationLevel: 1, overdue: true });
    expect(raised.filter((alert) => alert.rule === 'incident_overdue')).toEqual([
      expect.objectContaining({
        organizationId: organization.id,
        subject: { type: 'incident', id },
      }),
    ]);
    const acknowledged = await server.api.patch(
      `/api/v1/security/incidents/${id}`,
      { status: 'acknowledged', note: 'Looking into it.' },
      { token },
    );
    expect(acknowledged.body).toMatchObject({ status: 'acknowledged', escalationLevel: 1 });
    expect(acknowledged.body.notes).toEqual([
      expect.objectContaining({ body: 'Looking into it.' }),
    ]);

    const blocked = await server.api.post(
      `/api/v1/security/incidents/${id}/actions`,
      { type: 'block_address', address: '192.0.2.44', minutes: 5 },
      { token },
    );
    expect(blocked.status).toBe(201);
    expectProblem(
      await server.api.get('/api/v1/me', { token, headers: { 'x-forwarded-for': '192.0.2.44' } }),
      403,
      'address_blocked',
    );
    expect((await server.api.get('/api/v1/me', { token })).status).toBe(200);
  });
});

describe('incident configuration', () => {
  it('defaults the response deadlines to 24 h, 8 h, 1 h and at once, and refuses a later deadline for a higher severity', () => {
    expect(loadConfig({}).incidentResponseMinutes).toEqual({
      low: 1440,
      medium: 480,
      high: 60,
      critical: 0,
    });
    expect(
      loadConfig({ INCIDENT_RESPONSE_MINUTES: '600, 120, 30, 5' }).incidentResponseMinutes,
    ).toEqual({
      low: 600,
      medium: 120,
      high: 30,
      critical: 5,
    });
    for (const value of ['60,60,60', '60,120,30,0', '1,1,1,x', '50000,1,1,0']) {
      expect(() => loadConfig({ INCIDENT_RESPONSE_MINUTES: value })).toThrow(ConfigError);
    }
    expect(loadConfig({}).incidentJoinWindowMinutes).toBe(1440);
    expect(() => loadConfig({ INCIDENT_JOIN_WINDOW_MINUTES: '0' })).toThrow(ConfigError);
  });
});
