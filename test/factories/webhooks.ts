import { ApiClient } from '../support/api-client';

import { Member } from './organizations';

export interface CreatedWebhook {
  id: string;
  url: string;
  events: string[];
  enabled: boolean;
  secret: string;
}

/** Creates a webhook endpoint as `admin`; throws on anything but 201. The secret is remembered. */
export async function createWebhook(
  api: ApiClient,
  admin: Member,
  url: string,
  events: string[] = ['security.alert'],
): Promise<CreatedWebhook> {
  const response = await api.post(
    '/api/v1/webhooks',
    { url, events },
    { token: admin.tokens.accessToken },
  );
  if (response.status !== 201) {
    throw new Error(`creating a webhook: expected 201, got ${response.status} ${response.text}`);
  }
  api.remember(response.body.secret);

  return response.body as CreatedWebhook;
}
