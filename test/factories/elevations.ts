import { Role } from '@parley/core';

import { ApiClient, ApiResponse, JsonBody } from '../support/api-client';

import { Member } from './organizations';

export const ELEVATION_REASON = 'Cover the queue of a colleague who is away today';

/** Asks for `role` as `member`; the raw response, for suites that check refusals. */
export function requestElevation(
  api: ApiClient,
  member: Member,
  role: Role,
  minutes = 30,
  reason = ELEVATION_REASON,
): Promise<ApiResponse> {
  return api.post(
    '/api/v1/access/elevations',
    { role, minutes, reason },
    { token: member.tokens.accessToken },
  );
}

/** Acts on an elevation (`approve`, `deny`, `revoke`) as `member`; the raw response. */
export function decideElevation(
  api: ApiClient,
  member: Member,
  id: string,
  act: 'approve' | 'deny' | 'revoke',
): Promise<ApiResponse> {
  return api.post(`/api/v1/access/elevations/${id}/${act}`, undefined, {
    token: member.tokens.accessToken,
  });
}

/** Asks for `role` as `member` and has `approver` approve it; throws on anything unexpected. */
export async function grantElevation(
  api: ApiClient,
  member: Member,
  approver: Member,
  role: Role,
  minutes = 30,
): Promise<JsonBody> {
  const requested = await requestElevation(api, member, role, minutes);
  if (requested.status !== 201) {
    throw new Error(`requesting ${role}: expected 201, got ${requested.status} ${requested.text}`);
  }
  const approved = await decideElevation(api, approver, requested.body.id, 'approve');
  if (approved.status !== 200) {
    throw new Error(`approving ${role}: expected 200, got ${approved.status} ${approved.text}`);
  }

  return approved.body;
}
