import { createHmac } from 'node:crypto';

import {
  WEBHOOK_SECRET_PREFIX,
  backoffSeconds,
  newWebhookSecret,
  signatureHeader,
  webhookSignature,
} from './webhook-signature';

describe('webhook signatures', () => {
  it('makes secrets of 32 random bytes behind whsec_', () => {
    const secrets = new Set(Array.from({ length: 50 }, () => newWebhookSecret()));

    expect(secrets.size).toBe(50);
    for (const secret of secrets) {
      expect(secret.startsWith(WEBHOOK_SECRET_PREFIX)).toBe(true);
      expect(Buffer.from(secret.slice(WEBHOOK_SECRET_PREFIX.length), 'base64url')).toHaveLength(32);
    }
  });

  it('signs "<id>.<t>.<body>" with HMAC-SHA256 under the whole secret', () => {
    const secret = 'whsec_test';
    const expected = createHmac('sha256', secret).update('d1.1700000000.{"a":1}').digest('hex');

    expect(webhookSignature(secret, 'd1', 1700000000, '{"a":1}')).toBe(expected);
    expect(webhookSignature(secret, 'd2', 1700000000, '{"a":1}')).not.toBe(expected);
    expect(webhookSignature(secret, 'd1', 1700000001, '{"a":1}')).not.toBe(expected);
    expect(webhookSignature(secret, 'd1', 1700000000, '{"a":2}')).not.toBe(expected);
  });

  it('writes one v1 per signing secret, the current one first', () => {
    const header = signatureHeader(['whsec_new', 'whsec_old'], 'd1', 1700000000, '{}');

    expect(header).toBe(
      [
        't=1700000000',
        `v1=${webhookSignature('whsec_new', 'd1', 1700000000, '{}')}`,
        `v1=${webhookSignature('whsec_old', 'd1', 1700000000, '{}')}`,
      ].join(','),
    );
  });

  it('backs off 10 s, 30 s, 2 min, 10 min, then an hour between every later attempt', () => {
    expect([1, 2, 3, 4, 5, 6, 12].map(backoffSeconds)).toEqual([
      10, 30, 120, 600, 3600, 3600, 3600,
    ]);
  });
});
