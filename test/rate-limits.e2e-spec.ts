import { SignedUpOrganization, signupOrganization } from './factories';
import { TestServer, expectProblem, startServer } from './support';

const REDIS_URL = process.env.TEST_REDIS_URL ?? 'redis://127.0.0.1:6379';

/** The HTTP limits per client address, with counters in memory and, with REDIS_URL, in Redis. */
describe.each([
  ['in process memory', {}],
  ['in Redis', { REDIS_URL }],
])('HTTP rate limits with counters %s', (_where, env: Record<string, string>) => {
  let server: TestServer;
  let organization: SignedUpOrganization;
  // Each run counts from addresses of its own, so counters another run left in Redis never match;
  // each host gets its own /64, the block an IPv6 client is counted by.
  const run = Math.floor(Math.random() * 0xffff).toString(16);
  const address = (host: number) => `2001:db8:${run}:${host}::1`;

  const me = (from: string) =>
    server.api.get('/api/v1/me', {
      token: organization.admin.tokens.accessToken,
      headers: { 'x-forwarded-for': from },
    });

  beforeAll(async () => {
    server = await startServer({
      env: {
        TRUST_PROXY: 'true',
        RATE_LIMIT_PER_MINUTE: '5',
        CREDENTIAL_RATE_LIMIT_PER_MINUTE: '3',
        ...env,
      },
    });
    // Signup is a credential route too: it comes from an address of its own.
    organization = await signupOrganization(
      server.api,
      {},
      {
        headers: { 'x-forwarded-for': address(250) },
      },
    );
  });

  afterAll(async () => {
    await server?.close();
  });

  it('answers the request past the limit with 429 rate_limited and a Retry-After, and only for that address', async () => {
    const from = address(1);
    for (let request = 0; request < 5; request += 1) {
      expect((await me(from)).status).toBe(200);
    }

    const refused = await me(from);
    expectProblem(refused, 429, 'rate_limited');
    const retryAfter = Number(refused.headers.get('retry-after'));
    expect(retryAfter).toBeGreaterThan(0);
    expect(retryAfter).toBeLessThanOrEqual(60);
    expect((await me(address(2))).status).toBe(200);
  });

  it('limits credential routes on their own, lower limit', async () => {
    const from = address(3);
    const login = () =>
      server.api.post(
        '/api/v1/auth/login',
        {
          organizationSlug: organization.slug,
          email: 'nobody@example.test',
          password: 'x'.repeat(16),
        },
        { headers: { 'x-forwarded-for': from } },
      );
    for (let attempt = 0; attempt < 3; attempt += 1) {
      expect((await login()).status).toBe(401);
    }

    expectProblem(await login(), 429, 'rate_limited');
    // The general limit of the address is not used up by its credential requests.
    expect((await me(from)).status).toBe(200);
  });
});
