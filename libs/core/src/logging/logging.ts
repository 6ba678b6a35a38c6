import { RequestMethod } from '@nestjs/common';
import { ClsServiceManager } from 'nestjs-cls';
import { Params } from 'nestjs-pino';
import type { DestinationStream } from 'pino';

import { AppConfig } from '../config/config.schema';
import { ParleyStore } from '../context/request-context';

/** Paths pino removes from every line: credentials, tokens and anything a customer typed. */
export const REDACTED_PATHS = [
  'req.headers.authorization',
  'req.headers.cookie',
  'req.headers["x-csrf-token"]',
  'req.headers["x-api-key"]',
  'res.headers["set-cookie"]',
  '*.password',
  '*.currentPassword',
  '*.newPassword',
  '*.token',
  '*.accessToken',
  '*.refreshToken',
  '*.visitorToken',
  '*.widgetKey',
  '*.secret',
  '*.mfaCode',
  '*.otpauthUri',
  '*.recoveryCodes',
  '*.body',
  '*.email',
  '*.name',
  '*.phone',
];

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

export function loggerParams(config: AppConfig, destination?: DestinationStream): Params {
  return {
    forRoutes: [{ path: '{*splat}', method: RequestMethod.ALL }],
    pinoHttp: [
      {
        level: config.logLevel,
        redact: { paths: REDACTED_PATHS, censor: '[redacted]' },
        base: { service: 'parley-api' },
        messageKey: 'message',
        genReqId: (req) => (req as { id?: string }).id ?? 'unknown',
        mixin: () => contextFields(),
        serializers: {
          req: (req: { id?: string; method?: string; url?: string; remoteAddress?: string }) => ({
            id: req.id,
            method: req.method,
            url: typeof req.url === 'string' ? req.url.split('?')[0] : req.url,
            remoteAddress: req.remoteAddress,
          }),
          res: (res: { statusCode?: number }) => ({ statusCode: res.statusCode }),
        },
        customLogLevel: (_req, res, err) => {
          if (err || res.statusCode >= 500) {
            return 'error';
          }

          return res.statusCode >= 400 ? 'warn' : 'info';
        },
        quietReqLogger: true,
      },
      destination as DestinationStream,
    ],
  };
}
