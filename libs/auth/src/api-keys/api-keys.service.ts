import { HttpStatus, Inject, Injectable } from '@nestjs/common';

import { AuditService } from '@parley/audit';
import { AbilityFactory, ApiKeyScope, SCOPE_GRANTS, subjectOf } from '@parley/authz';
import {
  APP_CONFIG,
  Actor,
  AppConfig,
  Clock,
  CommonErrorCode,
  ForbiddenProblem,
  NotFoundProblem,
  ProblemException,
  RequestContext,
  baseRoleOf,
} from '@parley/core';
import { FieldCipher, tokenDigest } from '@parley/crypto';
import { TenantTransactions } from '@parley/database';

import { ApiKeyAuthenticator } from './api-key-authenticator';
import { formatApiKey, newLookupPrefix, newSecret, API_KEY_MARK } from './api-key-format';
import { ApiKeysErrorCode, ApiKeysProblem } from './api-keys.errors';
import { ApiKeyStatus, ApiKeyView, CreateApiKeyDto, IssuedApiKeyView } from './api-keys.dto';

const DAY_MS = 24 * 3600 * 1000;
/** Keys expire: 90 days unless asked otherwise, never more than 366 (see the threat model). */
const DEFAULT_LIFETIME_MS = 90 * DAY_MS;
const MAX_LIFETIME_MS = 366 * DAY_MS;
/** A prefix collision (40 random bits) is rare; a few fresh draws make it vanish. */
const PREFIX_ATTEMPTS = 5;

interface KeyRow {
  id: string;
  organization_id: string;
  name: string;
  lookup_prefix: string;
  previous_valid_until: Date | null;
  scopes: string[];
  created_by: string | null;
  creator_name: string | null;
  created_at: Date;
  expires_at: Date;
  rotated_at: Date | null;
  revoked_at: Date | null;
  last_used_at: Date | null;
  last_used_ip: string | null;
}

const SELECT_KEYS = `
  select k.id, k.organization_id, k.name, k.lookup_prefix, k.previous_valid_until, k.scopes,
         k.created_by, u.name as creator_name, k.created_at, k.expires_at, k.rotated_at,
         k.revoked_at, k.last_used_at, k.last_used_ip
    from api_keys k
    left join users u on u.organization_id = k.organization_id and u.id = k.created_by`;

type MemberActor = Extract<Actor, { type: 'user' }>;

/**
 * Creates, lists, rotates and revokes API keys. Admins manage every key of the organization;
 * managers create keys and manage their own. A key never manages keys (its routes refuse it).
 */
@Injectable()
export class ApiKeysService {
  constructor(
    @Inject(APP_CONFIG) private readonly config: AppConfig,
    private readonly transactions: TenantTransactions,
    private readonly context: RequestContext,
    private readonly abilities: AbilityFactory,
    private readonly audit: AuditService,
    private readonly authenticator: ApiKeyAuthenticator,
    private readonly cipher: FieldCipher,
    private readonly clock: Clock,
  ) {}

  async create(input: CreateApiKeyDto): Promise<IssuedApiKeyView> {
    const actor = this.memberOrThrow();
    // A key outlives any elevation and always acts on its creator's own role, so it is issued on
    // that role: an elevated member cannot mint a key or a scope their own role does not allow.
    const standing: MemberActor = { ...actor, role: baseRoleOf(actor), elevation: undefined };
    if (!this.abilities.forActor(standing).can('create', 'ApiKey')) {
      throw new ForbiddenProblem('API keys are issued on your own role, not on an elevation.');
    }
    this.assertScopesWithinRole(standing, input.scopes);
    const now = this.clock.now();
    const expiresAt = this.expiryOf(input.expiresAt, now.getTime());
    const organizationId = this.context.organizationIdOrThrow();
    const secret = newSecret();

    let id: string | undefined;
    let lookupPrefix = '';
    for (let attempt = 0; attempt < PREFIX_ATTEMPTS && !id; attempt += 1) {
      lookupPrefix = newLookupPrefix();
      const rows: { id: string }[] = await this.transactions.manager.query(
        `insert into api_keys
           (organization_id, name, lookup_prefix, secret_hash, scopes, created_by, created_at, expires_at)
         values ($1, $2, $3, $4, $5, $6, $7, $8)
         on conflict (lookup_prefix) do nothing
         returning id`,
        [
          organizationId,
          input.name,
          lookupPrefix,
          tokenDigest(secret),
          input.scopes,
          actor.id,
          now,
          expiresAt,
        ],
      );
      id = rows[0]?.id;
    }
    if (!id) {
      throw new Error('Could not draw a free API key prefix');
    }
    // An unknown-prefix lookup for this prefix may be cached; the new key must work at once here.
    this.authenticator.forget(lookupPrefix);
    await this.audit.record(
      organizationId,
      'api_key.created',
      { scopes: input.scopes, expiresAt: expiresAt.toISOString() },
      { type: 'api_key', id },
    );

    return {
      ...toView(await this.findRowOrThrow(id), now.getTime()),
      key: formatApiKey({ lookupPrefix, secret }),
    };
  }

  /** Every key the caller may see (all for admins, their own for managers), newest first. */
  async list(): Promise<ApiKeyView[]> {
    const rows: KeyRow[] = await this.transactions.manager.query(
      `${SELECT_KEYS} order by k.created_at desc, k.id desc`,
    );
    const ability = this.abilities.forActor(this.context.actor);
    const now = this.clock.nowMs();

    const visible = rows.filter((row) => ability.can('read', this.subjectOf(row)));

    return (await this.withCreatorNames(visible)).map((row) => toView(row, now));
  }

  /**
   * Issues a new secret; the one it replaces keeps working for API_KEY_ROTATION_OVERLAP_SECONDS.
   * Rotating again within the overlap ends the oldest secret at once: only two ever work.
   */
  async rotate(id: string): Promise<IssuedApiKeyView> {
    const row = await this.lockManageableOrThrow(id, 'update');
    const now = this.clock.nowMs();
    if (statusOf(row, now) !== 'active') {
      throw new ApiKeysProblem(
        ApiKeysErrorCode.ApiKeyInactive,
        'Only an active key can be rotated; create a new one instead.',
        HttpStatus.CONFLICT,
      );
    }
    const overlapMs = this.config.apiKeyRotationOverlapSeconds * 1000;
    const previousValidUntil = overlapMs > 0 ? new Date(now + overlapMs) : null;
    const secret = newSecret();
    await this.transactions.manager.query(
      `update api_keys
          set previous_secret_hash = case when $3::timestamptz is null then null else secret_hash end,
              previous_valid_until = $3::timestamptz,
              secret_hash = $2,
              rotated_at = $4
        where id = $1`,
      [row.id, tokenDigest(secret), previousValidUntil, new Date(now)],
    );
    this.transactions.afterCommit(() => this.authenticator.forget(row.lookup_prefix));
    await this.audit.record(
      row.organization_id,
      'api_key.rotated',
      { previousSecretValidUntil: previousValidUntil ? previousValidUntil.toISOString() : null },
      { type: 'api_key', id: row.id },
    );

    return {
      ...toView(await this.findRowOrThrow(row.id), now),
      key: formatApiKey({ lookupPrefix: row.lookup_prefix, secret }),
    };
  }

  /** Ends a key at once (on this instance at commit, on others within SESSION_CACHE_MS). */
  async revoke(id: string): Promise<void> {
    const row = await this.lockManageableOrThrow(id, 'delete');
    if (row.revoked_at) {
      return;
    }
    await this.transactions.manager.query(`update api_keys set revoked_at = $2 where id = $1`, [
      row.id,
      this.clock.now(),
    ]);
    this.transactions.afterCommit(() => this.authenticator.forget(row.lookup_prefix));
    await this.audit.record(
      row.organization_id,
      'api_key.revoked',
      {},
      {
        type: 'api_key',
        id: row.id,
      },
    );
  }

  private memberOrThrow(): MemberActor {
    const actor = this.context.actor;
    if (actor?.type !== 'user') {
      throw new ForbiddenProblem('Only members manage API keys.');
    }

    return actor;
  }

  /**
   * A key may not hold a scope its creator's role cannot use today: such a scope would lie
   * dormant and wake up if the creator were ever promoted.
   */
  private assertScopesWithinRole(actor: MemberActor, scopes: ApiKeyScope[]): void {
    const ability = this.abilities.forActor(actor);
    const refused = scopes.filter((scope) =>
      SCOPE_GRANTS[scope].some((grant) =>
        grant.actions.some((action) => !ability.can(action, grant.subject)),
      ),
    );
    if (refused.length > 0) {
      throw new ApiKeysProblem(
        ApiKeysErrorCode.ScopeNotAllowed,
        `Your role cannot grant these scopes: ${refused.join(', ')}.`,
        HttpStatus.FORBIDDEN,
      );
    }
  }

  private expiryOf(requested: string | undefined, now: number): Date {
    if (requested === undefined) {
      return new Date(now + DEFAULT_LIFETIME_MS);
    }
    const expiresAt = Date.parse(requested);
    if (Number.isNaN(expiresAt) || expiresAt <= now || expiresAt > now + MAX_LIFETIME_MS) {
      throw new ProblemException(HttpStatus.BAD_REQUEST, CommonErrorCode.ValidationFailed, {
        detail: 'expiresAt must be in the future and at most 366 days away',
        errors: [
          { field: 'expiresAt', message: 'must be in the future and at most 366 days away' },
        ],
      });
    }

    return new Date(expiresAt);
  }

  /** The key, locked, if the caller may `action` it; 404 otherwise, so ids reveal nothing. */
  private async lockManageableOrThrow(id: string, action: 'update' | 'delete'): Promise<KeyRow> {
    const rows: KeyRow[] = await this.transactions.manager.query(
      `${SELECT_KEYS} where k.id = $1 for update of k`,
      [id],
    );
    const row = rows[0];
    if (!row || !this.abilities.forActor(this.context.actor).can(action, this.subjectOf(row))) {
      throw new NotFoundProblem('API key');
    }

    return row;
  }

  private async findRowOrThrow(id: string): Promise<KeyRow> {
    const rows: KeyRow[] = await this.transactions.manager.query(`${SELECT_KEYS} where k.id = $1`, [
      id,
    ]);
    if (!rows[0]) {
      throw new NotFoundProblem('API key');
    }

    return (await this.withCreatorNames(rows))[0];
  }

  /** Member names are sealed in the users table; the joined rows carry them sealed. */
  private withCreatorNames(rows: KeyRow[]): Promise<KeyRow[]> {
    return this.cipher.openRows(this.transactions.manager, rows, 'creator_name', (row) => ({
      organizationId: row.organization_id,
      table: 'users',
      column: 'name',
      rowId: row.created_by,
    }));
  }

  private subjectOf(row: KeyRow) {
    return subjectOf('ApiKey', { organizationId: row.organization_id, createdBy: row.created_by });
  }
}

function statusOf(row: KeyRow, now: number): ApiKeyStatus {
  if (row.revoked_at) {
    return 'revoked';
  }
  if (!row.created_by) {
    return 'creator_removed';
  }

  return new Date(row.expires_at).getTime() <= now ? 'expired' : 'active';
}

function iso(value: Date | null): string | null {
  return value ? new Date(value).toISOString() : null;
}

function toView(row: KeyRow, now: number): ApiKeyView {
  const previousValidUntil =
    row.previous_valid_until && new Date(row.previous_valid_until).getTime() > now
      ? row.previous_valid_until
      : null;

  return {
    id: row.id,
    name: row.name,
    prefix: `${API_KEY_MARK}${row.lookup_prefix}`,
    scopes: row.scopes,
    status: statusOf(row, now),
    createdBy:
      row.created_by && row.creator_name !== null
        ? { id: row.created_by, name: row.creator_name }
        : null,
    createdAt: new Date(row.created_at).toISOString(),
    expiresAt: new Date(row.expires_at).toISOString(),
    rotatedAt: iso(row.rotated_at),
    previousSecretValidUntil: iso(previousValidUntil),
    revokedAt: iso(row.revoked_at),
    lastUsedAt: iso(row.last_used_at),
    lastUsedIp: row.last_used_ip,
  };
}
