import { ApiClient, ApiResponse, RequestOptions } from '../support/api-client';

import { Member } from './organizations';

export interface IssuedApiKey {
  id: string;
  key: string;
  prefix: string;
  scopes: string[];
}

/** Creates an API key as `creator`; throws on anything but 201. The key is remembered as a secret. */
export async function createApiKey(
  api: ApiClient,
  creator: Member,
  scopes: string[],
  options: { name?: string; expiresAt?: string } = {},
): Promise<IssuedApiKey> {
  const response = await api.post(
    '/api/v1/api-keys',
    { name: options.name ?? `key for ${scopes.join(' ')}`, scopes, expiresAt: options.expiresAt },
    { token: creator.tokens.accessToken },
  );
  if (response.status !== 201) {
    throw new Error(`creating an API key: expected 201, got ${response.status} ${response.text}`);
  }
  api.remember(response.body.key);

  return response.body as IssuedApiKey;
}

/** Options that send `key` as `Authorization: ApiKey <key>`. */
export function withApiKey(key: string, options: RequestOptions = {}): RequestOptions {
  return { ...options, headers: { ...options.headers, authorization: `ApiKey ${key}` } };
}

/** A request made with an API key instead of a member's token. */
export function requestWithApiKey(
  api: ApiClient,
  key: string,
  method: string,
  path: string,
  body?: unknown,
): Promise<ApiResponse> {
  return api.request(method, path, withApiKey(key, { body }));
}
