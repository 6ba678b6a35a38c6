import { TestServer, startServer } from './support';

interface Operation {
  responses?: Record<string, { content?: Record<string, unknown> }>;
  security?: unknown[];
}

describe('OpenAPI document', () => {
  let server: TestServer;
  let document: {
    openapi: string;
    paths: Record<string, Record<string, Operation>>;
    components: { schemas: Record<string, unknown> };
  };

  beforeAll(async () => {
    server = await startServer({ env: { LOG_LEVEL: 'warn' } });
    const response = await server.api.get('/api/docs-json');
    expect(response.status).toBe(200);
    document = response.body;
  });

  afterAll(async () => {
    await server?.close();
  });

  it('is an OpenAPI 3 document served without credentials', () => {
    expect(document.openapi).toMatch(/^3\./);
  });

  it('lists the contract paths with their methods', () => {
    const expected: Record<string, string[]> = {
      '/api/v1/auth/signup': ['post'],
      '/api/v1/auth/login': ['post'],
      '/api/v1/auth/refresh': ['post'],
      '/api/v1/auth/logout': ['post'],
      '/api/v1/me': ['get'],
      '/api/v1/organization': ['get', 'patch'],
      '/api/v1/users': ['get', 'post'],
      '/api/v1/users/{id}': ['get', 'patch'],
      '/api/v1/audit/events': ['get'],
      '/health/live': ['get'],
      '/health/ready': ['get'],
    };

    for (const [path, methods] of Object.entries(expected)) {
      expect({ path, methods: Object.keys(document.paths[path] ?? {}).sort() }).toEqual({
        path,
        methods: expect.arrayContaining(methods),
      });
    }
  });

  it('describes the signup body and response with the contract fields', () => {
    const schemas = document.components.schemas as Record<
      string,
      { properties?: Record<string, unknown>; required?: string[] }
    >;

    expect(Object.keys(schemas.SignupDto.properties ?? {}).sort()).toEqual([
      'email',
      'name',
      'organizationName',
      'organizationSlug',
      'password',
    ]);
    expect(Object.keys(schemas.SignupView.properties ?? {})).toEqual(
      expect.arrayContaining(['organization', 'user', 'accessToken', 'refreshToken', 'expiresIn']),
    );
  });

  it('declares problem+json for the errors of every operation', () => {
    for (const [path, item] of Object.entries(document.paths)) {
      for (const [method, operation] of Object.entries(item)) {
        const problem = operation.responses?.['4XX']?.content?.['application/problem+json'];
        expect({ operation: `${method} ${path}`, problem: problem !== undefined }).toEqual({
          operation: `${method} ${path}`,
          problem: true,
        });
      }
    }
    expect(document.components.schemas).toHaveProperty('ProblemView');
  });

  it('does not document the metrics endpoint', () => {
    expect(document.paths).not.toHaveProperty('/metrics');
  });
});

describe('OpenAPI document when OPENAPI_ENABLED=false', () => {
  let server: TestServer;

  beforeAll(async () => {
    server = await startServer({ env: { LOG_LEVEL: 'warn', OPENAPI_ENABLED: 'false' } });
  });

  afterAll(async () => {
    await server?.close();
  });

  it('is not served, and the API still is', async () => {
    const [docs, ui, health] = await Promise.all([
      server.api.get('/api/docs-json'),
      server.api.get('/api/docs'),
      server.api.get('/health/live'),
    ]);

    expect(docs.status).toBe(404);
    expect(ui.status).toBe(404);
    expect(health.status).toBe(200);
  });
});
