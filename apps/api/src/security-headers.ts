import type { IncomingMessage, Server, ServerResponse } from 'node:http';

/** One year: the HSTS lifetime helmet is given, and the least that browsers' preload lists take. */
export const HSTS_MAX_AGE_SECONDS = 31_536_000;

/**
 * The helmet headers that matter on every answer, with the values helmet sends, for the answers
 * that never reach helmet's Fastify hook: Node's parser errors (written raw to the socket),
 * Engine.IO's own handshake, polling and error responses under /socket.io/, and the few errors
 * Fastify answers before its hooks run (a malformed URL, a request during shutdown).
 */
export const ESSENTIAL_SECURITY_HEADERS: Readonly<Record<string, string>> = {
  'strict-transport-security': `max-age=${HSTS_MAX_AGE_SECONDS}; includeSubDomains`,
  'x-content-type-options': 'nosniff',
  'x-frame-options': 'SAMEORIGIN',
  'referrer-policy': 'no-referrer',
};

/**
 * Sets the essential headers on every response of `server` before any other listener answers.
 * Call it after Engine.IO has attached: attaching takes the request listeners that are already
 * there and calls them only for requests outside /socket.io/. Fastify's replies then set the same
 * names again through helmet, and `writeHead` keeps their values.
 */
export function setEssentialHeadersFirst(server: Server): void {
  server.prependListener('request', (_request: IncomingMessage, response: ServerResponse) => {
    for (const [name, value] of Object.entries(ESSENTIAL_SECURITY_HEADERS)) {
      response.setHeader(name, value);
    }
  });
}
