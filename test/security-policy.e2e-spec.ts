import { signupOrganization } from './factories';
import { TestServer, expectProblem, startServer } from './support';

describe('organization security policy', () => {
  let server: TestServer;

  beforeAll(async () => {
    server = await startServer();
  });

  afterAll(async () => {
    await server?.close();
  });

  it('starts every organization with the default policy', async () => {
    const organization = await signupOrganization(server.api);

    const response = await server.api.get('/api/v1/organization', {
      token: organization.admin.tokens.accessToken,
    });

    expect(response.status).toBe(200);
    expect(response.body.security).toEqual({
      mfaRequiredRoles: [],
      passwordMinLength: 15,
      sessionIdleMinutes: 30,
      sessionAbsoluteHours: 12,
    });
  });

  it('refuses a password minimum below 15 unless every role must use MFA, and changes nothing', async () => {
    const organization = await signupOrganization(server.api);
    const token = organization.admin.tokens.accessToken;

    const refused = await server.api.patch(
      '/api/v1/organization',
      { security: { mfaRequiredRoles: ['admin', 'manager'], passwordMinLength: 10 } },
      { token },
    );
    const after = await server.api.get('/api/v1/organization', { token });

    expectProblem(refused, 422, 'security_policy_refused');
    expect(after.body.security.mfaRequiredRoles).toEqual([]);
    expect(after.body.security.passwordMinLength).toBe(15);
  });

  it('accepts a shorter minimum once MFA is required for everyone', async () => {
    const organization = await signupOrganization(server.api);
    const token = organization.admin.tokens.accessToken;

    const accepted = await server.api.patch(
      '/api/v1/organization',
      {
        security: {
          mfaRequiredRoles: ['admin', 'manager', 'agent', 'viewer'],
          passwordMinLength: 8,
        },
      },
      { token },
    );

    expect(accepted.status).toBe(200);
    expect(accepted.body.security.passwordMinLength).toBe(8);
  });

  it('refuses values outside the safe bounds', async () => {
    const organization = await signupOrganization(server.api);
    const token = organization.admin.tokens.accessToken;

    for (const security of [
      { sessionIdleMinutes: 1 },
      { sessionIdleMinutes: 100000 },
      { sessionAbsoluteHours: 0 },
      { passwordMinLength: 7 },
      { mfaRequiredRoles: ['root'] },
    ]) {
      const response = await server.api.patch('/api/v1/organization', { security }, { token });
      expectProblem(response, 400, 'validation_failed');
    }
  });
});
