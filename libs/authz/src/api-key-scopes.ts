import { Action, RoutePolicy, Subject } from './policy.decorator';

/** What an API key may be granted. A key can never reach members, keys, sessions or settings. */
export const API_KEY_SCOPES = [
  'conversations:read',
  'conversations:write',
  'messages:write',
  'contacts:read',
  'contacts:write',
  'audit:read',
  'compliance:write',
] as const;

export type ApiKeyScope = (typeof API_KEY_SCOPES)[number];

export interface ScopeGrant {
  actions: Action[];
  subject: Subject;
}

/**
 * The abilities each scope adds. A key's ability is the intersection of these and its creator's
 * current role, so a scope never lets a key do what its creator could not.
 */
export const SCOPE_GRANTS: Record<ApiKeyScope, ScopeGrant[]> = {
  'conversations:read': [
    { actions: ['read'], subject: 'Conversation' },
    { actions: ['read'], subject: 'Message' },
  ],
  'conversations:write': [{ actions: ['create', 'update'], subject: 'Conversation' }],
  'messages:write': [{ actions: ['create'], subject: 'Message' }],
  'contacts:read': [{ actions: ['read'], subject: 'Contact' }],
  'contacts:write': [{ actions: ['create', 'update'], subject: 'Contact' }],
  'audit:read': [{ actions: ['read'], subject: 'AuditEvent' }],
  // The compliance routes (data-subject requests) are not built yet; they must use this subject.
  'compliance:write': [{ actions: ['create', 'update'], subject: 'DataSubjectRequest' }],
};

const REACHABLE_SUBJECTS = new Set<Subject>(
  Object.values(SCOPE_GRANTS).flatMap((grants) => grants.map((grant) => grant.subject)),
);

export function isApiKeyScope(value: string): value is ApiKeyScope {
  return (API_KEY_SCOPES as readonly string[]).includes(value);
}

/**
 * Whether an API key may call a route at all: only member routes that name an action on a
 * subject some scope reaches. Routes a service checks itself (`Policy.member()`: /me, logout,
 * sessions, MFA) and routes on members, keys or settings never accept a key.
 */
export function apiKeyMayReach(policy: RoutePolicy): boolean {
  return (
    policy.audience.includes('user') &&
    policy.action !== undefined &&
    policy.subject !== undefined &&
    REACHABLE_SUBJECTS.has(policy.subject)
  );
}
