import { DataSource } from 'typeorm';

import { MissingTenantError, TenantTransactions } from '@parley/database';

import { Member, SignedUpOrganization, addMember, signupOrganization } from './factories';
import { TestServer, expectNoSecretsInLogs, expectProblem, startServer } from './support';

/** Flips the case of every letter, so the id names the same UUID in a different spelling. */
function swapCase(id: string): string {
  return id.replace(/[a-f]/g, (letter) => letter.toUpperCase());
}

describe('tenant isolation', () => {
  let server: TestServer;
  let ours: SignedUpOrganization;
  let theirs: SignedUpOrganization;
  let ourAgent: Member;
  let theirAgent: Member;
  let transactions: TenantTransactions;
  let dataSource: DataSource;

  beforeAll(async () => {
    server = await startServer();
    [ours, theirs] = await Promise.all([
      signupOrganization(server.api),
      signupOrganization(server.api),
    ]);
    [ourAgent, theirAgent] = await Promise.all([
      addMember(server.api, ours, 'agent'),
      addMember(server.api, theirs, 'agent'),
    ]);
    transactions = server.app.get(TenantTransactions);
    dataSource = server.app.get(DataSource);
  });

  afterAll(async () => {
    await server?.close();
  });

  async function membersOf(organization: SignedUpOrganization) {
    const response = await server.api.get('/api/v1/users', {
      token: organization.admin.tokens.accessToken,
    });

    return response.body.items as { id: string; role: string; email: string }[];
  }

  describe('over HTTP', () => {
    it("answers another organization's member ids with 404, never 403", async () => {
      for (const id of [theirs.admin.id, theirAgent.id]) {
        const response = await server.api.get(`/api/v1/users/${id}`, {
          token: ours.admin.tokens.accessToken,
        });
        expectProblem(response, 404, 'not_found');
      }
      const own = await server.api.get(`/api/v1/users/${ourAgent.id}`, {
        token: ours.admin.tokens.accessToken,
      });
      expect(own.status).toBe(200);
    });

    it("refuses to change another organization's member, and the member is unchanged", async () => {
      const before = await membersOf(theirs);

      const responses = await Promise.all(
        [theirs.admin.id, theirAgent.id].map((id) =>
          server.api.patch(
            `/api/v1/users/${id}`,
            { role: 'viewer' },
            {
              token: ours.admin.tokens.accessToken,
            },
          ),
        ),
      );

      for (const response of responses) {
        expectProblem(response, 404, 'not_found');
      }
      expect(await membersOf(theirs)).toEqual(before);
      const audit = await server.api.get('/api/v1/audit/events?action=user.role_changed', {
        token: theirs.admin.tokens.accessToken,
      });
      expect(audit.body.items).toEqual([]);
    });

    it('treats ids that differ only in case as the same id, and still hides other organizations', async () => {
      const theirUpper = await server.api.get(`/api/v1/users/${swapCase(theirAgent.id)}`, {
        token: ours.admin.tokens.accessToken,
      });
      const theirPatch = await server.api.patch(
        `/api/v1/users/${swapCase(theirAgent.id)}`,
        { role: 'admin' },
        { token: ours.admin.tokens.accessToken },
      );
      const ownUpper = await server.api.get(`/api/v1/users/${swapCase(ourAgent.id)}`, {
        token: ours.admin.tokens.accessToken,
      });

      expectProblem(theirUpper, 404, 'not_found');
      expectProblem(theirPatch, 404, 'not_found');
      expect(ownUpper.status).toBe(200);
      expect(ownUpper.body.id).toBe(ourAgent.id);
      expect((await membersOf(theirs)).find((user) => user.id === theirAgent.id)?.role).toBe(
        'agent',
      );
    });

    it("lists only the caller's own members and organization", async () => {
      const [ourMembers, organization] = await Promise.all([
        membersOf(ours),
        server.api.get('/api/v1/organization', { token: ours.admin.tokens.accessToken }),
      ]);

      expect(ourMembers.map((user) => user.id).sort()).toEqual([ours.admin.id, ourAgent.id].sort());
      expect(organization.body.id).toBe(ours.id);
    });

    it('keeps each organization to its own rows under concurrent requests', async () => {
      const callers = [ours, theirs, ours, theirs].flatMap((organization) =>
        Array.from({ length: 5 }, () => organization),
      );

      const results = await Promise.all(
        callers.map(async (organization) => ({
          organization,
          members: await membersOf(organization),
        })),
      );

      for (const { organization, members } of results) {
        const expected =
          organization === ours ? [ours.admin.id, ourAgent.id] : [theirs.admin.id, theirAgent.id];
        expect(members.map((user) => user.id).sort()).toEqual(expected.sort());
      }
    });
  });

  describe('in the database', () => {
    it("shows an unscoped raw query inside a tenant transaction only that tenant's rows", async () => {
      const rows = await transactions.run(ours.id, async (manager) => ({
        users: (await manager.query('select * from users')) as {
          id: string;
          organization_id: string;
        }[],
        organizations: (await manager.query('select id from organizations')) as { id: string }[],
        sessions: (await manager.query('select organization_id from auth_sessions')) as {
          organization_id: string;
        }[],
        refreshTokens: (await manager.query('select organization_id from refresh_tokens')) as {
          organization_id: string;
        }[],
        audit: (await manager.query('select organization_id from audit_events')) as {
          organization_id: string;
        }[],
      }));

      expect(rows.users.map((user) => user.id).sort()).toEqual([ours.admin.id, ourAgent.id].sort());
      expect(rows.organizations).toEqual([{ id: ours.id }]);
      for (const table of [rows.sessions, rows.refreshTokens, rows.audit]) {
        expect(table.length).toBeGreaterThan(0);
        expect(new Set(table.map((row) => row.organization_id))).toEqual(new Set([ours.id]));
      }
    });

    it('finds nothing of another tenant even when the query names it', async () => {
      const rows = await transactions.run(ours.id, (manager) =>
        manager.query('select id from users where organization_id = $1 or id = $2', [
          theirs.id,
          theirAgent.id,
        ]),
      );

      expect(rows).toEqual([]);
    });

    it('refuses to write a row into another tenant', async () => {
      const attempt = transactions.run(ours.id, (manager) =>
        manager.query(
          `insert into users (organization_id, email, name, role, password_hash)
           values ($1, 'planted@example.test', 'Planted', 'admin', 'x')`,
          [theirs.id],
        ),
      );

      await expect(attempt).rejects.toThrow(/row-level security/);
      expect((await membersOf(theirs)).map((user) => user.email)).not.toContain(
        'planted@example.test',
      );
    });

    it('cannot move its own row into another tenant', async () => {
      const attempt = transactions.run(ours.id, (manager) =>
        manager.query('update users set organization_id = $1 where id = $2', [
          theirs.id,
          ourAgent.id,
        ]),
      );

      await expect(attempt).rejects.toThrow(/row-level security/);
      expect((await membersOf(ours)).map((user) => user.id)).toContain(ourAgent.id);
    });

    it('sees zero rows from a raw runtime query with no tenant set, on every pooled connection', async () => {
      await Promise.all(
        [ours, theirs, ours, theirs].map((organization) =>
          transactions.run(organization.id, (manager) => manager.query('select 1 from users')),
        ),
      );

      const counts = await Promise.all(
        Array.from({ length: 8 }, () =>
          dataSource.query(
            `select (select count(*) from users)::int as users,
                    (select count(*) from organizations)::int as organizations,
                    (select count(*) from auth_sessions)::int as sessions,
                    (select count(*) from audit_events)::int as audit`,
          ),
        ),
      );

      for (const [row] of counts) {
        expect(row).toEqual({ users: 0, organizations: 0, sessions: 0, audit: 0 });
      }
    });

    it('refuses to open a tenant transaction with no organization or a malformed one', async () => {
      await expect(transactions.run(undefined as unknown as string, async () => 1)).rejects.toThrow(
        MissingTenantError,
      );
      await expect(
        transactions.run(`${ours.id}' or true --`, (manager) => manager.query('select 1')),
      ).rejects.toThrow(MissingTenantError);
    });

    it('runs as parley_app, which is neither superuser, BYPASSRLS nor table owner', async () => {
      const [row] = await transactions.run(ours.id, (manager) =>
        manager.query(
          `select current_user as "user", r.rolsuper as super, r.rolbypassrls as bypass,
                  (select tableowner from pg_tables where schemaname = 'public' and tablename = 'users') as owner
             from pg_roles r where r.rolname = current_user`,
        ),
      );

      expect(row.user).toBe('parley_app');
      expect(row.super).toBe(false);
      expect(row.bypass).toBe(false);
      expect(row.owner).not.toBe('parley_app');
    });

    it('refuses UPDATE, DELETE and TRUNCATE on audit_events, and the trail is unchanged', async () => {
      const read = () =>
        transactions.run(ours.id, (manager) =>
          manager.query('select id, action, actor_id from audit_events order by id'),
        );
      const before = await read();
      expect(before.length).toBeGreaterThan(0);

      const attempts = [
        `update audit_events set action = 'auth.nothing_happened'`,
        'delete from audit_events',
        'truncate audit_events',
      ];
      for (const sql of attempts) {
        await expect(transactions.run(ours.id, (manager) => manager.query(sql))).rejects.toThrow(
          /permission denied|append-only/,
        );
      }

      expect(await read()).toEqual(before);
    });
  });

  describe('afterwards', () => {
    it('leaves no password or token in the logs', () => {
      expectNoSecretsInLogs(server);
    });
  });
});
