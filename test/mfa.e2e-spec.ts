import { generate } from 'otplib';

import { Clock } from '@parley/core';
import { TenantTransactions } from '@parley/database';

import { Member, SignedUpOrganization, addMember, login, signupOrganization } from './factories';
import {
  ApiResponse,
  TestServer,
  expectNoSecretsInLogs,
  expectProblem,
  startServer,
} from './support';

const STEP_MS = 30_000;

interface Enrollment {
  secret: string;
  otpauthUri: string;
  recoveryCodes: string[];
}

describe('multi-factor authentication (TOTP)', () => {
  let server: TestServer;
  let clock: Clock;
  /** Every TOTP secret, URI, recovery code and code the suite used: none may reach the logs. */
  const secrets: string[] = [];
  const codes: string[] = [];

  beforeAll(async () => {
    server = await startServer({ env: { CREDENTIAL_RATE_LIMIT_PER_MINUTE: '1000' } });
    clock = server.app.get(Clock);
  });

  afterAll(async () => {
    await server?.close();
  });

  /** Moves the server's clock just past the start of the next 30 s step, so a fresh code is valid for the whole test step. */
  function nextStep(): void {
    clock.advance(STEP_MS - (clock.nowMs() % STEP_MS) + 100);
  }

  /** The code of the step `offset` steps from the server's current one. */
  async function codeAt(secret: string, offset = 0): Promise<string> {
    const code = await generate({ secret, epoch: clock.nowSeconds() + offset * 30 });
    codes.push(code);

    return code;
  }

  function loginRequest(
    organization: SignedUpOrganization,
    member: Member,
    mfaCode?: string,
  ): Promise<ApiResponse> {
    return server.api.post('/api/v1/auth/login', {
      organizationSlug: organization.slug,
      email: member.email,
      password: member.password,
      ...(mfaCode === undefined ? {} : { mfaCode }),
    });
  }

  async function enroll(token: string): Promise<Enrollment> {
    const started = await server.api.post('/api/v1/me/mfa/totp', undefined, { token });
    expect(started.status).toBe(201);
    const { secret, otpauthUri } = started.body;
    secrets.push(secret, otpauthUri);

    nextStep();
    const confirmed = await server.api.post(
      '/api/v1/me/mfa/totp/confirm',
      { code: await codeAt(secret) },
      { token },
    );
    expect(confirmed.status).toBe(200);
    secrets.push(...confirmed.body.recoveryCodes);
    // The confirming code's step is now used; later codes come from the next one.
    nextStep();

    return { secret, otpauthUri, recoveryCodes: confirmed.body.recoveryCodes };
  }

  async function auditActions(organization: SignedUpOrganization): Promise<string[]> {
    const response = await server.api.get('/api/v1/audit/events?limit=500', {
      token: organization.admin.tokens.accessToken,
    });
    expect(response.status).toBe(200);

    return response.body.items.map((event: { action: string }) => event.action);
  }

  it('enrolls with an otpauth URI, activates on a first code and returns ten recovery codes once', async () => {
    const organization = await signupOrganization(server.api);
    const member = await addMember(server.api, organization, 'agent');
    const token = member.tokens.accessToken;

    const started = await server.api.post('/api/v1/me/mfa/totp', undefined, { token });
    const { secret, otpauthUri } = started.body;
    secrets.push(secret, otpauthUri);
    const uri = new URL(otpauthUri);
    const beforeConfirm = await loginRequest(organization, member);
    const wrong = await server.api.post(
      '/api/v1/me/mfa/totp/confirm',
      { code: (await codeAt(secret)) === '000000' ? '111111' : '000000' },
      { token },
    );
    const confirmed = await server.api.post(
      '/api/v1/me/mfa/totp/confirm',
      { code: await codeAt(secret) },
      { token },
    );
    secrets.push(...(confirmed.body.recoveryCodes ?? []));
    const again = await server.api.post(
      '/api/v1/me/mfa/totp/confirm',
      { code: await codeAt(secret) },
      { token },
    );
    const restart = await server.api.post('/api/v1/me/mfa/totp', undefined, { token });

    expect(started.status).toBe(201);
    expect(secret).toMatch(/^[A-Z2-7]{32}$/);
    expect(uri.protocol).toBe('otpauth:');
    expect(uri.host).toBe('totp');
    expect(decodeURIComponent(uri.pathname)).toBe(`/Parley:${organization.slug}:${member.email}`);
    expect(uri.searchParams.get('secret')).toBe(secret);
    expect(uri.searchParams.get('issuer')).toBe('Parley');
    // A pending factor asks for nothing at login.
    expect(beforeConfirm.status).toBe(200);
    expectProblem(wrong, 422, 'invalid_mfa_code');
    expect(confirmed.status).toBe(200);
    expect(confirmed.body.recoveryCodes).toHaveLength(10);
    expect(new Set(confirmed.body.recoveryCodes).size).toBe(10);
    for (const code of confirmed.body.recoveryCodes) {
      expect(code).toMatch(/^[a-z2-7]{4}(-[a-z2-7]{4}){3}$/);
    }
    expectProblem(again, 409, 'mfa_already_enrolled');
    expectProblem(restart, 409, 'mfa_already_enrolled');
    expect(await auditActions(organization)).toEqual(
      expect.arrayContaining(['mfa.enrollment_started', 'mfa.enrolled']),
    );
  });

  it('answers mfa_required without a code, then signs in with a current code', async () => {
    const organization = await signupOrganization(server.api);
    const member = await addMember(server.api, organization, 'manager');
    const { secret } = await enroll(member.tokens.accessToken);

    const withoutCode = await loginRequest(organization, member);
    const withCode = await loginRequest(organization, member, await codeAt(secret));
    const me = await server.api.get('/api/v1/me', { token: withCode.body.accessToken });

    expectProblem(withoutCode, 401, 'mfa_required');
    expect(withCode.status).toBe(200);
    expect(withCode.body).toEqual(
      expect.objectContaining({ accessToken: expect.any(String), tokenType: 'Bearer' }),
    );
    expect(me.status).toBe(200);
    expect(me.body.id).toBe(member.id);
  });

  it('keeps answering invalid_credentials for a wrong password, code or not', async () => {
    const organization = await signupOrganization(server.api);
    const member = await addMember(server.api, organization, 'agent');
    const { secret } = await enroll(member.tokens.accessToken);

    const wrongPassword = { ...member, password: `${member.password}x` };
    const withoutCode = await loginRequest(organization, wrongPassword);
    const withCode = await loginRequest(organization, wrongPassword, await codeAt(secret));
    // The refused password used nothing up: the same code still signs in.
    const right = await loginRequest(organization, member, await codeAt(secret));

    expectProblem(withoutCode, 401, 'invalid_credentials');
    expectProblem(withCode, 401, 'invalid_credentials');
    expect(right.status).toBe(200);
  });

  it('refuses the same code twice, and refuses a wrong code with an audit entry', async () => {
    const organization = await signupOrganization(server.api);
    const member = await addMember(server.api, organization, 'agent');
    const { secret } = await enroll(member.tokens.accessToken);

    const code = await codeAt(secret);
    const first = await loginRequest(organization, member, code);
    const replay = await loginRequest(organization, member, code);
    const wrong = await loginRequest(organization, member, code === '123456' ? '654321' : '123456');
    nextStep();
    const next = await loginRequest(organization, member, await codeAt(secret));

    expect(first.status).toBe(200);
    expectProblem(replay, 401, 'invalid_mfa_code');
    expectProblem(wrong, 401, 'invalid_mfa_code');
    expect(next.status).toBe(200);
    const failures = (await auditActions(organization)).filter(
      (action) => action === 'auth.mfa_failed',
    );
    expect(failures).toHaveLength(2);
  });

  it('refuses two racing logins with one code but one', async () => {
    const organization = await signupOrganization(server.api);
    const member = await addMember(server.api, organization, 'agent');
    const { secret } = await enroll(member.tokens.accessToken);

    const code = await codeAt(secret);
    const results = await Promise.all(
      Array.from({ length: 5 }, () => loginRequest(organization, member, code)),
    );

    expect(results.map((result) => result.status).sort()).toEqual([200, 401, 401, 401, 401]);
  });

  it('accepts a code one step either side and refuses one two steps away', async () => {
    const organization = await signupOrganization(server.api);
    const member = await addMember(server.api, organization, 'agent');
    const { secret } = await enroll(member.tokens.accessToken);
    // Three steps past the confirming code, so only the window can refuse a code two steps back.
    nextStep();
    nextStep();

    const twoBack = await loginRequest(organization, member, await codeAt(secret, -2));
    const twoAhead = await loginRequest(organization, member, await codeAt(secret, 2));
    const oneBack = await loginRequest(organization, member, await codeAt(secret, -1));
    const oneAhead = await loginRequest(organization, member, await codeAt(secret, 1));
    // A code of the current step is now older than the last one accepted.
    const current = await loginRequest(organization, member, await codeAt(secret));

    expectProblem(twoBack, 401, 'invalid_mfa_code');
    expectProblem(twoAhead, 401, 'invalid_mfa_code');
    expect(oneBack.status).toBe(200);
    expect(oneAhead.status).toBe(200);
    expectProblem(current, 401, 'invalid_mfa_code');
  });

  it('locks TOTP after five wrong codes in a row, lets a recovery code through, and unlocks in time', async () => {
    const organization = await signupOrganization(server.api);
    const member = await addMember(server.api, organization, 'agent');
    const { secret, recoveryCodes } = await enroll(member.tokens.accessToken);
    const right = await codeAt(secret);
    const wrong = right === '000000' ? '111111' : '000000';

    const guesses: ApiResponse[] = [];
    for (let attempt = 0; attempt < 5; attempt += 1) {
      guesses.push(await loginRequest(organization, member, wrong));
    }
    const whileLocked = await loginRequest(organization, member, right);
    const recovery = await loginRequest(organization, member, recoveryCodes[0]);
    // The recovery code proved the member; the count starts again.
    const afterRecovery = await loginRequest(organization, member, right);
    for (let attempt = 0; attempt < 5; attempt += 1) {
      await loginRequest(organization, member, wrong);
    }
    const lockedAgain = await loginRequest(organization, member, wrong);
    clock.advance(61_000);
    nextStep();
    const afterLock = await loginRequest(organization, member, await codeAt(secret));

    for (const guess of guesses) {
      expectProblem(guess, 401, 'invalid_mfa_code');
    }
    expectProblem(whileLocked, 429, 'mfa_locked');
    expect(Number(whileLocked.headers.get('retry-after'))).toBeGreaterThan(0);
    expect(recovery.status).toBe(200);
    expect(afterRecovery.status).toBe(200);
    expectProblem(lockedAgain, 429, 'mfa_locked');
    expect(afterLock.status).toBe(200);
    const actions = await auditActions(organization);
    expect(actions.filter((action) => action === 'auth.mfa_locked')).toHaveLength(2);
  });

  it('accepts each recovery code once, in any case and without hyphens', async () => {
    const organization = await signupOrganization(server.api);
    const member = await addMember(server.api, organization, 'agent');
    const { recoveryCodes } = await enroll(member.tokens.accessToken);

    const first = await loginRequest(organization, member, recoveryCodes[0]);
    const reused = await loginRequest(organization, member, recoveryCodes[0]);
    const typed = await loginRequest(
      organization,
      member,
      recoveryCodes[1].toUpperCase().replace(/-/g, ''),
    );
    const invented = await loginRequest(organization, member, 'aaaa-bbbb-cccc-dddd');
    const malformed = await loginRequest(organization, member, 'not-a-code');

    expect(first.status).toBe(200);
    expectProblem(reused, 401, 'invalid_mfa_code');
    expect(typed.status).toBe(200);
    expectProblem(invented, 401, 'invalid_mfa_code');
    expectProblem(malformed, 400, 'validation_failed');
    const actions = await auditActions(organization);
    expect(actions.filter((action) => action === 'mfa.recovery_code_used')).toHaveLength(2);
  });

  it('removes the factor with a current code, and login then asks for none', async () => {
    const organization = await signupOrganization(server.api);
    const member = await addMember(server.api, organization, 'agent');
    const token = member.tokens.accessToken;
    const { secret } = await enroll(token);

    const withoutCode = await server.api.delete('/api/v1/me/mfa/totp', { token });
    const wrongCode = await server.api.delete('/api/v1/me/mfa/totp', {
      token,
      body: { code: await codeAt(secret, -2) },
    });
    const removed = await server.api.delete('/api/v1/me/mfa/totp', {
      token,
      body: { code: await codeAt(secret) },
    });
    const again = await server.api.delete('/api/v1/me/mfa/totp', {
      token,
      body: { code: await codeAt(secret) },
    });
    const loggedIn = await loginRequest(organization, member);

    expectProblem(withoutCode, 400, 'validation_failed');
    expectProblem(wrongCode, 422, 'invalid_mfa_code');
    expect(removed.status).toBe(204);
    expectProblem(again, 409, 'mfa_not_enrolled');
    expect(loggedIn.status).toBe(200);
    expect(await auditActions(organization)).toContain('mfa.removed');
  });

  it('limits a member the policy covers to enrollment until they enroll', async () => {
    const organization = await signupOrganization(server.api);
    const admin = organization.admin;
    const agent = await addMember(server.api, organization, 'agent');
    const policy = await server.api.patch(
      '/api/v1/organization',
      { security: { mfaRequiredRoles: ['admin', 'manager'] } },
      { token: admin.tokens.accessToken },
    );
    expect(policy.status).toBe(200);

    const pending = await login(server.api, organization.slug, admin.email, admin.password);
    const agentLogin = await loginRequest(organization, agent);
    const token = pending.accessToken;
    const me = await server.api.get('/api/v1/me', { token });
    const users = await server.api.get('/api/v1/users', { token });
    const organizationView = await server.api.get('/api/v1/organization', { token });
    const sessions = await server.api.get('/api/v1/auth/sessions', { token });
    const refreshed = await server.api.post('/api/v1/auth/refresh', {
      refreshToken: pending.refreshToken,
    });
    const afterRefresh = await server.api.get('/api/v1/users', {
      token: refreshed.body.accessToken,
    });
    const { secret } = await enroll(refreshed.body.accessToken);
    const unlocked = await server.api.get('/api/v1/users', { token: refreshed.body.accessToken });
    const withoutCode = await loginRequest(organization, admin);
    const withCode = await loginRequest(organization, admin, await codeAt(secret));
    const full = await server.api.get('/api/v1/users', { token: withCode.body.accessToken });

    expect(me.status).toBe(200);
    expectProblem(users, 403, 'mfa_enrollment_required');
    expectProblem(organizationView, 403, 'mfa_enrollment_required');
    expectProblem(sessions, 403, 'mfa_enrollment_required');
    expect(refreshed.status).toBe(200);
    expectProblem(afterRefresh, 403, 'mfa_enrollment_required');
    // An agent is outside the policy and signs in as before.
    expect(agentLogin.status).toBe(200);
    expect(unlocked.status).toBe(200);
    expectProblem(withoutCode, 401, 'mfa_required');
    expect(withCode.status).toBe(200);
    expect(full.status).toBe(200);
  });

  it('lets a session waiting for enrollment log out', async () => {
    const organization = await signupOrganization(server.api);
    const admin = organization.admin;
    await server.api.patch(
      '/api/v1/organization',
      { security: { mfaRequiredRoles: ['admin'] } },
      { token: admin.tokens.accessToken },
    );
    const pending = await login(server.api, organization.slug, admin.email, admin.password);

    const loggedOut = await server.api.post('/api/v1/auth/logout', undefined, {
      token: pending.accessToken,
    });
    const after = await server.api.get('/api/v1/me', { token: pending.accessToken });

    expect(loggedOut.status).toBe(204);
    expectProblem(after, 401, 'session_ended');
  });

  it('lets an admin reset a member’s MFA, which ends every session of theirs', async () => {
    const organization = await signupOrganization(server.api);
    const admin = organization.admin.tokens.accessToken;
    const member = await addMember(server.api, organization, 'agent');
    const { secret } = await enroll(member.tokens.accessToken);
    const second = await loginRequest(organization, member, await codeAt(secret));
    expect(second.status).toBe(200);

    const byMember = await server.api.delete(`/api/v1/users/${member.id}/mfa`, {
      token: second.body.accessToken,
    });
    const reset = await server.api.delete(`/api/v1/users/${member.id}/mfa`, { token: admin });
    const oldSession = await server.api.get('/api/v1/me', { token: member.tokens.accessToken });
    const newSession = await server.api.get('/api/v1/me', { token: second.body.accessToken });
    const refreshed = await server.api.post('/api/v1/auth/refresh', {
      refreshToken: second.body.refreshToken,
    });
    const loggedIn = await loginRequest(organization, member);

    expectProblem(byMember, 403, 'forbidden');
    expect(reset.status).toBe(204);
    expectProblem(oldSession, 401, 'session_ended');
    expectProblem(newSession, 401, 'session_ended');
    expect(refreshed.status).toBe(401);
    expect(loggedIn.status).toBe(200);
    expect(await auditActions(organization)).toContain('mfa.reset');
  });

  it('answers 404 for another organization’s member on the reset route, and changes nothing', async () => {
    const ours = await signupOrganization(server.api);
    const theirs = await signupOrganization(server.api);
    const victim = await addMember(server.api, theirs, 'agent');
    const { secret } = await enroll(victim.tokens.accessToken);

    const reset = await server.api.delete(`/api/v1/users/${victim.id}/mfa`, {
      token: ours.admin.tokens.accessToken,
    });
    const upperCase = await server.api.delete(`/api/v1/users/${victim.id.toUpperCase()}/mfa`, {
      token: ours.admin.tokens.accessToken,
    });
    const victimSession = await server.api.get('/api/v1/me', {
      token: victim.tokens.accessToken,
    });
    const stillRequired = await loginRequest(theirs, victim);
    const stillWorks = await loginRequest(theirs, victim, await codeAt(secret));

    expectProblem(reset, 404, 'not_found');
    expectProblem(upperCase, 404, 'not_found');
    expect(victimSession.status).toBe(200);
    expectProblem(stillRequired, 401, 'mfa_required');
    expect(stillWorks.status).toBe(200);
  });

  it('keeps factors and recovery codes to their organization, the codes only as hashes', async () => {
    const ours = await signupOrganization(server.api);
    const theirs = await signupOrganization(server.api);
    const { recoveryCodes } = await enroll(ours.admin.tokens.accessToken);
    await enroll(theirs.admin.tokens.accessToken);
    const transactions = server.app.get(TenantTransactions);

    const visible = await transactions.run(ours.id, async (manager) => ({
      factors: await manager.query('select organization_id, user_id from mfa_totp_factors'),
      codes: await manager.query('select organization_id, code_hash from mfa_recovery_codes'),
      hashed: await manager.query(
        `select count(*)::int as count from mfa_recovery_codes
          where code_hash = sha256(convert_to($1, 'UTF8'))`,
        [recoveryCodes[0].replace(/-/g, '')],
      ),
    }));
    const planted = transactions.run(ours.id, (manager) =>
      manager.query(
        `insert into mfa_recovery_codes (organization_id, user_id, code_hash)
         values ($1, $2, sha256('planted'))`,
        [theirs.id, theirs.admin.id],
      ),
    );

    expect(visible.factors).toEqual([{ organization_id: ours.id, user_id: ours.admin.id }]);
    expect(visible.codes).toHaveLength(10);
    expect(
      new Set(visible.codes.map((row: { organization_id: string }) => row.organization_id)),
    ).toEqual(new Set([ours.id]));
    expect(visible.hashed).toEqual([{ count: 1 }]);
    await expect(planted).rejects.toThrow(/row-level security/);
  });

  it('writes no TOTP secret, otpauth URI, recovery code or MFA code to the logs', () => {
    expect(secrets.length).toBeGreaterThan(20);
    expectNoSecretsInLogs(server, secrets);

    const text = server.logs.text();
    expect(codes.filter((code) => text.includes(`"${code}"`))).toEqual([]);
    expect(text).not.toMatch(/otpauth:/);
    expect(text).not.toMatch(/"mfaCode":"[^"[]/);
  });
});
