import { createPublicKey, generateKeyPairSync, randomUUID } from 'node:crypto';

import {
  CryptoKey,
  JWK,
  JWTPayload,
  SignJWT,
  calculateJwkThumbprint,
  decodeJwt,
  exportJWK,
  importPKCS8,
} from 'jose';

import { Clock } from '@parley/core';
import { TokenService } from '@parley/auth';

import { SignedUpOrganization, signupOrganization } from './factories';
import { TestServer, expectNoSecretsInLogs, expectProblem, startServer } from './support';

interface SigningMaterial {
  pem: string;
  key: CryptoKey;
  kid: string;
  publicJwk: JWK;
}

async function signingMaterial(): Promise<SigningMaterial> {
  const { privateKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const pem = privateKey.export({ type: 'pkcs8', format: 'pem' }).toString();
  const key = await importPKCS8(pem, 'ES256');
  const publicJwk = await exportJWK(createPublicKey(privateKey));
  const kid = await calculateJwkThumbprint(publicJwk, 'sha256');

  return { pem, key, kid, publicJwk };
}

function base64url(value: unknown): string {
  return Buffer.from(JSON.stringify(value)).toString('base64url');
}

/**
 * Every token here is built like the server builds its own, then changed in one way, so each
 * refusal is caused by that one change. The server signs with a key this suite generated and
 * passed in as JWT_PRIVATE_KEY.
 */
describe('access tokens', () => {
  let server: TestServer;
  let serverKey: SigningMaterial;
  let organization: SignedUpOrganization;
  let claims: JWTPayload & { org: string; sid: string };

  beforeAll(async () => {
    serverKey = await signingMaterial();
    server = await startServer({ env: { JWT_PRIVATE_KEY: serverKey.pem } });
    organization = await signupOrganization(server.api);
    claims = decodeJwt(organization.admin.tokens.accessToken) as typeof claims;
  });

  afterAll(async () => {
    await server?.close();
  });

  function forge(
    options: {
      material?: SigningMaterial;
      header?: Record<string, unknown>;
      claims?: Record<string, unknown>;
      expiresAt?: number;
    } = {},
  ): Promise<string> {
    const material = options.material ?? serverKey;
    const now = Math.floor(Date.now() / 1000);
    const payload = {
      ...claims,
      iat: now,
      nbf: now,
      exp: now + 300,
      jti: randomUUID(),
      ...options.claims,
    };

    return new SignJWT(payload)
      .setProtectedHeader({
        alg: 'ES256',
        kid: material.kid,
        typ: 'at+jwt',
        ...options.header,
      } as never)
      .sign(material.key);
  }

  async function me(token: string) {
    return server.api.get('/api/v1/me', { token });
  }

  it('accepts a token built the way the server builds one (the baseline for the rest)', async () => {
    const response = await me(await forge());

    expect(response.status).toBe(200);
    expect(response.body.id).toBe(organization.admin.id);
  });

  it('refuses alg:none', async () => {
    const now = Math.floor(Date.now() / 1000);
    const header = base64url({ alg: 'none', typ: 'at+jwt', kid: serverKey.kid });
    const body = base64url({ ...claims, iat: now, nbf: now, exp: now + 300, jti: randomUUID() });

    const response = await me(`${header}.${body}.`);

    expectProblem(response, 401, 'invalid_token');
  });

  it('refuses HS256 signed with a made-up secret', async () => {
    const now = Math.floor(Date.now() / 1000);
    const token = await new SignJWT({
      ...claims,
      iat: now,
      nbf: now,
      exp: now + 300,
      jti: randomUUID(),
    })
      .setProtectedHeader({ alg: 'HS256', kid: serverKey.kid, typ: 'at+jwt' })
      .sign(new TextEncoder().encode('garbage-garbage-garbage-garbage-garbage'));

    const response = await me(token);

    expectProblem(response, 401, 'invalid_token');
  });

  it('refuses HS256 keyed with the server public key (algorithm confusion)', async () => {
    const now = Math.floor(Date.now() / 1000);
    const token = await new SignJWT({
      ...claims,
      iat: now,
      nbf: now,
      exp: now + 300,
      jti: randomUUID(),
    })
      .setProtectedHeader({ alg: 'HS256', kid: serverKey.kid, typ: 'at+jwt' })
      .sign(new TextEncoder().encode(JSON.stringify(serverKey.publicJwk)));

    const response = await me(token);

    expectProblem(response, 401, 'invalid_token');
  });

  it('refuses a wrong audience, including the widget audience', async () => {
    const elsewhere = await me(await forge({ claims: { aud: 'some-other-api' } }));
    const widget = await me(
      await forge({ claims: { aud: `${server.config.jwtAudience}:widget` } }),
    );

    expectProblem(elsewhere, 401, 'invalid_token');
    expectProblem(widget, 401, 'invalid_token');
  });

  it('refuses a wrong issuer', async () => {
    const response = await me(await forge({ claims: { iss: 'https://issuer.example' } }));

    expectProblem(response, 401, 'invalid_token');
  });

  it('refuses a token with no jti or no expiry', async () => {
    const noJti = await me(await forge({ claims: { jti: undefined } }));
    const noExp = await me(await forge({ claims: { exp: undefined } }));

    expectProblem(noJti, 401, 'invalid_token');
    expectProblem(noExp, 401, 'invalid_token');
  });

  it('refuses an expired token signed by the server key with token_expired', async () => {
    const past = Math.floor(Date.now() / 1000) - 3600;

    const response = await me(
      await forge({ claims: { iat: past - 300, nbf: past - 300, exp: past } }),
    );

    expectProblem(response, 401, 'token_expired');
  });

  it('refuses an expired token from a key it does not know, on the key alone', async () => {
    const throwaway = await signingMaterial();
    const past = Math.floor(Date.now() / 1000) - 3600;

    const response = await me(
      await forge({ material: throwaway, claims: { iat: past - 300, nbf: past - 300, exp: past } }),
    );

    expectProblem(response, 401, 'invalid_token');
  });

  it('refuses a valid-looking token from another key that claims the server key id', async () => {
    const throwaway = await signingMaterial();

    const response = await me(await forge({ material: { ...throwaway, kid: serverKey.kid } }));

    expectProblem(response, 401, 'invalid_token');
  });

  it('refuses a token the server signed while its clock was two hours behind', async () => {
    const tokens = server.app.get(TokenService);
    const clock = server.app.get(Clock);
    clock.advance(-2 * 3600_000);
    let token: string;
    try {
      token = await tokens.signAccess({
        userId: organization.admin.id,
        organizationId: organization.id,
        sessionId: claims.sid,
      });
    } finally {
      clock.advance(2 * 3600_000);
    }

    const response = await me(token);

    expectProblem(response, 401, 'token_expired');
  });

  it('refuses a token for a session that does not exist', async () => {
    const response = await me(await forge({ claims: { sid: randomUUID() } }));

    expectProblem(response, 401, 'session_ended');
  });

  it('refuses a token whose subject is not the member of its session', async () => {
    const response = await me(await forge({ claims: { sub: randomUUID() } }));

    expectProblem(response, 401, 'invalid_token');
  });

  it('refuses a widget visitor token on a member route', async () => {
    const visitorToken = await server.app.get(TokenService).signVisitor({
      contactId: randomUUID(),
      organizationId: organization.id,
      sessionId: claims.sid,
    });
    server.api.remember(visitorToken);
    const relabelled = await forge({ header: { typ: 'visitor+jwt' } });

    const visitor = await me(visitorToken);
    const relabel = await me(relabelled);

    expectProblem(visitor, 401, 'token_not_accepted_here');
    expectProblem(relabel, 401, 'token_not_accepted_here');
  });

  it('refuses a token whose typ is not an access token type', async () => {
    const response = await me(await forge({ header: { typ: 'JWT' } }));

    expectProblem(response, 401, 'invalid_token');
  });

  it('refuses credentials in the query string with 400, even beside a valid header', async () => {
    const { accessToken } = organization.admin.tokens;
    const requests = [
      { method: 'GET', path: `/api/v1/me?token=${accessToken}` },
      { method: 'GET', path: `/api/v1/users?access_token=${accessToken}` },
      { method: 'POST', path: `/api/v1/auth/logout?accessToken=${accessToken}` },
      { method: 'POST', path: `/api/v1/auth/refresh?token=${accessToken}` },
    ];

    for (const { method, path } of requests) {
      const response = await server.api.request(method, path, { token: accessToken });
      expectProblem(response, 400, 'token_in_query');
    }
    const stillSignedIn = await me(accessToken);
    expect(stillSignedIn.status).toBe(200);
  });

  it('refuses a missing or malformed Authorization header with a 401 problem', async () => {
    const { accessToken } = organization.admin.tokens;
    const headers = [
      undefined,
      '',
      'Bearer',
      'Bearer ',
      `Basic ${Buffer.from('admin:password').toString('base64')}`,
      `Token ${accessToken}`,
      `Bearer  ${accessToken}`,
      `Bearer ${accessToken} extra`,
      `Bearer ${accessToken.replace(/\./g, '')}`,
      'Bearer not.a.jwt-but-long-enough',
    ];

    for (const authorization of headers) {
      const response = await server.api.get('/api/v1/me', {
        headers: authorization === undefined ? {} : { authorization },
      });
      expectProblem(response, 401, 'invalid_token');
      expect(response.headers.get('www-authenticate')).toMatch(/^Bearer/);
    }
    const unchanged = await me(accessToken);
    expect(unchanged.status).toBe(200);
  });

  it('keeps the signing key, tokens and passwords out of the logs', () => {
    expectNoSecretsInLogs(server, [serverKey.pem, serverKey.pem.split('\n')[1]]);
  });
});
