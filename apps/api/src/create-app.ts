import { randomUUID } from 'node:crypto';
import type { ServerOptions as HttpsServerOptions } from 'node:https';

import cookie from '@fastify/cookie';
import helmet from '@fastify/helmet';
import { ConsoleLogger, INestApplication } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { FastifyAdapter, NestFastifyApplication } from '@nestjs/platform-fastify';
import { DocumentBuilder, SwaggerModule } from '@nestjs/swagger';
import { Logger, PinoLogger } from 'nestjs-pino';
import secureJson from 'secure-json-parse';

import {
  AppConfig,
  CommonErrorCode,
  MAX_JSON_DEPTH,
  Metrics,
  ProblemException,
  createValidationPipe,
  jsonDepth,
  logAnsweredRequests,
} from '@parley/core';

import { AppModule, AppOptions } from './app.module';
import { ChatIoAdapter } from './chat-io.adapter';
import { ProblemView } from './problem.view';
import { ESSENTIAL_SECURITY_HEADERS, HSTS_MAX_AGE_SECONDS } from './security-headers';

const REQUEST_ID = /^[A-Za-z0-9._:-]{8,128}$/;

/** Builds the whole server without listening; main.ts and the end-to-end tests share it. */
export async function createApp(options: AppOptions): Promise<NestFastifyApplication> {
  const { config } = options;
  const https = httpsOptions(config);
  const adapter = new FastifyAdapter({
    bodyLimit: config.bodyLimitBytes,
    onProtoPoisoning: 'error',
    onConstructorPoisoning: 'error',
    trustProxy: config.trustProxy,
    genReqId: (request: { headers: Record<string, string | string[] | undefined> }) => {
      const incoming = request.headers['x-request-id'];

      return typeof incoming === 'string' && REQUEST_ID.test(incoming) ? incoming : randomUUID();
    },
    logger: false,
    // A client that never finishes its request is cut instead of holding a connection open.
    requestTimeout: 30_000,
    connectionTimeout: 60_000,
    clientErrorHandler: answerClientError,
    ...(https === undefined ? {} : { https }),
  });
  const app = await NestFactory.create<NestFastifyApplication>(
    AppModule.register(options),
    adapter,
    {
      bufferLogs: true,
      // What was buffered before the pino logger took over is printed by this one when the start
      // fails: JSON lines, like every other line the server writes, without colours.
      logger: new ConsoleLogger({ json: true, colors: false }),
      abortOnError: false,
      bodyParser: false,
    },
  );
  app.useLogger(app.get(Logger));
  app.flushLogs();
  app.setGlobalPrefix('api/v1', {
    exclude: [
      'health/live',
      'health/ready',
      'metrics',
      '.well-known/jwks.json',
      '.well-known/parley-audit-keys.json',
    ],
  });
  app.useGlobalPipes(createValidationPipe());
  app.useWebSocketAdapter(new ChatIoAdapter(app, config));
  app.enableShutdownHooks();

  const fastify = app.getHttpAdapter().getInstance();
  // Fastify parses text/plain by default; a JSON API answers anything but JSON with 415.
  fastify.removeContentTypeParser('text/plain');
  fastify.addContentTypeParser(
    'application/json',
    { parseAs: 'string', bodyLimit: config.bodyLimitBytes },
    parseJsonBody,
  );
  await fastify.register(helmet, {
    contentSecurityPolicy: config.openApiEnabled ? false : undefined,
    hsts: { maxAge: HSTS_MAX_AGE_SECONDS, includeSubDomains: true },
  });
  // Unsigned: the one cookie that authenticates (cookie mode's refresh token) is itself a secret.
  await fastify.register(cookie);
  fastify.addHook('onSend', async (request, reply) => {
    reply.header('x-request-id', request.id);
    // The throttler names its header after the limit that tripped; clients look for Retry-After.
    if (reply.statusCode === 429 && !reply.hasHeader('retry-after')) {
      const named = Object.entries(reply.getHeaders()).find(([name]) =>
        name.startsWith('retry-after-'),
      );
      if (named) {
        reply.header('retry-after', String(named[1]));
      }
    }
  });
  fastify.addHook('onRequest', async (request, reply) => {
    allowWidgetOrigin(request, reply);
  });
  logAnsweredRequests(fastify, PinoLogger.root);
  const metrics = app.get(Metrics);
  fastify.addHook('onResponse', async (request, reply) => {
    const route = request.routeOptions?.url ?? 'unmatched';
    metrics.httpRequests.inc({ route, method: request.method, status: String(reply.statusCode) });
    metrics.httpDuration.observe({ route, method: request.method }, reply.elapsedTime / 1000);
  });

  if (config.openApiEnabled) {
    setUpOpenApi(app);
  }

  return app;
}

/**
 * With a certificate configured the one listener speaks only HTTPS (and WSS for Socket.IO).
 * Node negotiates the highest version both sides offer, so TLS 1.3 wherever the client has it.
 */
function httpsOptions(config: AppConfig): HttpsServerOptions | undefined {
  if (config.tlsCert === undefined || config.tlsKey === undefined) {
    return undefined;
  }

  return {
    cert: config.tlsCert,
    key: config.tlsKey,
    minVersion: 'TLSv1.2',
    maxVersion: 'TLSv1.3',
  };
}

/** Written raw to the socket below, so helmet's hook never sees these answers. */
const SECURITY_HEADER_LINES = Object.entries(ESSENTIAL_SECURITY_HEADERS)
  .map(([name, value]) => `${name}: ${value}\r\n`)
  .join('');

/** Requests Node's parser refuses (oversized headers, bad framing) still get a problem body. */
function answerClientError(
  error: Error & { code?: string },
  socket: import('node:net').Socket,
): void {
  if (!socket.writable) {
    socket.destroy();

    return;
  }
  const status =
    error.code === 'HPE_HEADER_OVERFLOW'
      ? 431
      : error.code === 'ERR_HTTP_REQUEST_TIMEOUT'
        ? 408
        : 400;
  const code =
    status === 431 ? 'headers_too_large' : status === 408 ? 'request_timeout' : 'malformed_request';
  const body = JSON.stringify({
    type: `https://parley.dev/problems/${code.replace(/_/g, '-')}`,
    status,
    title:
      status === 431
        ? 'Request Header Fields Too Large'
        : status === 408
          ? 'Request Timeout'
          : 'Bad Request',
    detail:
      status === 431
        ? 'The request headers or URL are larger than this server accepts.'
        : 'The request could not be read.',
    code,
    requestId: null,
  });
  socket.end(
    `HTTP/1.1 ${status} ${status === 431 ? 'Request Header Fields Too Large' : status === 408 ? 'Request Timeout' : 'Bad Request'}\r\n` +
      `content-type: application/problem+json\r\ncontent-length: ${Buffer.byteLength(body)}\r\n${SECURITY_HEADER_LINES}connection: close\r\n\r\n${body}`,
  );
}

interface CorsRequest {
  url: string;
  method: string;
  headers: Record<string, string | string[] | undefined>;
}

interface CorsReply {
  header(name: string, value: string): CorsReply;
  code(status: number): CorsReply;
  send(body?: unknown): CorsReply;
}

/**
 * The widget runs on the organizations' own sites, so its routes answer cross-origin requests.
 * The browser is told any origin may ask; each handler then refuses an origin that is not on the
 * organization's allow-list, which the browser cannot forge.
 */
function allowWidgetOrigin(request: CorsRequest, reply: CorsReply): void {
  const origin = request.headers.origin;
  if (typeof origin !== 'string' || !request.url.startsWith('/api/v1/widget/')) {
    return;
  }
  reply.header('access-control-allow-origin', origin).header('vary', 'Origin');
  if (request.method === 'OPTIONS') {
    reply
      .header('access-control-allow-methods', 'POST')
      .header('access-control-allow-headers', 'authorization, content-type, x-request-id')
      .header('access-control-max-age', '600')
      .code(204)
      .send();
  }
}

/** JSON bodies, refusing keys that could pollute prototypes, each failure with its own code. */
function parseJsonBody(
  _request: unknown,
  body: string | Buffer,
  done: (error: Error | null, value?: unknown) => void,
): void {
  const text = typeof body === 'string' ? body : body.toString('utf8');
  if (text.trim() === '') {
    done(null, undefined);

    return;
  }
  let value: unknown;
  try {
    value = secureJson.parse(text, undefined, { protoAction: 'error', constructorAction: 'error' });
  } catch (error) {
    const poisoned = /prototype|constructor/i.test((error as Error).message);
    done(
      new ProblemException(400, CommonErrorCode.InvalidJson, {
        detail: poisoned
          ? 'The body uses a forbidden key (__proto__ or constructor).'
          : 'The request body is not valid JSON.',
      }),
    );

    return;
  }
  // Validation walks bodies recursively; a deeply nested one would exhaust the stack there.
  if (jsonDepth(value) > MAX_JSON_DEPTH) {
    done(
      new ProblemException(400, CommonErrorCode.InvalidJson, {
        detail: `The request body nests deeper than ${MAX_JSON_DEPTH} levels.`,
      }),
    );

    return;
  }
  done(null, value);
}

function setUpOpenApi(app: INestApplication): void {
  const document = SwaggerModule.createDocument(
    app,
    new DocumentBuilder()
      .setTitle('Parley API')
      .setDescription(
        'Multi-tenant AI customer-support backend. Errors are RFC 9457 problem details.',
      )
      .setVersion('1')
      .addBearerAuth({ type: 'http', scheme: 'bearer', bearerFormat: 'JWT' })
      .addApiKey(
        {
          type: 'apiKey',
          in: 'header',
          name: 'Authorization',
          description: 'Service keys, sent as "ApiKey psk_…"; never in the query string',
        },
        'ApiKey',
      )
      .build(),
    { extraModels: [ProblemView] },
  );
  const problem = { $ref: '#/components/schemas/ProblemView' };
  for (const path of Object.values(document.paths)) {
    for (const operation of Object.values(path) as { responses?: Record<string, unknown> }[]) {
      if (operation && typeof operation === 'object' && operation.responses) {
        operation.responses['4XX'] = {
          description: 'Refused: RFC 9457 problem details with a stable code',
          content: { 'application/problem+json': { schema: problem } },
        };
        operation.responses['5XX'] = {
          description: 'Failed: problem details carrying the request id',
          content: { 'application/problem+json': { schema: problem } },
        };
      }
    }
  }
  SwaggerModule.setup('api/docs', app, document, { jsonDocumentUrl: 'api/docs-json' });
}
