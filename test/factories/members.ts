import { ROLES, Role } from '@parley/core';

import { ApiClient } from '../support/api-client';

import { Member, SignedUpOrganization, TokenPair } from './organizations';
import { uniqueEmail, uniquePassword } from './unique';

/** Logs a member in and returns the token pair; throws on anything but 200. */
export async function login(
  api: ApiClient,
  organizationSlug: string,
  email: string,
  password: string,
): Promise<TokenPair> {
  const response = await api.post('/api/v1/auth/login', { organizationSlug, email, password });
  if (response.status !== 200) {
    throw new Error(`login of ${email}: expected 200, got ${response.status} ${response.text}`);
  }

  return response.body as TokenPair;
}

/** Adds a member with the given role through the admin, then logs the member in. */
export async function addMember(
  api: ApiClient,
  organization: SignedUpOrganization,
  role: Role,
  options: { login?: boolean; name?: string } = {},
): Promise<Member> {
  const input = {
    email: uniqueEmail(role),
    name: options.name ?? `Test ${role}`,
    role,
    password: uniquePassword(),
  };
  const response = await api.post('/api/v1/users', input, {
    token: organization.admin.tokens.accessToken,
  });
  if (response.status !== 201) {
    throw new Error(`adding a ${role}: expected 201, got ${response.status} ${response.text}`);
  }
  const tokens =
    options.login === false
      ? ({} as TokenPair)
      : await login(api, organization.slug, input.email, input.password);

  return {
    id: response.body.id,
    email: input.email,
    name: input.name,
    role,
    password: input.password,
    tokens,
  };
}

export type MembersByRole = Record<Role, Member>;

/** One logged-in member per role; the admin is the organization's first member. */
export async function addMemberOfEachRole(
  api: ApiClient,
  organization: SignedUpOrganization,
): Promise<MembersByRole> {
  const members = { admin: organization.admin } as MembersByRole;
  for (const role of ROLES) {
    if (role !== 'admin') {
      members[role] = await addMember(api, organization, role);
    }
  }

  return members;
}
