import { MigrationInterface, QueryRunner } from 'typeorm';

const SCOPES = [
  'conversations:read',
  'conversations:write',
  'messages:write',
  'contacts:read',
  'contacts:write',
  'audit:read',
  'compliance:write',
];

const scopeList = SCOPES.map((scope) => `'${scope}'`).join(', ');

/**
 * API keys for service-to-service calls. A key is `psk_<lookup_prefix>_<secret>`; only the
 * prefix (not secret) and the SHA-256 digest of the 256-bit secret are stored, the previous
 * digest too while a rotation's overlap lasts. A key of a deleted member is kept, with no
 * creator, so the audit trail can still name it; it no longer authenticates.
 */
export class AddApiKeys1764893100000 implements MigrationInterface {
  name = 'AddApiKeys1764893100000';

  async up(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query(`
      create table api_keys (
        id uuid primary key default gen_random_uuid(),
        organization_id uuid not null references organizations (id) on delete cascade,
        name text not null check (length(name) between 1 and 100),
        lookup_prefix text not null unique check (lookup_prefix ~ '^[a-z2-7]{8}$'),
        secret_hash bytea not null check (length(secret_hash) = 32),
        previous_secret_hash bytea check (length(previous_secret_hash) = 32),
        previous_valid_until timestamptz,
        scopes text[] not null
          check (cardinality(scopes) between 1 and ${SCOPES.length} and scopes <@ array[${scopeList}]),
        created_by uuid,
        created_at timestamptz not null default now(),
        expires_at timestamptz not null,
        rotated_at timestamptz,
        revoked_at timestamptz,
        last_used_at timestamptz,
        last_used_ip text,
        unique (organization_id, id),
        foreign key (organization_id, created_by) references users (organization_id, id)
          on delete set null (created_by),
        check ((previous_secret_hash is null) = (previous_valid_until is null))
      )`);
    await queryRunner.query(
      `create index api_keys_by_creator on api_keys (organization_id, created_by)`,
    );

    await queryRunner.query(`alter table api_keys enable row level security`);
    await queryRunner.query(`
      create policy organization_isolation on api_keys
        using (organization_id = nullif(current_setting('app.organization_id', true), '')::uuid)
        with check (organization_id = nullif(current_setting('app.organization_id', true), '')::uuid)`);

    // A presented key names its prefix before the tenant is known; like the refresh-token lookup,
    // this answers only an organization id for a value the caller already holds.
    await queryRunner.query(`
      create function parley_organization_by_api_key_prefix(p_prefix text) returns uuid
        language sql stable security definer set search_path = public, pg_temp
        as $$ select organization_id from api_keys where lookup_prefix = p_prefix $$`);
    await queryRunner.query(
      `revoke all on function parley_organization_by_api_key_prefix(text) from public`,
    );
    await queryRunner.query(
      `grant execute on function parley_organization_by_api_key_prefix(text) to parley_app`,
    );

    // Keys are revoked, never deleted, so the server's role gets no delete.
    await queryRunner.query(`grant select, insert, update on api_keys to parley_app`);

    // Acts done with a key are audited as the key's.
    await queryRunner.query(`
      alter table audit_events
        drop constraint audit_events_actor_type_check,
        add constraint audit_events_actor_type_check
          check (actor_type in ('user', 'visitor', 'system', 'anonymous', 'api_key'))`);
  }

  async down(queryRunner: QueryRunner): Promise<void> {
    // Audit entries are append-only, so entries written by keys stay; the narrower check is
    // restored for new rows only (not valid), and the old rows keep their 'api_key' actor.
    await queryRunner.query(`
      alter table audit_events
        drop constraint audit_events_actor_type_check,
        add constraint audit_events_actor_type_check
          check (actor_type in ('user', 'visitor', 'system', 'anonymous')) not valid`);
    await queryRunner.query(`drop function if exists parley_organization_by_api_key_prefix(text)`);
    await queryRunner.query(`drop table if exists api_keys`);
  }
}
