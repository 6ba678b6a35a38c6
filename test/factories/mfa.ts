import { generate } from 'otplib';

import { Clock } from '@parley/core';

import { ApiClient } from '../support/api-client';

import { Member } from './organizations';

/**
 * Enrolls `member` in TOTP with a code of the server clock's current step; the secret, its URI
 * and the recovery codes are remembered as secrets the logs must not contain.
 */
export async function enrollTotp(api: ApiClient, clock: Clock, member: Member): Promise<string> {
  const token = member.tokens.accessToken;
  const started = await api.post('/api/v1/me/mfa/totp', undefined, { token });
  if (started.status !== 201) {
    throw new Error(`starting TOTP: expected 201, got ${started.status} ${started.text}`);
  }
  const { secret, otpauthUri } = started.body as { secret: string; otpauthUri: string };
  api.remember(secret);
  api.remember(otpauthUri);
  const code = await generate({ secret, epoch: clock.nowSeconds() });
  const confirmed = await api.post('/api/v1/me/mfa/totp/confirm', { code }, { token });
  if (confirmed.status !== 200) {
    throw new Error(`confirming TOTP: expected 200, got ${confirmed.status} ${confirmed.text}`);
  }
  for (const recoveryCode of confirmed.body.recoveryCodes as string[]) {
    api.remember(recoveryCode);
  }

  return secret;
}
