import { MigrationInterface, QueryRunner } from 'typeorm';

const MFA_TABLES = ['mfa_totp_factors', 'mfa_recovery_codes'];

/**
 * Multi-factor authentication: one TOTP factor per member (pending until a first code confirms
 * it, with the last accepted time step so no code works twice, and its consecutive failures so
 * guessing locks it), single-use recovery codes kept only as SHA-256 digests, and a flag on
 * sessions signed in before a required enrollment.
 */
export class AddMfa1764893000000 implements MigrationInterface {
  name = 'AddMfa1764893000000';

  async up(queryRunner: QueryRunner): Promise<void> {
    // secret is Restricted: the data-protection work (issue 4) seals it and adds the constraint
    // that refuses a clear value.
    await queryRunner.query(`
      create table mfa_totp_factors (
        id uuid primary key default gen_random_uuid(),
        organization_id uuid not null references organizations (id) on delete cascade,
        user_id uuid not null,
        secret text not null,
        confirmed_at timestamptz,
        last_used_step bigint check (last_used_step >= 0),
        failed_attempts integer not null default 0 check (failed_attempts >= 0),
        locked_until timestamptz,
        created_at timestamptz not null default now(),
        unique (organization_id, user_id),
        foreign key (organization_id, user_id) references users (organization_id, id) on delete cascade
      )`);

    await queryRunner.query(`
      create table mfa_recovery_codes (
        id uuid primary key default gen_random_uuid(),
        organization_id uuid not null references organizations (id) on delete cascade,
        user_id uuid not null,
        code_hash bytea not null check (length(code_hash) = 32),
        created_at timestamptz not null default now(),
        used_at timestamptz,
        unique (organization_id, user_id, code_hash),
        foreign key (organization_id, user_id) references users (organization_id, id) on delete cascade
      )`);

    await queryRunner.query(
      `alter table auth_sessions add column mfa_pending boolean not null default false`,
    );

    // Row-level security exactly as on every other tenant table (see CreateTenantSchema).
    for (const table of MFA_TABLES) {
      await queryRunner.query(`alter table ${table} enable row level security`);
      await queryRunner.query(`
        create policy organization_isolation on ${table}
          using (organization_id = nullif(current_setting('app.organization_id', true), '')::uuid)
          with check (organization_id = nullif(current_setting('app.organization_id', true), '')::uuid)`);
    }

    await queryRunner.query(
      `grant select, insert, update, delete on mfa_totp_factors, mfa_recovery_codes to parley_app`,
    );
  }

  async down(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query(`alter table auth_sessions drop column mfa_pending`);
    await queryRunner.query(`drop table if exists mfa_recovery_codes, mfa_totp_factors`);
  }
}
