import { request as httpRequest } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { isIP } from 'node:net';

import { Inject, Injectable } from '@nestjs/common';

import { APP_CONFIG, AppConfig } from '@parley/core';

import {
  WebhookAddressError,
  guardedLookup,
  hostOf,
  isForbiddenAddress,
  parseWebhookUrl,
} from './webhook-address';

/** A receiver must answer within this; a slow one is a failed attempt, retried later. */
export const WEBHOOK_TIMEOUT_MS = 5000;

/** What is read of a response body before the connection is dropped: nothing is kept. */
const MAX_RESPONSE_BYTES = 64 * 1024;

export interface WebhookRequest {
  url: string;
  headers: Record<string, string>;
  body: string;
}

export type SendResult =
  { ok: true; statusCode: number } | { ok: false; statusCode: number | null; error: string };

/**
 * POSTs one delivery. Redirects are not followed (a 3xx is a failed attempt), and the address
 * is checked again on every attempt, on the very DNS answer the connection uses, since a name
 * that was public when the endpoint was saved may not be now.
 */
@Injectable()
export class WebhookSender {
  constructor(@Inject(APP_CONFIG) private readonly config: AppConfig) {}

  send(request: WebhookRequest): Promise<SendResult> {
    let url: URL;
    try {
      url = parseWebhookUrl(request.url, { production: this.config.production });
    } catch (error) {
      return Promise.resolve({ ok: false, statusCode: null, error: describe(error) });
    }
    const allowPrivate = this.config.webhookAllowPrivateAddresses;
    const host = hostOf(url);
    if (!allowPrivate && isIP(host) !== 0 && isForbiddenAddress(host)) {
      return Promise.resolve({ ok: false, statusCode: null, error: 'address not allowed' });
    }
    const send = url.protocol === 'https:' ? httpsRequest : httpRequest;

    return new Promise<SendResult>((resolve) => {
      let settled = false;
      const finish = (result: SendResult) => {
        if (!settled) {
          settled = true;
          resolve(result);
        }
      };
      const outgoing = send(url, {
        method: 'POST',
        headers: {
          ...request.headers,
          'content-type': 'application/json',
          'content-length': String(Buffer.byteLength(request.body)),
          'user-agent': 'Parley-Webhooks/1',
        },
        agent: false,
        lookup: allowPrivate ? undefined : guardedLookup(),
      });
      // Also bounds a response body that never ends: the connection goes at the deadline.
      const timer = setTimeout(() => {
        finish({
          ok: false,
          statusCode: null,
          error: `no answer within ${WEBHOOK_TIMEOUT_MS / 1000} s`,
        });
        outgoing.destroy();
      }, WEBHOOK_TIMEOUT_MS);
      outgoing.on('close', () => clearTimeout(timer));
      outgoing.on('response', (response) => {
        const statusCode = response.statusCode ?? 0;
        let read = 0;
        response.on('data', (chunk: Buffer) => {
          read += chunk.length;
          if (read > MAX_RESPONSE_BYTES) {
            response.destroy();
          }
        });
        response.on('error', () => undefined);
        response.on('close', () => outgoing.destroy());
        if (statusCode >= 200 && statusCode < 300) {
          finish({ ok: true, statusCode });
        } else if (statusCode >= 300 && statusCode < 400) {
          finish({ ok: false, statusCode, error: 'redirect not followed' });
        } else {
          finish({ ok: false, statusCode, error: `answered ${statusCode}` });
        }
      });
      outgoing.on('error', (error) => {
        finish({ ok: false, statusCode: null, error: describe(error) });
      });
      outgoing.end(request.body);
    });
  }
}

/** A short reason of ours, never a response body or anything the receiver wrote. */
function describe(error: unknown): string {
  if (error instanceof WebhookAddressError) {
    return error.reason === 'unresolvable' ? 'host does not resolve' : 'address not allowed';
  }
  const code = (error as NodeJS.ErrnoException | undefined)?.code;
  switch (code) {
    case 'ECONNREFUSED':
      return 'connection refused';
    case 'ECONNRESET':
      return 'connection reset';
    case 'ENOTFOUND':
    case 'EAI_AGAIN':
      return 'host does not resolve';
    case 'ETIMEDOUT':
      return 'connection timed out';
    case undefined:
      return 'request failed';
    default:
      return code.startsWith('ERR_TLS') || code.includes('CERT')
        ? 'TLS failure'
        : `request failed (${code})`;
  }
}
