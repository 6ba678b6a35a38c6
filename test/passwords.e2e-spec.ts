import { hash } from '@node-rs/argon2';
import { Client } from 'pg';

import { ARGON2_PARAMETERS } from '@parley/crypto';

import {
  SignedUpOrganization,
  addMember,
  login,
  signupInput,
  signupOrganization,
  uniqueEmail,
  uniquePassword,
} from './factories';
import {
  TestServer,
  expectNoSecretsInLogs,
  expectProblem,
  startServer,
  testDatabaseUrl,
} from './support';

interface AuditEvent {
  actorType: string;
  actorId: string | null;
  action: string;
  targetId: string | null;
  metadata: Record<string, unknown>;
}

/** On the list of common passwords, and long enough for the default minimum of 15. */
const COMMON_LONG_PASSWORDS = ['PasswordPassword', '1qaz2wsx3edc4rfv', 'qwertyuiop12345'];

describe('passwords', () => {
  let server: TestServer;

  beforeAll(async () => {
    server = await startServer({ env: { CREDENTIAL_RATE_LIMIT_PER_MINUTE: '100000' } });
  });

  afterAll(async () => {
    await server?.close();
  });

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

  async function changePassword(token: string, currentPassword: string, newPassword: string) {
    return server.api.post('/api/v1/me/password', { currentPassword, newPassword }, { token });
  }

  describe('policy', () => {
    it('refuses a common password at signup, whatever its case, and creates nothing', async () => {
      for (const password of COMMON_LONG_PASSWORDS) {
        const input = signupInput({ password });

        const response = await server.api.post('/api/v1/auth/signup', input);

        expectProblem(response, 400, 'password_too_common');
        expect(response.body.errors).toEqual([
          { field: 'password', message: expect.stringContaining('common') },
        ]);
        const retry = await server.api.post('/api/v1/auth/signup', {
          ...input,
          password: uniquePassword(),
        });
        expect(retry.status).toBe(201);
      }
    });

    it('refuses a common password for a new member', async () => {
      const organization = await signupOrganization(server.api);

      const response = await server.api.post(
        '/api/v1/users',
        { email: uniqueEmail(), name: 'Common', role: 'agent', password: '1QAZ2WSX3EDC4RFV' },
        { token: organization.admin.tokens.accessToken },
      );

      expectProblem(response, 400, 'password_too_common');
      const members = await server.api.get('/api/v1/users', {
        token: organization.admin.tokens.accessToken,
      });
      expect(members.body.items).toHaveLength(1);
    });

    it('refuses a password that contains the email name or the organization slug', async () => {
      const input = signupInput({ email: 'marguerite.yourcenar@example.test' });

      const byEmail = await server.api.post('/api/v1/auth/signup', {
        ...input,
        password: 'Marguerite.Yourcenar-2031!',
      });
      const bySlug = await server.api.post('/api/v1/auth/signup', {
        ...input,
        password: `${input.organizationSlug.toUpperCase()}-is-my-home`,
      });

      expectProblem(byEmail, 400, 'password_guessable');
      expectProblem(bySlug, 400, 'password_guessable');
    });

    it('refuses repeated and sequential patterns that are long enough', async () => {
      for (const password of ['aaaaaaaaaaaaaaaaaaaa', '12345678901234567890']) {
        const response = await server.api.post('/api/v1/auth/signup', signupInput({ password }));

        expect({ password, status: response.status, code: response.body.code }).toEqual({
          password,
          status: 400,
          code: expect.stringMatching(/^password_(guessable|too_common)$/),
        });
      }
    });

    it('refuses 14 characters by default, and accepts 8 once every role must use MFA', async () => {
      const organization = await signupOrganization(server.api);
      const token = organization.admin.tokens.accessToken;
      const member = (password: string) => ({
        email: uniqueEmail(),
        name: 'Short',
        role: 'agent',
        password,
      });

      const fourteen = await server.api.post('/api/v1/users', member('pale-kite-41xq'), { token });
      const policy = await server.api.patch(
        '/api/v1/organization',
        {
          security: {
            mfaRequiredRoles: ['admin', 'manager', 'agent', 'viewer'],
            passwordMinLength: 8,
          },
        },
        { token },
      );
      const eight = await server.api.post('/api/v1/users', member('k4#Vq9!z'), { token });
      const seven = await server.api.post('/api/v1/users', member('k4#Vq9!'), { token });

      expectProblem(fourteen, 400, 'validation_failed');
      expect(fourteen.body.errors).toEqual([
        { field: 'password', message: 'password must be at least 15 characters' },
      ]);
      expect(policy.status).toBe(200);
      expect(eight.status).toBe(201);
      expectProblem(seven, 400, 'validation_failed');
    });

    it('refuses 257 characters rather than cutting them, and takes 256', async () => {
      const base = `${uniquePassword()}-tangerine-lamp-above-quiet-rivers-`;
      const exact = base.repeat(10).slice(0, 256);

      const tooLong = await server.api.post(
        '/api/v1/auth/signup',
        signupInput({ password: `${exact}x` }),
      );
      const input = signupInput({ password: exact });
      const accepted = await server.api.post('/api/v1/auth/signup', input);
      const cut = await server.api.post('/api/v1/auth/login', {
        organizationSlug: input.organizationSlug,
        email: input.email,
        password: exact.slice(0, 255),
      });

      expectProblem(tooLong, 400, 'validation_failed');
      expect(tooLong.body.errors[0].message).toContain('256');
      expect(accepted.status).toBe(201);
      expectProblem(cut, 401, 'invalid_credentials');
      await login(server.api, input.organizationSlug, input.email, exact);
    });
  });

  describe('POST /api/v1/me/password', () => {
    it('changes the password, keeps the current session and ends every other one', async () => {
      const organization = await signupOrganization(server.api);
      const { admin } = organization;
      const second = await login(server.api, organization.slug, admin.email, admin.password);
      const third = await login(server.api, organization.slug, admin.email, admin.password);
      const newPassword = uniquePassword();

      const response = await changePassword(admin.tokens.accessToken, admin.password, newPassword);

      expect(response.status).toBe(204);
      const current = await server.api.get('/api/v1/me', { token: admin.tokens.accessToken });
      expect(current.status).toBe(200);
      expectProblem(
        await server.api.get('/api/v1/me', { token: second.accessToken }),
        401,
        'session_ended',
      );
      const refresh = await server.api.post('/api/v1/auth/refresh', {
        refreshToken: third.refreshToken,
      });
      expect(refresh.status).toBe(401);
      expectProblem(
        await server.api.post('/api/v1/auth/login', {
          organizationSlug: organization.slug,
          email: admin.email,
          password: admin.password,
        }),
        401,
        'invalid_credentials',
      );
      await login(server.api, organization.slug, admin.email, newPassword);

      const [changed] = await auditEvents(organization, 'auth.password_changed');
      expect(changed).toMatchObject({
        actorType: 'user',
        actorId: admin.id,
        targetId: admin.id,
        metadata: { sessionsEnded: 2 },
      });
    });

    it('refuses a wrong current password with 403, changes nothing, and audits it', async () => {
      const organization = await signupOrganization(server.api);
      const { admin } = organization;
      const other = await login(server.api, organization.slug, admin.email, admin.password);

      const response = await changePassword(
        admin.tokens.accessToken,
        `${admin.password}-not`,
        uniquePassword(),
      );

      expectProblem(response, 403, 'invalid_current_password');
      expect((await server.api.get('/api/v1/me', { token: other.accessToken })).status).toBe(200);
      await login(server.api, organization.slug, admin.email, admin.password);
      const [failed] = await auditEvents(organization, 'auth.password_change_failed');
      expect(failed).toMatchObject({
        actorId: admin.id,
        targetId: admin.id,
        metadata: { reason: 'wrong_password' },
      });
    });

    it('counts wrong current passwords like failed sign-ins', async () => {
      const organization = await signupOrganization(server.api);
      const { admin } = organization;
      const statuses = [];
      for (let attempt = 0; attempt < 5; attempt += 1) {
        const response = await changePassword(
          admin.tokens.accessToken,
          `guess-${attempt}-${admin.password}`,
          uniquePassword(),
        );
        statuses.push(response.status);
      }

      const locked = await changePassword(
        admin.tokens.accessToken,
        admin.password,
        uniquePassword(),
      );
      const signIn = await server.api.post('/api/v1/auth/login', {
        organizationSlug: organization.slug,
        email: admin.email,
        password: admin.password,
      });

      expect(statuses).toEqual([403, 403, 403, 403, 403]);
      expectProblem(locked, 429, 'account_locked');
      expectProblem(signIn, 429, 'account_locked');
    });

    it('applies the policy to the new password', async () => {
      const organization = await signupOrganization(server.api);
      const { admin } = organization;

      const common = await changePassword(
        admin.tokens.accessToken,
        admin.password,
        'PasswordPassword',
      );
      const short = await changePassword(
        admin.tokens.accessToken,
        admin.password,
        'pale-kite-41xq',
      );

      expectProblem(common, 400, 'password_too_common');
      expect(common.body.errors).toEqual([
        { field: 'newPassword', message: expect.stringContaining('common') },
      ]);
      expectProblem(short, 400, 'validation_failed');
      expect(short.body.errors).toEqual([
        { field: 'newPassword', message: 'newPassword must be at least 15 characters' },
      ]);
      await login(server.api, organization.slug, admin.email, admin.password);
    });

    it('is refused without a token', async () => {
      const response = await server.api.post('/api/v1/me/password', {
        currentPassword: uniquePassword(),
        newPassword: uniquePassword(),
      });

      expectProblem(response, 401);
    });
  });

  describe('rehash on sign-in', () => {
    let database: Client;

    beforeAll(async () => {
      database = new Client({ connectionString: testDatabaseUrl() });
      await database.connect();
    });

    afterAll(async () => {
      await database?.end();
    });

    it('hashes again with the current parameters when a stored hash is weaker', async () => {
      const organization = await signupOrganization(server.api);
      const agent = await addMember(server.api, organization, 'agent', { login: false });
      const weaker = await hash(agent.password, {
        ...ARGON2_PARAMETERS,
        memoryCost: 4096,
        timeCost: 1,
      });
      // The test superuser writes past row-level security, as an old deployment's data would be.
      await database.query('update users set password_hash = $1 where id = $2', [weaker, agent.id]);

      await login(server.api, organization.slug, agent.email, agent.password);

      const { rows } = await database.query('select password_hash from users where id = $1', [
        agent.id,
      ]);
      expect(rows[0].password_hash).toMatch(/^\$argon2id\$v=19\$m=19456,t=2,p=1\$/);
      expect(rows[0].password_hash).not.toBe(weaker);
      await login(server.api, organization.slug, agent.email, agent.password);
      const rehashed = await auditEvents(organization, 'auth.password_rehashed');
      expect(rehashed).toEqual([
        expect.objectContaining({
          actorType: 'user',
          actorId: agent.id,
          targetId: agent.id,
          metadata: { from: 'argon2id v=19 m=4096,t=1,p=1', to: 'argon2id v=19 m=19456,t=2,p=1' },
        }),
      ]);
    });

    it('leaves a current hash alone', async () => {
      const organization = await signupOrganization(server.api);
      const { rows: before } = await database.query(
        'select password_hash from users where id = $1',
        [organization.admin.id],
      );

      await login(
        server.api,
        organization.slug,
        organization.admin.email,
        organization.admin.password,
      );

      const { rows: after } = await database.query(
        'select password_hash from users where id = $1',
        [organization.admin.id],
      );
      expect(after[0].password_hash).toBe(before[0].password_hash);
      expect(await auditEvents(organization, 'auth.password_rehashed')).toEqual([]);
    });
  });

  it('leaves no password in the logs', () => {
    expectNoSecretsInLogs(server, COMMON_LONG_PASSWORDS);
  });
});
