import { Role } from '@parley/core';

import {
  Member,
  MembersByRole,
  SignedUpOrganization,
  addMember,
  addMemberOfEachRole,
  signupOrganization,
  uniqueEmail,
  uniquePassword,
} from './factories';
import { TestServer, expectNoSecretsInLogs, expectProblem, startServer } from './support';

interface Route {
  name: string;
  method: 'GET' | 'POST' | 'PATCH';
  path: () => string;
  body?: (role: Role) => unknown;
  /** Only admins may call it; everyone else gets 403 forbidden. */
  adminOnly: boolean;
  /** The success status for a caller who may. */
  allowed: number;
}

describe('what each role may do', () => {
  let server: TestServer;
  let organization: SignedUpOrganization;
  let members: MembersByRole;
  let target: Member;

  const routes: Route[] = [
    {
      name: 'GET /organization',
      method: 'GET',
      path: () => '/api/v1/organization',
      adminOnly: false,
      allowed: 200,
    },
    {
      name: 'PATCH /organization',
      method: 'PATCH',
      path: () => '/api/v1/organization',
      body: (role) => ({
        name: `Renamed by ${role}`,
        widget: { allowedOrigins: ['https://evil.example'] },
      }),
      adminOnly: true,
      allowed: 200,
    },
    {
      name: 'POST /users',
      method: 'POST',
      path: () => '/api/v1/users',
      body: (role) => ({
        email: uniqueEmail(`by-${role}`),
        name: 'Added',
        role: 'admin',
        password: uniquePassword(),
      }),
      adminOnly: true,
      allowed: 201,
    },
    {
      name: 'GET /users',
      method: 'GET',
      path: () => '/api/v1/users',
      adminOnly: false,
      allowed: 200,
    },
    {
      name: 'GET /users/:id',
      method: 'GET',
      path: () => `/api/v1/users/${target.id}`,
      adminOnly: false,
      allowed: 200,
    },
    {
      name: 'PATCH /users/:id',
      method: 'PATCH',
      path: () => `/api/v1/users/${target.id}`,
      body: (role) => ({ role: role === 'admin' ? 'manager' : 'admin' }),
      adminOnly: true,
      allowed: 200,
    },
    { name: 'GET /me', method: 'GET', path: () => '/api/v1/me', adminOnly: false, allowed: 200 },
    {
      name: 'GET /audit/events',
      method: 'GET',
      path: () => '/api/v1/audit/events',
      adminOnly: true,
      allowed: 200,
    },
  ];

  beforeAll(async () => {
    server = await startServer();
    organization = await signupOrganization(server.api);
    members = await addMemberOfEachRole(server.api, organization);
    target = await addMember(server.api, organization, 'agent', { login: false, name: 'Target' });
  });

  afterAll(async () => {
    await server?.close();
  });

  function call(route: Route, member: Member) {
    return server.api.request(route.method, route.path(), {
      token: member.tokens.accessToken,
      body: route.body?.(member.role),
    });
  }

  async function snapshot() {
    const token = members.admin.tokens.accessToken;
    const [org, users, audit] = await Promise.all([
      server.api.get('/api/v1/organization', { token }),
      server.api.get('/api/v1/users', { token }),
      server.api.get('/api/v1/audit/events?limit=500', { token }),
    ]);

    return {
      organization: org.body,
      users: users.body.items.map(
        (user: { id: string; role: string }) => `${user.id}:${user.role}`,
      ),
      writes: audit.body.items.filter(
        (event: { action: string }) => !event.action.startsWith('auth.'),
      ).length,
    };
  }

  describe.each(['manager', 'agent', 'viewer'] as const)('as %s', (role) => {
    let before: Awaited<ReturnType<typeof snapshot>>;

    beforeAll(async () => {
      before = await snapshot();
    });

    it.each(routes.map((route) => [route.name, route] as const))('%s', async (_name, route) => {
      const response = await call(route, members[role]);

      if (route.adminOnly) {
        expectProblem(response, 403, 'forbidden');
      } else {
        expect(response.status).toBe(route.allowed);
      }
    });

    it('changed nothing with the refused writes', async () => {
      expect(await snapshot()).toEqual(before);
    });

    it('cannot promote itself to admin', async () => {
      const response = await server.api.patch(
        `/api/v1/users/${members[role].id}`,
        { role: 'admin' },
        { token: members[role].tokens.accessToken },
      );

      expectProblem(response, 403, 'forbidden');
      const me = await server.api.get('/api/v1/me', { token: members[role].tokens.accessToken });
      expect(me.body.role).toBe(role);
    });
  });

  describe('as admin', () => {
    it.each(routes.map((route) => [route.name, route] as const))('%s', async (_name, route) => {
      const response = await call(route, members.admin);

      expect({ status: response.status, body: response.body }).toEqual({
        status: route.allowed,
        body: expect.anything(),
      });
    });

    it('really made the writes it was allowed', async () => {
      const after = await snapshot();

      expect(after.organization.name).toBe('Renamed by admin');
      expect(after.organization.widget.allowedOrigins).toEqual(['https://evil.example']);
      expect(after.users).toContain(`${target.id}:manager`);
      expect(after.users).toHaveLength(6);
    });
  });

  describe('after a role change', () => {
    it('never lets the member act with the old role', async () => {
      const changed = await server.api.patch(
        `/api/v1/users/${members.manager.id}`,
        { role: 'viewer' },
        { token: members.admin.tokens.accessToken },
      );
      expect(changed.status).toBe(200);

      const me = await server.api.get('/api/v1/me', { token: members.manager.tokens.accessToken });

      // The design ends sessions on a role change; until it does, the new role must apply at once.
      if (me.status === 200) {
        expect(me.body.role).toBe('viewer');
      } else {
        expectProblem(me, 401, 'session_ended');
      }
    });
  });

  describe('afterwards', () => {
    it('leaves no password or token in the logs', () => {
      expectNoSecretsInLogs(server);
    });
  });
});
