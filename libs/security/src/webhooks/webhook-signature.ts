import { createHmac, randomBytes } from 'node:crypto';

export const WEBHOOK_SECRET_PREFIX = 'whsec_';

/** A new signing secret: `whsec_` and 32 random bytes in base64url. */
export function newWebhookSecret(): string {
  return `${WEBHOOK_SECRET_PREFIX}${randomBytes(32).toString('base64url')}`;
}

/**
 * HMAC-SHA256, in hex, of `<delivery id>.<unix seconds>.<body>` under the secret. The key is
 * the whole secret as written (`whsec_...`, its UTF-8 bytes), so a receiver needs no decoding.
 */
export function webhookSignature(
  secret: string,
  deliveryId: string,
  timestamp: number,
  body: string,
): string {
  return createHmac('sha256', secret)
    .update(`${deliveryId}.${timestamp}.`, 'utf8')
    .update(body, 'utf8')
    .digest('hex');
}

/**
 * The `Parley-Signature` header: `t=<unix seconds>,v1=<hex>`, with one `v1` per secret that
 * signs (the current one first, then the previous one while a rotation's overlap lasts).
 */
export function signatureHeader(
  secrets: string[],
  deliveryId: string,
  timestamp: number,
  body: string,
): string {
  const signatures = secrets.map(
    (secret) => `v1=${webhookSignature(secret, deliveryId, timestamp, body)}`,
  );

  return [`t=${timestamp}`, ...signatures].join(',');
}

/**
 * How long to wait after failed attempt `attempt` (1 for the first): 10 s, 30 s, 2 min,
 * 10 min, then an hour between every later attempt.
 */
export const WEBHOOK_BACKOFF_SECONDS = [10, 30, 120, 600, 3600] as const;

export function backoffSeconds(attempt: number): number {
  const index = Math.min(Math.max(attempt, 1), WEBHOOK_BACKOFF_SECONDS.length) - 1;

  return WEBHOOK_BACKOFF_SECONDS[index];
}
