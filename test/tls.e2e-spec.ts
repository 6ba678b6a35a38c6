import { readFileSync, rmSync } from 'node:fs';
import { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import nodeTls, { SecureVersion, createServer } from 'node:tls';

import { io } from 'socket.io-client';

import { ConfigError } from '@parley/core';

import { SignedUpOrganization, signupOrganization } from './factories';
import {
  ApiResponse,
  TEST_TLS_CERT_FILE,
  TEST_TLS_KEY_FILE,
  TestServer,
  TlsResponse,
  connectSocket,
  expectProblem,
  fetchOverTls,
  startServer,
  temporaryDataDir,
  testCertificate,
  tlsHandshake,
} from './support';

/** Node's process-wide floor, which every TLS server built without a minVersion of its own uses. */
const processTls = nodeTls as { DEFAULT_MIN_VERSION: SecureVersion };

/**
 * A client that offers only TLS 1.0 and 1.1. OpenSSL 3 will not even offer them at its default
 * security level, so without SECLEVEL=0 the client would give up on its own and the refusal
 * would prove nothing about the server.
 */
const LEGACY_CLIENT = { minVersion: 'TLSv1', ciphers: 'DEFAULT@SECLEVEL=0' } as const;
const LEGACY_VERSIONS: SecureVersion[] = ['TLSv1.1', 'TLSv1'];

const HSTS = 'max-age=31536000; includeSubDomains';

/** The helmet headers every answer carries, whichever part of the server wrote it. */
function expectSecurityHeaders(response: ApiResponse | TlsResponse): void {
  const { headers } = response;

  expect({
    status: response.status,
    hsts: headers.get('strict-transport-security'),
    contentTypeOptions: headers.get('x-content-type-options'),
    frameOptions: headers.get('x-frame-options'),
    referrerPolicy: headers.get('referrer-policy'),
  }).toEqual({
    status: response.status,
    hsts: HSTS,
    contentTypeOptions: 'nosniff',
    frameOptions: 'SAMEORIGIN',
    referrerPolicy: 'no-referrer',
  });
}

/** A bare TLS server that accepts TLS 1.0 and 1.1: the legacy client does get them from it. */
async function startLegacyTlsServer(): Promise<{ port: number; close(): Promise<void> }> {
  const legacy = createServer(
    {
      cert: testCertificate(),
      key: readFileSync(TEST_TLS_KEY_FILE, 'utf8'),
      minVersion: 'TLSv1',
      ciphers: 'DEFAULT@SECLEVEL=0',
    },
    (socket) => {
      socket.on('error', () => undefined);
      socket.end();
    },
  );
  await new Promise<void>((resolve) => legacy.listen(0, '127.0.0.1', resolve));

  return {
    port: (legacy.address() as AddressInfo).port,
    close: () => new Promise<void>((resolve) => legacy.close(() => resolve())),
  };
}

describe('TLS', () => {
  let server: TestServer;
  let port: number;
  let ca: string;
  let organization: SignedUpOrganization;

  beforeAll(async () => {
    ca = testCertificate();
    // Node's own floor is TLS 1.2 too. Lowered while the server is built, it leaves the server's
    // minVersion as the only thing that stands between a TLS 1.1 client and a connection.
    const floor = processTls.DEFAULT_MIN_VERSION;
    processTls.DEFAULT_MIN_VERSION = 'TLSv1';
    try {
      // OpenAPI off, as in production, so that helmet's Content-Security-Policy is sent too.
      server = await startServer({
        tls: true,
        env: { BODY_LIMIT_BYTES: '4096', OPENAPI_ENABLED: 'false' },
      });
    } finally {
      processTls.DEFAULT_MIN_VERSION = floor;
    }
    port = Number(new URL(server.baseUrl).port);
    organization = await signupOrganization(server.api);
  });

  afterAll(async () => {
    await server?.close();
  });

  function login(rawBody: string, contentType?: string): Promise<ApiResponse> {
    return server.api.request('POST', '/api/v1/auth/login', { rawBody, contentType });
  }

  it('serves HTTPS on its one port and negotiates TLS 1.3 by default', async () => {
    const response = await fetchOverTls(`${server.baseUrl}/health/live`, {}, { ca });

    expect(server.baseUrl).toMatch(/^https:\/\/127\.0\.0\.1:\d+$/);
    expect(response.status).toBe(200);
    expect(response.protocol).toBe('TLSv1.3');
    await expect(tlsHandshake(port, { ca })).resolves.toBe('TLSv1.3');
  });

  it('still serves a client capped at TLS 1.2, over TLS 1.2', async () => {
    const response = await fetchOverTls(
      `${server.baseUrl}/health/live`,
      {},
      { ca, maxVersion: 'TLSv1.2' },
    );

    expect(response.status).toBe(200);
    expect(response.protocol).toBe('TLSv1.2');
  });

  it('refuses a client capped at TLS 1.1 or 1.0 in the handshake, for its protocol version', async () => {
    const legacy = await startLegacyTlsServer();
    try {
      for (const maxVersion of LEGACY_VERSIONS) {
        const agreed = await tlsHandshake(legacy.port, { ca, ...LEGACY_CLIENT, maxVersion });

        expect(agreed).toBe(maxVersion);
      }
    } finally {
      await legacy.close();
    }

    for (const maxVersion of LEGACY_VERSIONS) {
      const refused = tlsHandshake(port, { ca, ...LEGACY_CLIENT, maxVersion });

      // A protocol_version alert: the version floor refused it, not a missing cipher or signature.
      await expect(refused).rejects.toMatchObject({ code: 'ERR_SSL_TLSV1_ALERT_PROTOCOL_VERSION' });
    }
  });

  it('refuses a client that does not trust the certificate', async () => {
    const untrusted = fetchOverTls(`${server.baseUrl}/health/live`, {}, {});

    await expect(untrusted).rejects.toMatchObject({ code: 'DEPTH_ZERO_SELF_SIGNED_CERT' });
  });

  it('sends HSTS and the other helmet headers on successes and on 400, 401, 404, 413 and 415 problems', async () => {
    const token = organization.admin.tokens.accessToken;
    const successes = await Promise.all([
      server.api.get('/health/live'),
      server.api.get('/health/ready'),
      server.api.get('/metrics'),
      server.api.get('/.well-known/jwks.json'),
      server.api.get('/api/v1/me', { token }),
    ]);
    const invalidJson = await login('{"email":');
    const unauthenticated = await server.api.get('/api/v1/me');
    const notFound = await server.api.get('/api/v1/nothing-here', { token });
    const tooLarge = await login(JSON.stringify({ padding: 'p'.repeat(8192) }));
    const notJson = await login('email=a@b.c', 'text/plain');
    const problems = [invalidJson, unauthenticated, notFound, tooLarge, notJson];

    expect(successes.map((response) => response.status)).toEqual([200, 200, 200, 200, 200]);
    expectProblem(invalidJson, 400, 'invalid_json');
    expectProblem(unauthenticated, 401);
    expectProblem(notFound, 404);
    expectProblem(tooLarge, 413, 'payload_too_large');
    expectProblem(notJson, 415, 'unsupported_media_type');
    for (const response of [...successes, ...problems]) {
      expectSecurityHeaders(response);
      expect(response.headers.get('content-security-policy')).toContain("frame-ancestors 'self'");
    }
  });

  it('sends the same headers on answers written outside helmet: parser errors, bad URLs, Engine.IO', async () => {
    const oversized = await fetchOverTls(
      `${server.baseUrl}/api/v1/me`,
      { headers: { 'x-padding': 'p'.repeat(20_000) } },
      { ca },
    );
    const badUrl = await fetchOverTls(`${server.baseUrl}/api/v1/%zz`, {}, { ca });
    const handshake = await fetchOverTls(
      `${server.baseUrl}/socket.io/?EIO=4&transport=polling`,
      {},
      { ca },
    );
    const unknownTransport = await fetchOverTls(
      `${server.baseUrl}/socket.io/?EIO=4&transport=carrier-pigeon`,
      {},
      { ca },
    );

    expect(oversized.status).toBe(431);
    expect(JSON.parse(await oversized.text())).toMatchObject({ code: 'headers_too_large' });
    expect(badUrl.status).toBe(400);
    expect(handshake.status).toBe(200);
    expect(await handshake.text()).toMatch(/^0\{"sid":"/);
    expect(unknownTransport.status).toBe(400);
    for (const response of [oversized, badUrl, handshake, unknownTransport]) {
      expectSecurityHeaders(response);
    }
  });

  it('connects a Socket.IO client to /chat over WSS that trusts the certificate, and no other', async () => {
    const token = organization.admin.tokens.accessToken;
    const conversationId = '00000000-0000-4000-8000-000000000000';
    const socket = await connectSocket(server, token);
    try {
      const join = await socket.timeout(5_000).emitWithAck('conversation:join', { conversationId });

      expect(socket.connected).toBe(true);
      expect(join).toEqual({ ok: false, error: expect.objectContaining({ code: 'not_found' }) });
    } finally {
      socket.close();
    }

    const untrusting = io(`${server.baseUrl}/chat`, {
      auth: { token },
      transports: ['websocket'],
      reconnection: false,
    });
    const refusal = new Promise<Error>((resolve) => untrusting.once('connect_error', resolve));
    const { message } = await refusal;
    untrusting.close();

    expect(message).toBe('websocket error');
  });
});

describe('TLS configuration at boot', () => {
  /** What startServer threw; a server that booted after all is closed and yields undefined. */
  async function bootFailure(env: Record<string, string>): Promise<unknown> {
    const dataDir = temporaryDataDir();
    try {
      const started = await startServer({ dataDir, env });
      await started.close();

      return undefined;
    } catch (error) {
      return error;
    } finally {
      rmSync(dataDir, { recursive: true, force: true });
    }
  }

  it('refuses to boot with TLS_CERT_FILE alone, naming TLS_KEY_FILE', async () => {
    const error = await bootFailure({ TLS_CERT_FILE: TEST_TLS_CERT_FILE });

    expect(error).toBeInstanceOf(ConfigError);
    expect(error).toMatchObject({ variable: 'TLS_KEY_FILE' });
    expect((error as Error).message).toBe(
      'Invalid configuration: TLS_KEY_FILE is required when TLS_CERT_FILE is set',
    );
  });

  it('refuses to boot when the certificate file does not exist, naming TLS_CERT_FILE', async () => {
    const missing = join(tmpdir(), `parley-no-such-certificate-${process.pid}.pem`);
    const error = await bootFailure({ TLS_CERT_FILE: missing, TLS_KEY_FILE: TEST_TLS_KEY_FILE });

    expect(error).toBeInstanceOf(ConfigError);
    expect(error).toMatchObject({ variable: 'TLS_CERT_FILE' });
    expect((error as Error).message).toBe(
      `Invalid configuration: TLS_CERT_FILE names a file that cannot be read (ENOENT): ${missing}`,
    );
  });
});
