import { types } from 'node:util';

import { ClsServiceManager } from 'nestjs-cls';
import { Params } from 'nestjs-pino';
import { stdSerializers } from 'pino';
import type { DestinationStream, Logger } from 'pino';

import { AppConfig } from '../config/config.schema';
import { ParleyStore } from '../context/request-context';

import { REDACTED, isRedactedKey, redactClassified, unredactedKeyPattern } from './redaction';

/**
 * Header paths pino removes from every line. Fields are removed by `redactLogObject`, at any
 * depth, by the names the classification marks and `CREDENTIAL_FIELD_NAMES` give.
 */
export const REDACTED_PATHS = [
  'req.headers.authorization',
  'req.headers.cookie',
  'req.headers["x-csrf-token"]',
  'req.headers["x-api-key"]',
  'res.headers["set-cookie"]',
];

/** Keys of a line that the serializers below cut down to a few safe fields themselves. */
const SERIALIZED_KEYS: ReadonlySet<string> = new Set(['req', 'res']);

/**
 * A log line's fields through `redactClassified` (pino's `formatters.log`): a value under
 * a confidential, restricted or credential name becomes `[redacted]` at any depth; `req` and
 * `res`, the raw request and reply, are left to their serializers. Pino calls it before its
 * serializers, so an error under `err` is still an error there and keeps type, message, stack.
 */
export function redactLogObject(fields: Record<string, unknown>): Record<string, unknown> {
  let copy: Record<string, unknown> | undefined;
  for (const key of Object.keys(fields)) {
    if (SERIALIZED_KEYS.has(key)) {
      continue;
    }
    const value = fields[key];
    const next =
      value !== null && value !== undefined && isRedactedKey(key)
        ? REDACTED
        : redactClassified(value);
    if (next !== value) {
      copy ??= { ...fields };
      copy[key] = next;
    }
  }

  return copy ?? fields;
}

/**
 * The last check of a finished line, for what `redactLogObject` never sees: the fields bound to
 * a child logger (`logger.child`, nestjs-pino's `assign`), which pino serializes when the child
 * is made. Only a line that names a redacted field with a value other than `[redacted]` is
 * parsed and written again.
 */
export function redactLogLine(line: string): string {
  if (!unredactedKeyPattern().test(line)) {
    return line;
  }
  try {
    const parsed: unknown = JSON.parse(line);
    const redacted = redactClassified(parsed);

    return redacted === parsed ? line : `${JSON.stringify(redacted)}\n`;
  } catch {
    return `${JSON.stringify({ message: 'log line withheld: it could not be checked for confidential values' })}\n`;
  }
}

/**
 * Errors through pino's own serializer (type, message, stack), except one already cut down by
 * `safeError`, a plain object, which that serializer would log with `Object` as its type: it is
 * logged as it was given.
 */
function serializeError(error: unknown): unknown {
  return error !== null &&
    typeof error === 'object' &&
    !(error instanceof Error) &&
    !types.isNativeError(error)
    ? error
    : stdSerializers.err(error as Error);
}

/**
 * The arguments of one log call, with every object given after the message (for `%o`, `%j`)
 * redacted; the object before the message is left to `redactLogObject`.
 */
export function redactLogArguments<A extends unknown[]>(args: A): A {
  const message = args.findIndex((arg) => typeof arg === 'string');
  if (message < 0 || message === args.length - 1) {
    return args;
  }
  let copy: A | undefined;
  for (let index = message + 1; index < args.length; index += 1) {
    const next = redactClassified(args[index]);
    if (next !== args[index]) {
      copy ??= [...args] as A;
      copy[index] = next;
    }
  }

  return copy ?? args;
}

function contextFields(): Record<string, unknown> {
  const cls = ClsServiceManager.getClsService<ParleyStore>();
  if (!cls.isActive()) {
    return {};
  }
  const actor = cls.get('actor');

  return {
    requestId: cls.getId(),
    organizationId: cls.get('organizationId'),
    actor: actor ? { type: actor.type, id: actor.id } : undefined,
  };
}

interface AnsweredRequest {
  id: string;
  method: string;
  url: string;
  ip: string;
}

interface RequestHooks {
  addHook(
    name: 'onResponse',
    hook: (
      request: AnsweredRequest,
      reply: { statusCode: number; elapsedTime: number },
      done: () => void,
    ) => void,
  ): void;
}

/**
 * One line per answered request, `request completed`, at info (warn for 4xx, error for 5xx), with
 * the request id, method, path (never the query) and address, the status and the time taken. It
 * replaces pino-http's middleware, which made two child loggers, serializing the request, and
 * ran an AsyncLocalStorage scope for every request whether or not its line was written; the
 * request id, organization and actor come from the request context like on every other line.
 */
export function logAnsweredRequests(fastify: RequestHooks, logger: Logger): void {
  fastify.addHook('onResponse', (request, reply, done) => {
    const status = reply.statusCode;
    const level = status >= 500 ? 'error' : status >= 400 ? 'warn' : 'info';
    if (logger.isLevelEnabled(level)) {
      logger[level](
        {
          requestId: request.id,
          req: {
            id: request.id,
            method: request.method,
            url: request.url.split('?')[0],
            remoteAddress: request.ip,
          },
          res: { statusCode: status },
          responseTime: Math.round(reply.elapsedTime),
        },
        'request completed',
      );
    }
    done();
  });
}

export function loggerParams(config: AppConfig, destination?: DestinationStream): Params {
  return {
    // No route gets pino-http's middleware: logAnsweredRequests writes the request lines.
    forRoutes: [],
    pinoHttp: [
      {
        level: config.logLevel,
        redact: { paths: REDACTED_PATHS, censor: REDACTED },
        formatters: { log: (fields) => redactLogObject(fields) },
        hooks: {
          logMethod(args, method) {
            method.apply(this, redactLogArguments(args));
          },
          streamWrite: (line) => redactLogLine(line),
        },
        base: { service: 'parley-api' },
        messageKey: 'message',
        // The serializers below take the plain objects logAnsweredRequests and the rest of the
        // code log; pino-http's wrappers expect raw requests and replies.
        wrapSerializers: false,
        mixin: () => contextFields(),
        serializers: {
          req: (req: { id?: string; method?: string; url?: string; remoteAddress?: string }) => ({
            id: req.id,
            method: req.method,
            url: typeof req.url === 'string' ? req.url.split('?')[0] : req.url,
            remoteAddress: req.remoteAddress,
          }),
          res: (res: { statusCode?: number }) => ({ statusCode: res.statusCode }),
          err: serializeError,
        },
      },
      destination as DestinationStream,
    ],
  };
}
