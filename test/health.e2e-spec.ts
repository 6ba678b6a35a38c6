import { TestServer, startServer } from './support';

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
