import { createHash } from 'node:crypto';

import type { ObservedAuditEntry } from '@parley/audit';
import { Actor } from '@parley/core';

import {
  AnswerFacts,
  addressDigest,
  answerSignals,
  useAddressDigestKey,
  auditSignals,
  isExportRoute,
  loginFailureObservations,
  rateLimitName,
} from './signals';

const ORGANIZATION = '0b6f1c52-8a8e-4a5e-9d55-7c1f1f3a0b11';
const MEMBER = '6f1c1a52-8a8e-4a5e-9d55-7c1f1f3a0b22';
const OTHER = '7a2d2b63-9b9f-4b6f-8e66-8d2a2a4b1c33';
const admin: Actor = { type: 'user', id: OTHER, role: 'admin', sessionId: 's' };
const apiKey: Actor = {
  type: 'apiKey',
  id: '9c4f4d85-1d1b-4d8a-8a88-af4c4c6d3e55',
  userId: OTHER,
  role: 'admin',
  scopes: ['conversations:read'],
};

function answer(overrides: Partial<AnswerFacts>): AnswerFacts {
  return {
    method: 'GET',
    route: '/api/v1/conversations/:id',
    status: 200,
    actor: admin,
    organizationId: ORGANIZATION,
    ip: '203.0.113.9',
    ...overrides,
  };
}

function entry(overrides: Partial<ObservedAuditEntry>): ObservedAuditEntry {
  return {
    organizationId: ORGANIZATION,
    action: 'auth.logout',
    metadata: {},
    actor: admin,
    ip: undefined,
    ...overrides,
  };
}

function rules(signals: { observation: { rule: string } }[]): string[] {
  return signals.map((signal) => signal.observation.rule);
}

useAddressDigestKey(Buffer.alloc(32, 9));

describe('detection signals', () => {
  it('digests an address with a key, never as a bare hash anyone can reverse', () => {
    expect(addressDigest('203.0.113.9')).toMatch(/^[0-9a-f]{64}$/);
    expect(addressDigest('203.0.113.9')).not.toBe(
      createHash('sha256').update('203.0.113.9').digest('hex'),
    );
    expect(addressDigest('2001:db8:1:2::5')).toBe(addressDigest('2001:db8:1:2:ffff::1'));
  });

  it('counts a refused sign-in per account and per address, the address across organizations', () => {
    const observations = loginFailureObservations({
      organizationId: ORGANIZATION,
      accountKey: `user:${MEMBER}`,
      address: '203.0.113.9',
    });

    expect(observations).toEqual([
      {
        rule: 'failed_login_burst_account',
        organizationId: ORGANIZATION,
        key: `user:${MEMBER}`,
        subject: { type: 'user', id: MEMBER },
      },
      {
        rule: 'failed_login_burst_address',
        organizationId: null,
        key: addressDigest('203.0.113.9'),
        subject: { type: 'address', id: addressDigest('203.0.113.9') },
      },
    ]);
    expect(
      rules(loginFailureObservations({ address: '203.0.113.9' }).map((o) => ({ observation: o }))),
    ).toEqual(['failed_login_burst_address']);
  });

  it('counts 404s only on routes with an id, and only with a caller', () => {
    expect(rules(answerSignals(answer({ status: 404 })))).toEqual(['cross_tenant_probing']);
    expect(rules(answerSignals(answer({ status: 404, route: '/api/v1/conversations' })))).toEqual(
      [],
    );
    expect(rules(answerSignals(answer({ status: 404, route: undefined })))).toEqual([]);
    expect(rules(answerSignals(answer({ status: 404, actor: undefined })))).toEqual([]);
    expect(rules(answerSignals(answer({ status: 403 })))).toEqual([]);
  });

  it('counts successful deletions and export reads per caller', () => {
    expect(rules(answerSignals(answer({ method: 'DELETE', status: 204 })))).toEqual([
      'mass_deletion',
    ]);
    expect(rules(answerSignals(answer({ method: 'DELETE', status: 404 })))).toEqual([
      'cross_tenant_probing',
    ]);
    expect(rules(answerSignals(answer({ route: '/api/v1/audit/events' })))).toEqual([
      'mass_export',
    ]);
    expect(rules(answerSignals(answer({ route: '/api/v1/audit/events', status: 400 })))).toEqual(
      [],
    );
    expect(isExportRoute('GET', '/api/v1/audit/export')).toBe(true);
    expect(isExportRoute('GET', '/api/v1/compliance/subjects/:id/export')).toBe(true);
    expect(isExportRoute('POST', '/api/v1/audit/export')).toBe(false);
    expect(isExportRoute('GET', '/api/v1/exporters')).toBe(false);
    expect(isExportRoute('GET', '/api/v1/conversations')).toBe(false);
  });

  it('counts every 429 per address, whoever the caller', () => {
    const signals = answerSignals(answer({ status: 429, actor: undefined }));

    expect(signals).toEqual([
      {
        observation: {
          rule: 'rate_limit_escalation',
          organizationId: null,
          key: addressDigest('203.0.113.9'),
          subject: { type: 'address', id: addressDigest('203.0.113.9') },
        },
      },
    ]);
  });

  it('checks an API key against the addresses it was seen from, by digest', () => {
    const [signal] = answerSignals(answer({ actor: apiKey, route: '/api/v1/conversations' }));

    expect(signal.observation).toMatchObject({
      rule: 'api_key_new_address',
      subject: { type: 'api_key', id: apiKey.id },
    });
    expect(signal.novelty).toEqual({
      key: `api_key:${apiKey.id}`,
      value: addressDigest('203.0.113.9'),
    });
    expect(JSON.stringify(signal)).not.toContain('203.0.113.9');
  });

  it('turns a refresh-token reuse into one observation per session', () => {
    const signals = auditSignals(
      entry({
        action: 'auth.refresh_token_reused',
        target: { type: 'session', id: MEMBER },
        actor: null,
      }),
    );

    expect(signals).toEqual([
      {
        observation: {
          rule: 'refresh_token_reuse',
          organizationId: ORGANIZATION,
          key: `session:${MEMBER}`,
          subject: { type: 'session', id: MEMBER },
        },
      },
    ]);
  });

  it('counts role changes to or from admin, and no other', () => {
    const change = (from: string, to: string) =>
      auditSignals(
        entry({
          action: 'user.role_changed',
          target: { type: 'user', id: MEMBER },
          metadata: { from, to },
        }),
      );

    expect(change('agent', 'admin')[0].observation).toMatchObject({
      rule: 'admin_privilege_change',
      key: `role:user:${MEMBER}`,
      details: { kind: 'role', from: 'agent', to: 'admin', changedBy: { type: 'user', id: OTHER } },
    });
    expect(rules(change('admin', 'viewer'))).toEqual(['admin_privilege_change']);
    expect(change('agent', 'manager')).toEqual([]);
  });

  it('counts an approved elevation to admin for its requester', () => {
    const approved = (role: string) =>
      auditSignals(
        entry({
          action: 'elevation.approved',
          target: { type: 'elevation', id: OTHER },
          metadata: { role, requesterId: MEMBER },
        }),
      );

    expect(approved('admin')[0].observation).toMatchObject({
      subject: { type: 'user', id: MEMBER },
      details: { kind: 'elevation', elevationId: OTHER },
    });
    expect(approved('manager')).toEqual([]);
  });

  it('asks for the role before counting MFA changes and new members', () => {
    const reset = auditSignals(
      entry({ action: 'mfa.reset', target: { type: 'user', id: MEMBER } }),
    );
    expect(reset).toHaveLength(1);
    expect(reset[0].whenAdmin).toEqual({ userId: MEMBER });
    expect(reset[0].observation.details).toMatchObject({ kind: 'mfa', change: 'mfa_reset' });

    const added = auditSignals(
      entry({ action: 'user.created', target: { type: 'user', id: MEMBER } }),
    );
    expect(added[0].whenAdmin).toEqual({ userId: MEMBER });
    // The first admin of a sign-up is created before anyone acts.
    expect(
      auditSignals(
        entry({ action: 'user.created', target: { type: 'user', id: MEMBER }, actor: null }),
      ),
    ).toEqual([]);
    expect(auditSignals(entry({ action: 'auth.logout' }))).toEqual([]);
  });

  it('names the limit behind a 429 from its header or its problem code', () => {
    expect(rateLimitName(['retry-after-api', 'x-ratelimit-limit-api'], '{}')).toBe('api');
    expect(rateLimitName(['retry-after-credentials'], '{}')).toBe('credentials');
    expect(rateLimitName(['retry-after'], '{"status":429,"code":"account_locked"}')).toBe(
      'login_account',
    );
    expect(rateLimitName([], '{"code":"too_many_attempts"}')).toBe('login_address');
    expect(rateLimitName([], '{"code":"mfa_locked"}')).toBe('mfa');
    expect(rateLimitName([], '{"code":"something_else"}')).toBe('other');
    expect(rateLimitName([], undefined)).toBe('other');
  });
});
