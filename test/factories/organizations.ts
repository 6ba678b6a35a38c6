import { Role } from '@parley/core';

import { ApiClient, ApiResponse } from '../support/api-client';

import { uniqueEmail, uniquePassword, uniqueSlug } from './unique';

export interface TokenPair {
  accessToken: string;
  refreshToken: string;
  tokenType: 'Bearer';
  expiresIn: number;
}

export interface Member {
  id: string;
  email: string;
  name: string;
  role: Role;
  password: string;
  tokens: TokenPair;
}

export interface SignedUpOrganization {
  id: string;
  slug: string;
  name: string;
  admin: Member;
}

export interface SignupInput {
  organizationName: string;
  organizationSlug: string;
  email: string;
  password: string;
  name: string;
}

export function signupInput(overrides: Partial<SignupInput> = {}): SignupInput {
  const organizationSlug = overrides.organizationSlug ?? uniqueSlug();

  return {
    organizationName: `Org ${organizationSlug}`,
    organizationSlug,
    email: uniqueEmail('admin'),
    password: uniquePassword(),
    name: 'First Admin',
    ...overrides,
  };
}

function expectStatus(response: ApiResponse, status: number, what: string): void {
  if (response.status !== status) {
    throw new Error(`${what}: expected ${status}, got ${response.status} ${response.text}`);
  }
}

/** Signs up a new organization with a unique slug; its first member is an admin. */
export async function signupOrganization(
  api: ApiClient,
  overrides: Partial<SignupInput> = {},
  request: { headers?: Record<string, string> } = {},
): Promise<SignedUpOrganization> {
  const input = signupInput(overrides);
  const response = await api.post('/api/v1/auth/signup', input, request);
  expectStatus(response, 201, 'signup');
  const { organization, user, accessToken, refreshToken, expiresIn } = response.body;

  return {
    id: organization.id,
    slug: organization.slug,
    name: input.organizationName,
    admin: {
      id: user.id,
      email: user.email,
      name: input.name,
      role: user.role,
      password: input.password,
      tokens: { accessToken, refreshToken, tokenType: 'Bearer', expiresIn },
    },
  };
}
