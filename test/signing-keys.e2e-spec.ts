import { decodeProtectedHeader } from 'jose';

import { SigningKeys } from '@parley/auth';
import { Clock } from '@parley/core';

import { login, signupOrganization } from './factories';
import { TestServer, expectProblem, startServer } from './support';

describe('signing keys and JWKS', () => {
  let first: TestServer;
  let second: TestServer;

  beforeAll(async () => {
    first = await startServer();
    second = await startServer();
  });

  afterAll(async () => {
    await second?.close();
    await first?.close();
  });

  function kidOf(token: string): string {
    return decodeProtectedHeader(token).kid as string;
  }

  it('publishes the key that signs access tokens, with its algorithm and no private part', async () => {
    const organization = await signupOrganization(first.api);

    const response = await first.api.get('/.well-known/jwks.json');

    expect(response.status).toBe(200);
    const key = response.body.keys.find(
      (candidate: { kid: string }) =>
        candidate.kid === kidOf(organization.admin.tokens.accessToken),
    );
    expect(key).toMatchObject({ kty: 'EC', crv: 'P-256', alg: 'ES256', use: 'sig' });
    expect(key.d).toBeUndefined();
  });

  it('keeps old tokens working after a rotation, and every instance comes to sign with the new key', async () => {
    const organization = await signupOrganization(first.api);
    const oldToken = organization.admin.tokens.accessToken;
    const { email, password } = organization.admin;

    const newKid = await first.app.get(SigningKeys).rotate('test');
    const fromFirst = await login(first.api, organization.slug, email, password);

    expect(kidOf(oldToken)).not.toBe(newKid);
    expect(kidOf(fromFirst.accessToken)).toBe(newKid);
    expect((await first.api.get('/api/v1/me', { token: oldToken })).status).toBe(200);
    // The second instance has not reloaded yet: an unknown key id makes it read the table.
    expect((await second.api.get('/api/v1/me', { token: fromFirst.accessToken })).status).toBe(200);
    expect((await second.api.get('/api/v1/me', { token: oldToken })).status).toBe(200);

    await second.app.get(SigningKeys).reload();
    const fromSecond = await login(second.api, organization.slug, email, password);
    const jwks = await second.api.get('/.well-known/jwks.json');

    expect(kidOf(fromSecond.accessToken)).toBe(newKid);
    expect(jwks.body.keys.map((key: { kid: string }) => key.kid)).toEqual(
      expect.arrayContaining([newKid, kidOf(oldToken)]),
    );
  });

  it('drops a retired key from the key set once its last token has expired', async () => {
    const retiredKid = first.app.get(SigningKeys).signingKey().kid;
    await first.app.get(SigningKeys).rotate('test');
    const clock = first.app.get(Clock);

    clock.advance(3 * 3600 * 1000);
    await first.app.get(SigningKeys).reload();
    const jwks = await first.api.get('/.well-known/jwks.json');
    clock.advance(-3 * 3600 * 1000);
    await first.app.get(SigningKeys).reload();

    expect(jwks.body.keys.map((key: { kid: string }) => key.kid)).not.toContain(retiredKid);
  });

  it('refuses a token whose key id this installation never issued', async () => {
    const organization = await signupOrganization(first.api);
    const [header, payload, signature] = organization.admin.tokens.accessToken.split('.');
    const forgedHeader = Buffer.from(
      JSON.stringify({
        ...JSON.parse(Buffer.from(header, 'base64url').toString()),
        kid: 'not-a-key-of-ours-at-all',
      }),
    ).toString('base64url');

    const response = await first.api.get('/api/v1/me', {
      token: `${forgedHeader}.${payload}.${signature}`,
    });

    expectProblem(response, 401, 'invalid_token');
  });
});
