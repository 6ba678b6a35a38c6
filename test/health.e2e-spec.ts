import { Client } from 'pg';

import { TestServer, startServer, testDatabaseUrl } from './support';

describe('health', () => {
  let server: TestServer;

  beforeAll(async () => {
    server = await startServer();
  });

  afterAll(async () => {
    await server?.close();
  });

  it('reports the process live without credentials, outside the API prefix', async () => {
    const response = await server.api.get('/health/live');

    expect(response.status).toBe(200);
    expect(response.body).toEqual({ status: 'ok' });
  });

  it('reports ready with the database up and every migration applied', async () => {
    const response = await server.api.get('/health/ready');

    expect(response.status).toBe(200);
    expect(response.body).toEqual({
      status: 'ok',
      checks: { database: 'up', migrations: 'applied' },
    });
  });

  it('does not serve health under the API prefix', async () => {
    const response = await server.api.get('/api/v1/health/live');

    expect(response.status).toBe(404);
  });
});

describe('health on a database migrated by a newer version', () => {
  const database = `parley_test_newer_${process.pid}`;
  const admin = new URL(testDatabaseUrl());
  admin.pathname = '/postgres';
  const url = new URL(testDatabaseUrl());
  url.pathname = `/${database}`;
  let server: TestServer | undefined;

  afterAll(async () => {
    await server?.close();
    const client = new Client({ connectionString: admin.toString() });
    await client.connect();
    await client.query(`drop database if exists ${database} with (force)`);
    await client.end();
  });

  it('reports not ready when the database holds a migration this build does not know', async () => {
    const client = new Client({ connectionString: admin.toString() });
    await client.connect();
    await client.query(`create database ${database}`);
    await client.end();
    server = await startServer({ env: { DATABASE_URL: url.toString() } });
    expect((await server.api.get('/health/ready')).status).toBe(200);

    const owner = new Client({ connectionString: url.toString() });
    await owner.connect();
    await owner.query(
      `insert into schema_migrations (timestamp, name) values (9999999999999, 'FromTheFuture9999999999999')`,
    );
    await owner.end();
    const response = await server.api.get('/health/ready');

    expect(response.status).toBe(503);
    expect(response.body).toEqual({
      status: 'unavailable',
      checks: { database: 'up', migrations: '1 unknown' },
    });
  });
});
