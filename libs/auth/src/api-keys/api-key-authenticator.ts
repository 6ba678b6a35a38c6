import { randomBytes } from 'node:crypto';

import { Inject, Injectable, Logger } from '@nestjs/common';
import { DataSource } from 'typeorm';

import { AuditEventTypes, AuditService } from '@parley/audit';
import { RoutePolicy, apiKeyMayReach } from '@parley/authz';
import { APP_CONFIG, Actor, AppConfig, Clock, RequestContext, Role } from '@parley/core';
import { constantTimeEqual, tokenDigest } from '@parley/crypto';
import { runTenantTransaction } from '@parley/database';

import { AuthErrorCode, AuthProblem } from '../auth.errors';

import { parseApiKey } from './api-key-format';
import { InvalidApiKeyProblem } from './api-keys.errors';

export type ApiKeyActor = Extract<Actor, { type: 'apiKey' }>;

export type ApiKeyRefusal =
  AuditEventTypes['api_key.refused']['reason'] | 'unknown_key' | 'wrong_secret';

/** What authentication needs of a key, read in its organization's transaction. */
interface KeyRecord {
  id: string;
  organizationId: string;
  secretHash: Buffer;
  previousSecretHash: Buffer | null;
  previousValidUntil: number | null;
  scopes: string[];
  createdBy: string | null;
  creatorRole: Role | null;
  expiresAt: number;
  revokedAt: number | null;
  lastUsedAt: number | null;
}

interface KeyRow {
  id: string;
  organization_id: string;
  secret_hash: Buffer;
  previous_secret_hash: Buffer | null;
  previous_valid_until: Date | null;
  scopes: string[];
  created_by: string | null;
  creator_role: Role | null;
  expires_at: Date;
  revoked_at: Date | null;
  last_used_at: Date | null;
}

interface CachedLookup {
  /** Undefined when no key has this prefix: unknown prefixes are cached too, for equal timing. */
  record: KeyRecord | undefined;
  checkedAt: number;
}

/** A prefix no key has runs its lookup in this organization, which owns no rows. */
const NO_ORGANIZATION = '00000000-0000-0000-0000-000000000000';

const LAST_USE_INTERVAL_MS = 60_000;
const CACHE_LIMIT = 50_000;

/**
 * Resolves `Authorization: ApiKey <key>` to an actor. Every refusal (unknown prefix, wrong
 * secret, expired, revoked, rotated out, creator gone) is one answer after the same work: the
 * same queries, a tenant transaction even for an unknown prefix, and both digest comparisons.
 * A key read from the database is trusted for at most SESSION_CACHE_MS, like a session, so a
 * creator's new role or a revocation on another instance applies within that time.
 */
@Injectable()
export class ApiKeyAuthenticator {
  private readonly logger = new Logger(ApiKeyAuthenticator.name);
  private readonly cache = new Map<string, CachedLookup>();
  /** Compared against when a key has no such digest, so the comparison always happens. */
  private readonly decoy = randomBytes(32);

  constructor(
    @Inject(APP_CONFIG) private readonly config: AppConfig,
    private readonly dataSource: DataSource,
    private readonly audit: AuditService,
    private readonly context: RequestContext,
    private readonly clock: Clock,
  ) {}

  async authenticate(
    presented: string,
    policy: RoutePolicy,
  ): Promise<{ actor: ApiKeyActor; organizationId: string }> {
    if (!apiKeyMayReach(policy)) {
      throw new AuthProblem(
        AuthErrorCode.TokenNotAccepted,
        'API keys are not accepted on this route; sign in as a member.',
      );
    }
    // The format is public, so refusing a malformed key before any lookup reveals nothing.
    const parts = parseApiKey(presented);
    if (!parts) {
      throw new InvalidApiKeyProblem();
    }

    const now = this.clock.nowMs();
    const record = await this.lookup(parts.lookupPrefix, now);
    const refusal = this.check(record, tokenDigest(parts.secret), now);
    if (refusal || !record) {
      await this.refuse(record, refusal ?? 'unknown_key');
      throw new InvalidApiKeyProblem();
    }

    await this.recordUse(record, now);

    return {
      actor: {
        type: 'apiKey',
        id: record.id,
        userId: record.createdBy as string,
        role: record.creatorRole as Role,
        scopes: record.scopes,
      },
      organizationId: record.organizationId,
    };
  }

  /** Drops a key from this process's cache (after a rotation or revocation commits). */
  forget(lookupPrefix: string): void {
    this.cache.delete(lookupPrefix);
  }

  private async lookup(lookupPrefix: string, now: number): Promise<KeyRecord | undefined> {
    const cached = this.cache.get(lookupPrefix);
    if (cached && now - cached.checkedAt < this.config.sessionCacheMs) {
      return cached.record;
    }

    const found: { id: string | null }[] = await this.dataSource.query(
      'select parley_organization_by_api_key_prefix($1) as id',
      [lookupPrefix],
    );
    const rows: KeyRow[] = await runTenantTransaction(
      this.dataSource,
      found[0]?.id ?? NO_ORGANIZATION,
      (manager) =>
        manager.query(
          `select k.id, k.organization_id, k.secret_hash, k.previous_secret_hash,
                  k.previous_valid_until, k.scopes, k.created_by, u.role as creator_role,
                  k.expires_at, k.revoked_at, k.last_used_at
             from api_keys k
             left join users u on u.organization_id = k.organization_id and u.id = k.created_by
            where k.lookup_prefix = $1`,
          [lookupPrefix],
        ),
    );
    const record = rows[0] ? toRecord(rows[0]) : undefined;
    if (this.cache.size >= CACHE_LIMIT) {
      this.cache.clear();
    }
    this.cache.set(lookupPrefix, { record, checkedAt: now });

    return record;
  }

  /** Why a key is refused, or undefined when it is good; both digests are always compared. */
  private check(
    record: KeyRecord | undefined,
    presentedHash: Buffer,
    now: number,
  ): ApiKeyRefusal | undefined {
    const matchesCurrent = constantTimeEqual(presentedHash, record?.secretHash ?? this.decoy);
    const matchesPrevious = constantTimeEqual(
      presentedHash,
      record?.previousSecretHash ?? this.decoy,
    );
    if (!record) {
      return 'unknown_key';
    }
    if (!matchesCurrent && !(matchesPrevious && record.previousSecretHash)) {
      return 'wrong_secret';
    }
    if (record.revokedAt !== null) {
      return 'revoked';
    }
    if (record.expiresAt <= now) {
      return 'expired';
    }
    if (!matchesCurrent && (record.previousValidUntil ?? 0) <= now) {
      return 'rotated_out';
    }
    if (!record.createdBy || !record.creatorRole) {
      return 'creator_removed';
    }

    return undefined;
  }

  /**
   * A refusal of the right secret (expired, revoked, rotated out, creator gone) is a security
   * event: someone still holds a key that should be gone. Wrong secrets and unknown prefixes
   * can be sent by anyone, so they are counted and logged, not written to the audit trail.
   */
  private async refuse(record: KeyRecord | undefined, reason: ApiKeyRefusal): Promise<void> {
    if (!record || reason === 'unknown_key' || reason === 'wrong_secret') {
      this.logger.debug({ reason, keyId: record?.id }, 'API key refused');

      return;
    }
    this.logger.warn(
      { reason, keyId: record.id, organizationId: record.organizationId },
      'API key refused',
    );
    const metadata: AuditEventTypes['api_key.refused'] = { reason };
    await runTenantTransaction(this.dataSource, record.organizationId, (manager) =>
      this.audit.write(manager, {
        organizationId: record.organizationId,
        action: 'api_key.refused',
        metadata,
        target: { type: 'api_key', id: record.id },
        actor: null,
      }),
    );
  }

  /** Keeps the last use time and address, written at most once a minute per key. */
  private async recordUse(record: KeyRecord, now: number): Promise<void> {
    if (record.lastUsedAt !== null && now - record.lastUsedAt < LAST_USE_INTERVAL_MS) {
      return;
    }
    record.lastUsedAt = now;
    await runTenantTransaction(this.dataSource, record.organizationId, (manager) =>
      manager.query(
        `update api_keys set last_used_at = $2, last_used_ip = $3
          where id = $1 and (last_used_at is null or last_used_at <= $4)`,
        [record.id, new Date(now), this.context.ip ?? null, new Date(now - LAST_USE_INTERVAL_MS)],
      ),
    );
  }
}

function toRecord(row: KeyRow): KeyRecord {
  return {
    id: row.id,
    organizationId: row.organization_id,
    secretHash: row.secret_hash,
    previousSecretHash: row.previous_secret_hash,
    previousValidUntil: row.previous_valid_until
      ? new Date(row.previous_valid_until).getTime()
      : null,
    scopes: row.scopes,
    createdBy: row.created_by,
    creatorRole: row.creator_role,
    expiresAt: new Date(row.expires_at).getTime(),
    revokedAt: row.revoked_at ? new Date(row.revoked_at).getTime() : null,
    lastUsedAt: row.last_used_at ? new Date(row.last_used_at).getTime() : null,
  };
}
