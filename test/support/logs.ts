import { TestServer } from './server';

/**
 * Asserts that no password sent and no token received through the server's client, and no
 * Authorization header value, appear in anything the server logged.
 */
export function expectNoSecretsInLogs(
  server: Pick<TestServer, 'logs' | 'secrets'>,
  extraSecrets: string[] = [],
): void {
  const text = server.logs.text();
  expect(server.logs.lines.length).toBeGreaterThan(0);

  const leaked = [...server.secrets, ...extraSecrets].filter(
    (secret) => secret.length >= 8 && text.includes(secret),
  );
  expect(leaked).toEqual([]);

  // Any bearer credential at all, even one this client did not send.
  expect(text).not.toMatch(/Bearer\s+[A-Za-z0-9_\-.]{10,}/);
  // JWTs (header.payload.signature, each base64url) and refresh tokens by shape.
  expect(text).not.toMatch(/eyJ[A-Za-z0-9_-]{10,}\.[A-Za-z0-9_-]{10,}\.[A-Za-z0-9_-]*/);
  expect(text).not.toMatch(/prt_[A-Za-z0-9_-]{20,}/);
}
