import { readFileSync } from 'node:fs';
import { request } from 'node:https';
import { join } from 'node:path';
import { SecureVersion, TLSSocket, connect } from 'node:tls';

/** A self-signed certificate for localhost, 127.0.0.1 and ::1, and its key: for tests only. */
export const TEST_TLS_CERT_FILE = join(__dirname, '..', 'fixtures', 'tls', 'cert.pem');
export const TEST_TLS_KEY_FILE = join(__dirname, '..', 'fixtures', 'tls', 'key.pem');

/** The test certificate, which is its own certificate authority. */
export function testCertificate(): string {
  return readFileSync(TEST_TLS_CERT_FILE, 'utf8');
}

export interface TlsClientOptions {
  /** The certificates to trust; unset, only the system's, which do not know the test one. */
  ca?: string;
  minVersion?: SecureVersion;
  maxVersion?: SecureVersion;
  ciphers?: string;
}

export interface TlsRequest {
  method?: string;
  headers?: Record<string, string>;
  body?: string;
}

/** What `fetch` would have returned, plus the TLS version the connection agreed on. */
export interface TlsResponse {
  status: number;
  headers: Headers;
  protocol: string | null;
  text(): Promise<string>;
}

/**
 * One request over node:https on a connection of its own. The global fetch cannot be told which
 * certificate to trust or which TLS versions to offer, and the test certificate is self-signed.
 */
export function fetchOverTls(
  url: string,
  init: TlsRequest,
  options: TlsClientOptions,
): Promise<TlsResponse> {
  return new Promise((resolve, reject) => {
    const outgoing = request(
      url,
      { method: init.method ?? 'GET', headers: init.headers, agent: false, ...options },
      (incoming) => {
        const protocol = (incoming.socket as TLSSocket).getProtocol();
        const chunks: Buffer[] = [];
        incoming.on('data', (chunk: Buffer) => chunks.push(chunk));
        incoming.on('error', reject);
        incoming.on('end', () => {
          const headers = new Headers();
          for (let index = 0; index < incoming.rawHeaders.length; index += 2) {
            headers.append(incoming.rawHeaders[index], incoming.rawHeaders[index + 1]);
          }
          const text = Buffer.concat(chunks).toString('utf8');
          resolve({ status: incoming.statusCode ?? 0, headers, protocol, text: async () => text });
        });
      },
    );
    outgoing.on('error', reject);
    outgoing.end(init.body);
  });
}

/** A bare TLS handshake with 127.0.0.1: the version agreed, or the refusal as an error. */
export function tlsHandshake(port: number, options: TlsClientOptions): Promise<string | null> {
  return new Promise((resolve, reject) => {
    const socket = connect({ host: '127.0.0.1', port, ...options }, () => {
      const protocol = socket.getProtocol();
      socket.end();
      resolve(protocol);
    });
    // Every error is handled: one that comes after the handshake has nothing left to reject.
    socket.on('error', reject);
  });
}
