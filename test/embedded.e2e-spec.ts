import { existsSync, rmSync } from 'node:fs';
import { join } from 'node:path';

import { DataSource } from 'typeorm';

import { TenantTransactions } from '@parley/database';

import { DemoCredentials, DemoSeed } from '../apps/api/src/demo-seed';

import { login, signupOrganization } from './factories';
import {
  LogCapture,
  TestServer,
  expectNoSecretsInLogs,
  startServer,
  temporaryDataDir,
} from './support';

/**
 * The embedded default: no DATABASE_URL, PGlite in PARLEY_DATA_DIR, the same migrations and the
 * same row-level security, and everything still there after a restart on the same folder.
 */
describe('embedded default (PGlite, no DATABASE_URL)', () => {
  const dataDir = temporaryDataDir();
  const env = { DEMO_SEED: 'true', DATABASE_URL: undefined };
  let server: TestServer | undefined;
  let credentials: DemoCredentials;
  let organizationId: string;
  let memberIds: string[];
  const secrets = new Set<string>();
  const logLines: string[] = [];

  afterAll(async () => {
    await server?.close();
    rmSync(dataDir, { recursive: true, force: true });
  });

  /** Boots (or reboots) on the one data folder, keeping the logs and secrets of earlier runs. */
  async function boot(): Promise<TestServer> {
    if (server) {
      await server.close();
      logLines.push(...server.logs.lines);
      server.secrets.forEach((secret) => secrets.add(secret));
    }
    server = await startServer({ embedded: true, dataDir, env });

    return server;
  }

  it('boots on PGlite and seeds the demo organization', async () => {
    const running = await boot();

    expect(running.config.databaseUrl).toBeUndefined();
    const seeded = await running.app.get(DemoSeed).seedIfEmpty(running.baseUrl, false);

    expect(seeded).toBeDefined();
    credentials = seeded as DemoCredentials;
    running.api.remember(credentials.password);
    expect(credentials.organizationSlug).toBe('demo');
    expect(credentials.users.map((user) => user.role).sort()).toEqual([
      'admin',
      'agent',
      'manager',
      'viewer',
    ]);
    const ready = await running.api.get('/health/ready');
    expect(ready.status).toBe(200);
    expect(ready.body.checks).toEqual({ database: 'up', migrations: 'applied' });
  });

  it('logs in as the demo admin and sees the demo members', async () => {
    const running = server as TestServer;

    const tokens = await login(running.api, 'demo', 'admin@demo.parley.test', credentials.password);

    const [me, users] = await Promise.all([
      running.api.get('/api/v1/me', { token: tokens.accessToken }),
      running.api.get('/api/v1/users', { token: tokens.accessToken }),
    ]);
    expect(me.body).toMatchObject({
      email: 'admin@demo.parley.test',
      role: 'admin',
      organization: { slug: 'demo' },
    });
    organizationId = me.body.organization.id;
    memberIds = users.body.items.map((user: { id: string }) => user.id).sort();
    expect(memberIds).toHaveLength(4);
  });

  it('keeps row-level security and the runtime role on PGlite', async () => {
    const running = server as TestServer;
    const transactions = running.app.get(TenantTransactions);

    const [role] = await transactions.run(organizationId, (manager) =>
      manager.query('select current_user as "user"'),
    );
    const visible = await transactions.run(organizationId, (manager) =>
      manager.query('select organization_id from users'),
    );
    const [untenanted] = await running.app
      .get(DataSource)
      .query(
        'select (select count(*) from users)::int as users, (select count(*) from organizations)::int as organizations',
      );

    expect(role.user).toBe('parley_app');
    expect(new Set(visible.map((row: { organization_id: string }) => row.organization_id))).toEqual(
      new Set([organizationId]),
    );
    expect(untenanted).toEqual({ users: 0, organizations: 0 });
  });

  it('keeps concurrent requests of two organizations apart on the one PGlite session', async () => {
    const running = server as TestServer;
    const demo = await login(running.api, 'demo', 'admin@demo.parley.test', credentials.password);
    const other = await signupOrganization(running.api);

    const results = await Promise.all(
      Array.from({ length: 16 }, (_, index) => {
        const token = index % 2 === 0 ? demo.accessToken : other.admin.tokens.accessToken;

        return running.api
          .get('/api/v1/users', { token })
          .then((response) => ({ index, response }));
      }),
    );

    for (const { index, response } of results) {
      expect(response.status).toBe(200);
      const ids = response.body.items.map((user: { id: string }) => user.id).sort();
      expect(ids).toEqual(index % 2 === 0 ? memberIds : [other.admin.id]);
    }
  });

  it('rotates refresh tokens and ends the session on reuse, as on PostgreSQL', async () => {
    const running = server as TestServer;
    const pair = await login(running.api, 'demo', 'agent@demo.parley.test', credentials.password);

    const rotated = await running.api.post('/api/v1/auth/refresh', {
      refreshToken: pair.refreshToken,
    });
    const replay = await running.api.post('/api/v1/auth/refresh', {
      refreshToken: pair.refreshToken,
    });
    const me = await running.api.get('/api/v1/me', { token: rotated.body.accessToken });

    expect(rotated.status).toBe(200);
    expect(replay.status).toBe(401);
    expect(replay.body.code).toBe('refresh_token_reused');
    expect(me.status).toBe(401);
    expect(me.body.code).toBe('session_ended');
  });

  it('shuts PGlite down cleanly and releases the data folder on close', async () => {
    const running = server as TestServer;
    expect(existsSync(join(dataDir, 'parley.pid'))).toBe(true);

    await running.close();

    expect(existsSync(join(dataDir, 'parley.pid'))).toBe(false);
    expect(existsSync(join(dataDir, 'pglite'))).toBe(true);
  });

  it('still has the organization and its members after a restart on the same folder', async () => {
    const running = await boot();

    const again = await running.app.get(DemoSeed).seedIfEmpty(running.baseUrl, false);
    const tokens = await login(running.api, 'demo', 'admin@demo.parley.test', credentials.password);
    const [me, users] = await Promise.all([
      running.api.get('/api/v1/me', { token: tokens.accessToken }),
      running.api.get('/api/v1/users', { token: tokens.accessToken }),
    ]);

    expect(again).toBeUndefined();
    expect(me.body.organization.id).toBe(organizationId);
    expect(users.body.items.map((user: { id: string }) => user.id).sort()).toEqual(memberIds);
    expect(running.logs.text()).toContain('demo organization exists');
    expect(running.logs.text()).not.toContain('migrations applied');
  });

  it('leaves no password or token in the logs of either run', () => {
    const running = server as TestServer;
    const logs = new LogCapture();
    logs.lines.push(...logLines, ...running.logs.lines);

    expectNoSecretsInLogs({ logs, secrets: new Set([...secrets, ...running.secrets]) }, [
      credentials.password,
    ]);
  });
});
