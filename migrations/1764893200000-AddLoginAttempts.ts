import { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * Brute-force counters, shared by every instance through the database.
 *
 * login_attempts holds one row per account an organization has seen failed sign-ins for: a
 * member (`user:<id>`) or an email that is no member (`email:<sha-256 of the address>`, so no
 * typed address is kept in clear). It is a tenant table with row-level security.
 *
 * login_address_attempts counts failures per client address across every organization, so it
 * belongs to no tenant and has no row-level security; its key is a SHA-256 of the address (the
 * /64 prefix for IPv6) and it holds nothing else that names anyone.
 */
export class AddLoginAttempts1764893200000 implements MigrationInterface {
  name = 'AddLoginAttempts1764893200000';

  async up(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query(`
      create table login_attempts (
        organization_id uuid not null references organizations (id) on delete cascade,
        account_key text not null check (account_key ~ '^(user:[0-9a-f-]{36}|email:[0-9a-f]{64})$'),
        user_id uuid,
        failures integer not null default 0 check (failures >= 0),
        window_started_at timestamptz not null,
        consecutive_failures integer not null default 0 check (consecutive_failures >= 0),
        locks integer not null default 0 check (locks >= 0),
        locked_until timestamptz,
        locked_indefinitely boolean not null default false,
        updated_at timestamptz not null,
        primary key (organization_id, account_key),
        foreign key (organization_id, user_id) references users (organization_id, id) on delete cascade,
        check ((user_id is not null) = (account_key like 'user:%'))
      )`);
    await queryRunner.query(`alter table login_attempts enable row level security`);
    await queryRunner.query(`
      create policy organization_isolation on login_attempts
        using (organization_id = nullif(current_setting('app.organization_id', true), '')::uuid)
        with check (organization_id = nullif(current_setting('app.organization_id', true), '')::uuid)`);

    await queryRunner.query(`
      create table login_address_attempts (
        address_key bytea primary key check (length(address_key) = 32),
        failures integer not null default 0 check (failures >= 0),
        window_started_at timestamptz not null,
        blocked_until timestamptz,
        updated_at timestamptz not null
      )`);
    await queryRunner.query(
      `create index login_address_attempts_by_age on login_address_attempts (updated_at)`,
    );

    await queryRunner.query(
      `grant select, insert, update, delete on login_attempts, login_address_attempts to parley_app`,
    );
  }

  async down(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query(`drop table if exists login_address_attempts, login_attempts`);
  }
}
