import { createHmac } from 'node:crypto';

import type { ObservedAuditEntry } from '@parley/audit';
import { Actor } from '@parley/core';

import { LoginFailureSignal, addressIdentity } from '../login-throttle';

import { Novelty, Observation } from './detection.service';

/**
 * Pure mappings from what the server already records (refused sign-ins, audit entries, HTTP
 * answers) to the observations the rules count. Nothing here reads a database or a clock.
 */

let digestKey: Buffer | undefined;

/** Sets the key of address digests; DetectionModule does it once at boot from the KEK. */
export function useAddressDigestKey(key: Buffer): void {
  digestKey = key;
}

/**
 * A keyed HMAC-SHA256 of the address (IPv6 by its /64): alerts, logs and webhooks name an
 * address by it. Unkeyed, a digest of an IPv4 address is reversed by trying all of them.
 */
export function addressDigest(address: string): string {
  if (!digestKey) {
    throw new Error('Address digests need their key: useAddressDigestKey was not called');
  }

  return createHmac('sha256', digestKey).update(addressIdentity(address), 'utf8').digest('hex');
}

function addressSubject(address: string): { type: string; id: string } {
  return { type: 'address', id: addressDigest(address) };
}

/** The caller as a counting key and an alert subject; the system actor is never counted. */
export function actorIdentity(
  actor: Actor | null | undefined,
): { key: string; subject: { type: string; id: string } } | undefined {
  if (!actor || actor.type === 'system') {
    return undefined;
  }
  const type = actor.type === 'apiKey' ? 'api_key' : actor.type;

  return { key: `${type}:${actor.id}`, subject: { type, id: actor.id } };
}

export function loginFailureObservations(failure: LoginFailureSignal): Observation[] {
  const observations: Observation[] = [];
  if (failure.organizationId && failure.accountKey) {
    const member = failure.accountKey.startsWith('user:')
      ? failure.accountKey.slice('user:'.length)
      : undefined;
    observations.push({
      rule: 'failed_login_burst_account',
      organizationId: failure.organizationId,
      key: failure.accountKey,
      subject: member ? { type: 'user', id: member } : { type: 'account', id: failure.accountKey },
    });
  }
  if (failure.address) {
    observations.push({
      rule: 'failed_login_burst_address',
      organizationId: null,
      key: addressDigest(failure.address),
      subject: addressSubject(failure.address),
    });
  }

  return observations;
}

/** An observation that counts only when the member it names holds the admin role themself. */
export interface AuditSignal {
  observation: Observation;
  whenAdmin?: { userId: string };
}

/** The audit entries some rule counts: token reuse, and changes to admins' rights and MFA. */
export function auditSignals(entry: ObservedAuditEntry): AuditSignal[] {
  const by = actorIdentity(entry.actor);
  const changedBy = by ? { changedBy: by.subject } : {};
  const organizationId = entry.organizationId;
  const target = entry.target;

  if (entry.action === 'auth.refresh_token_reused' && target) {
    return [
      {
        observation: {
          rule: 'refresh_token_reuse',
          organizationId,
          key: `session:${target.id}`,
          subject: { type: 'session', id: target.id },
        },
      },
    ];
  }
  if (entry.action === 'user.role_changed' && target?.type === 'user') {
    const { from, to } = entry.metadata as { from?: string; to?: string };
    if (from !== 'admin' && to !== 'admin') {
      return [];
    }

    return [adminChange(organizationId, target.id, 'role', { from, to, ...changedBy })];
  }
  if (entry.action === 'elevation.approved') {
    const { role, requesterId } = entry.metadata as { role?: string; requesterId?: string };
    if (role !== 'admin' || !requesterId) {
      return [];
    }

    return [
      adminChange(organizationId, requesterId, 'elevation', {
        to: 'admin',
        elevationId: target?.id,
        ...changedBy,
      }),
    ];
  }
  if ((entry.action === 'mfa.removed' || entry.action === 'mfa.reset') && target?.type === 'user') {
    return [
      {
        ...adminChange(organizationId, target.id, 'mfa', {
          change: entry.action === 'mfa.removed' ? 'mfa_removed' : 'mfa_reset',
          ...changedBy,
        }),
        whenAdmin: { userId: target.id },
      },
    ];
  }
  // A member added by another member (not the first admin of a sign-up) who is an admin.
  if (
    entry.action === 'user.created' &&
    target?.type === 'user' &&
    entry.actor?.type === 'user' &&
    entry.actor.id !== target.id
  ) {
    return [
      {
        ...adminChange(organizationId, target.id, 'created', { to: 'admin', ...changedBy }),
        whenAdmin: { userId: target.id },
      },
    ];
  }

  return [];
}

function adminChange(
  organizationId: string,
  userId: string,
  kind: 'role' | 'elevation' | 'mfa' | 'created',
  details: Record<string, unknown>,
): AuditSignal {
  return {
    observation: {
      rule: 'admin_privilege_change',
      organizationId,
      key: `${kind}:user:${userId}`,
      subject: { type: 'user', id: userId },
      details: { kind, ...details },
    },
  };
}

/** What the HTTP hook knows of one answer. */
export interface AnswerFacts {
  method: string;
  /** The route template (`/api/v1/contacts/:id`); undefined for a path no route matched. */
  route: string | undefined;
  status: number;
  actor: Actor | undefined;
  organizationId: string | undefined;
  ip: string | undefined;
}

const AUDIT_LISTING = '/api/v1/audit/events';

/** Routes that hand out records in bulk: audit listing pages and every export. */
export function isExportRoute(method: string, route: string): boolean {
  return method === 'GET' && (route === AUDIT_LISTING || /\/exports?(\/|$|\.)/.test(route));
}

export function answerSignals(
  facts: AnswerFacts,
): { observation: Observation; novelty?: Novelty }[] {
  const signals: { observation: Observation; novelty?: Novelty }[] = [];
  if (facts.status === 429 && facts.ip) {
    signals.push({
      observation: {
        rule: 'rate_limit_escalation',
        organizationId: null,
        key: addressDigest(facts.ip),
        subject: addressSubject(facts.ip),
      },
    });
  }
  const caller = actorIdentity(facts.actor);
  if (!caller || !facts.organizationId || facts.route === undefined) {
    return signals;
  }
  const organizationId = facts.organizationId;
  const base = { organizationId, key: caller.key, subject: caller.subject };
  const succeeded = facts.status >= 200 && facts.status < 300;

  if (facts.status === 404 && facts.route.includes('/:')) {
    signals.push({
      observation: { ...base, rule: 'cross_tenant_probing', details: { route: facts.route } },
    });
  }
  if (succeeded && facts.method === 'DELETE') {
    signals.push({ observation: { ...base, rule: 'mass_deletion' } });
  }
  if (succeeded && isExportRoute(facts.method, facts.route)) {
    signals.push({
      observation: { ...base, rule: 'mass_export', details: { route: facts.route } },
    });
  }
  if (facts.actor?.type === 'apiKey' && facts.ip) {
    const digest = addressDigest(facts.ip);
    signals.push({
      observation: {
        ...base,
        rule: 'api_key_new_address',
        details: { addressDigest: digest },
      },
      novelty: { key: caller.key, value: digest },
    });
  }

  return signals;
}

const THROTTLER_LIMITS = ['api', 'credentials'];

const LIMIT_BY_CODE: Record<string, string> = {
  account_locked: 'login_account',
  too_many_attempts: 'login_address',
  mfa_locked: 'mfa',
  rate_limited: 'api',
};

/**
 * Which limit a 429 came from: the throttler names its header after the limit that tripped
 * (`retry-after-api`); the sign-in and MFA locks say it in their problem code.
 */
export function rateLimitName(headerNames: string[], payload: unknown): string {
  for (const limit of THROTTLER_LIMITS) {
    if (headerNames.includes(`retry-after-${limit}`)) {
      return limit;
    }
  }
  if (typeof payload === 'string') {
    const code = /"code"\s*:\s*"([a-z_]+)"/.exec(payload)?.[1];
    if (code && LIMIT_BY_CODE[code]) {
      return LIMIT_BY_CODE[code];
    }
  }

  return 'other';
}
