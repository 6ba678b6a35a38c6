import { Injectable } from '@nestjs/common';

import { Clock, Role } from '@parley/core';
import { TenantTransactions } from '@parley/database';
import { OrganizationsService, UserEntity, UsersService } from '@parley/tenancy';

import { API_KEY_MARK } from '../api-keys/api-key-format';

import {
  AccessReviewView,
  MemberReviewView,
  ReviewedApiKeyView,
  ReviewedElevationView,
} from './access-review.dto';
import { ElevationsService } from './elevations.service';

const DAY_MS = 24 * 3600 * 1000;
const INACTIVE_AFTER_DAYS = 90;

interface KeyRow {
  id: string;
  name: string;
  lookup_prefix: string;
  created_by: string;
  expires_at: Date;
  last_used_at: Date | null;
}

interface ElevationRow {
  id: string;
  requester_id: string;
  role: Role;
  starts_at: Date;
  ends_at: Date;
}

/**
 * The periodic access review: every member with their own role, last login, MFA, the API keys
 * that still work and the elevations running now, and who has not signed in for 90 days. Each
 * part is one query, whatever the number of members.
 */
@Injectable()
export class AccessReviewService {
  constructor(
    private readonly transactions: TenantTransactions,
    private readonly clock: Clock,
    private readonly users: UsersService,
    private readonly organizations: OrganizationsService,
    private readonly elevations: ElevationsService,
  ) {}

  async review(): Promise<AccessReviewView> {
    await this.elevations.expireDue();
    const now = this.clock.now();
    const manager = this.transactions.manager;

    const members = await this.users.list();
    const organization = await this.organizations.currentOrThrow();
    const enrolled: { user_id: string }[] = await manager.query(
      'select user_id from mfa_totp_factors where confirmed_at is not null',
    );
    const keys: KeyRow[] = await manager.query(
      `select id, name, lookup_prefix, created_by, expires_at, last_used_at
         from api_keys
        where revoked_at is null and expires_at > $1 and created_by is not null
        order by created_at, id`,
      [now],
    );
    const elevations: ElevationRow[] = await manager.query(
      `select id, requester_id, role, starts_at, ends_at
         from access_elevations
        where status = 'approved' and starts_at <= $1 and ends_at > $1
        order by starts_at, id`,
      [now],
    );

    const enrolledIds = new Set(enrolled.map((row) => row.user_id));
    const keysByMember = groupBy(keys, (key) => key.created_by, toKeyView);
    const elevationsByMember = groupBy(
      elevations,
      (elevation) => elevation.requester_id,
      toElevationView,
    );
    const items = members.map((member) =>
      toMemberReview(member, {
        now: now.getTime(),
        mfaEnrolled: enrolledIds.has(member.id),
        mfaRequired: organization.mfaRequiredRoles.includes(member.role),
        keys: keysByMember.get(member.id) ?? [],
        elevations: elevationsByMember.get(member.id) ?? [],
      }),
    );

    return {
      generatedAt: now.toISOString(),
      inactiveAfterDays: INACTIVE_AFTER_DAYS,
      items,
      summary: {
        members: items.length,
        inactive: items.filter((item) => item.inactive).length,
        mfaEnrolled: items.filter((item) => item.mfa.enrolled).length,
        mfaMissing: items.filter((item) => item.mfa.required && !item.mfa.enrolled).length,
        activeApiKeys: items.reduce((sum, item) => sum + item.apiKeys.active, 0),
        activeElevations: items.reduce((sum, item) => sum + item.elevations.length, 0),
      },
    };
  }
}

/** No login within the period, or none at all by a member who has existed for longer. */
function isInactive(lastLoginAt: Date | null, createdAt: Date, now: number): boolean {
  const since = lastLoginAt ?? createdAt;

  return now - since.getTime() > INACTIVE_AFTER_DAYS * DAY_MS;
}

function groupBy<T, V>(
  rows: T[],
  keyOf: (row: T) => string,
  view: (row: T) => V,
): Map<string, V[]> {
  const groups = new Map<string, V[]>();
  for (const row of rows) {
    const group = groups.get(keyOf(row)) ?? [];
    group.push(view(row));
    groups.set(keyOf(row), group);
  }

  return groups;
}

function toMemberReview(
  member: UserEntity,
  facts: {
    now: number;
    mfaEnrolled: boolean;
    mfaRequired: boolean;
    keys: ReviewedApiKeyView[];
    elevations: ReviewedElevationView[];
  },
): MemberReviewView {
  return {
    id: member.id,
    email: member.email,
    name: member.name,
    role: member.role,
    createdAt: member.createdAt.toISOString(),
    lastLoginAt: member.lastLoginAt ? member.lastLoginAt.toISOString() : null,
    inactive: isInactive(member.lastLoginAt, member.createdAt, facts.now),
    mfa: { enrolled: facts.mfaEnrolled, required: facts.mfaRequired },
    apiKeys: { active: facts.keys.length, items: facts.keys },
    elevations: facts.elevations,
  };
}

function toKeyView(row: KeyRow): ReviewedApiKeyView {
  return {
    id: row.id,
    name: row.name,
    prefix: `${API_KEY_MARK}${row.lookup_prefix}`,
    expiresAt: new Date(row.expires_at).toISOString(),
    lastUsedAt: row.last_used_at ? new Date(row.last_used_at).toISOString() : null,
  };
}

function toElevationView(row: ElevationRow): ReviewedElevationView {
  return {
    id: row.id,
    role: row.role,
    startsAt: new Date(row.starts_at).toISOString(),
    endsAt: new Date(row.ends_at).toISOString(),
  };
}
