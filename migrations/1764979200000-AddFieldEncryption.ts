import { MigrationInterface, QueryRunner } from 'typeorm';

const ISOLATION = `organization_id = nullif(current_setting('app.organization_id', true), '')::uuid`;

/** Every sealed column: confidential and restricted fields, sealed by the server. */
const SEALED_COLUMNS: [table: string, column: string][] = [
  ['contacts', 'email'],
  ['contacts', 'name'],
  ['contacts', 'phone'],
  ['conversations', 'subject'],
  ['messages', 'body'],
  ['users', 'email'],
  ['users', 'name'],
  ['mfa_totp_factors', 'secret'],
];

/**
 * Field encryption. Data keys live in their own schema, `keyring`, so the data and its keys can
 * be backed up and kept apart: destroying a contact's key (crypto-shredding) then makes their
 * values unreadable in every backup of the data. Each key is a ring of versions, every version
 * stored only wrapped by the key-encryption key.
 *
 * Every sealed column gets a CHECK constraint that accepts only a well-formed sealed value, so a
 * clear value written by any path, raw SQL included, fails loudly. Emails are looked up and kept
 * unique through a keyed blind index instead of their clear text.
 */
export class AddFieldEncryption1764979200000 implements MigrationInterface {
  name = 'AddFieldEncryption1764979200000';

  async up(queryRunner: QueryRunner): Promise<void> {
    // 0.1 stored these fields in clear and only the server holds the key to seal them, so a
    // database with such rows cannot be converted here.
    await queryRunner.query(`
      do $$
      begin
        if exists (select 1 from users) or exists (select 1 from contacts) then
          raise exception 'This database holds personal data stored in clear by Parley 0.1; field encryption needs an empty database (for the embedded default, delete the data folder)';
        end if;
      end
      $$`);

    await queryRunner.query(`create schema keyring`);
    await queryRunner.query(`
      create table keyring.data_keys (
        id uuid primary key,
        organization_id uuid not null references public.organizations (id) on delete cascade,
        purpose text not null check (purpose in ('organization', 'contact', 'blind-index')),
        subject_id uuid,
        current_version integer not null default 1 check (current_version >= 1),
        min_version integer not null default 1,
        created_at timestamptz not null default now(),
        rotated_at timestamptz,
        destroyed_at timestamptz,
        unique (organization_id, id),
        check ((purpose = 'contact') = (subject_id is not null)),
        check (min_version between 1 and current_version)
      )`);
    await queryRunner.query(`
      create unique index data_keys_one_per_subject on keyring.data_keys
        (organization_id, purpose, coalesce(subject_id, '00000000-0000-0000-0000-000000000000'::uuid))`);
    await queryRunner.query(`
      create table keyring.data_key_versions (
        organization_id uuid not null,
        key_id uuid not null,
        version integer not null check (version >= 1),
        wrapped_key text not null check (wrapped_key ~ '^kek2\\.[0-9a-f]{16}\\.'),
        kek_id text not null check (kek_id ~ '^[0-9a-f]{16}$'),
        created_at timestamptz not null default now(),
        primary key (key_id, version),
        foreign key (organization_id, key_id) references keyring.data_keys (organization_id, id) on delete cascade
      )`);
    for (const table of ['keyring.data_keys', 'keyring.data_key_versions']) {
      await queryRunner.query(`alter table ${table} enable row level security`);
      await queryRunner.query(`
        create policy organization_isolation on ${table}
          using (${ISOLATION}) with check (${ISOLATION})`);
    }
    await queryRunner.query(`grant usage on schema keyring to parley_app`);
    await queryRunner.query(`grant select, insert, update on keyring.data_keys to parley_app`);
    await queryRunner.query(
      `grant select, insert, update, delete on keyring.data_key_versions to parley_app`,
    );

    // The shape of src/crypto's envelope: pv1.<key id>.<version>.<nonce>.<ciphertext and tag>.
    await queryRunner.query(`
      create function parley_is_sealed(value text) returns boolean
        language sql immutable strict parallel safe
        as $$ select value ~ '^pv1\\.[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\\.[1-9][0-9]{0,8}\\.[A-Za-z0-9_-]{16}\\.[A-Za-z0-9_-]{22,}$' $$`);
    for (const [table, column] of SEALED_COLUMNS) {
      await queryRunner.query(
        `alter table ${table} add constraint ${table}_${column}_sealed check (parley_is_sealed(${column}))`,
      );
    }

    await queryRunner.query(`drop index contacts_email_per_organization`);
    await queryRunner.query(
      `alter table contacts add column email_index bytea check (length(email_index) = 32)`,
    );
    await queryRunner.query(
      `alter table contacts add constraint contacts_email_indexed check ((email is null) = (email_index is null))`,
    );
    await queryRunner.query(
      `create unique index contacts_email_per_organization on contacts (organization_id, email_index) where email_index is not null`,
    );
    await queryRunner.query(`drop index users_email_per_organization`);
    await queryRunner.query(
      `alter table users add column email_index bytea not null check (length(email_index) = 32)`,
    );
    await queryRunner.query(
      `create unique index users_email_per_organization on users (organization_id, email_index)`,
    );

    await queryRunner.query(
      `alter table signing_keys drop constraint signing_keys_private_key_sealed_check`,
    );
    await queryRunner.query(
      `alter table signing_keys add constraint signing_keys_private_key_sealed_check check (private_key_sealed ~ '^kek[12]\\.')`,
    );

    // For jobs that visit every organization in turn (key rotation, rewrap): ids only.
    await queryRunner.query(`
      create function parley_organization_ids() returns setof uuid
        language sql stable security definer set search_path = public, pg_temp
        as $$ select id from organizations order by id $$`);
    await queryRunner.query(`revoke all on function parley_organization_ids() from public`);
    await queryRunner.query(`grant execute on function parley_organization_ids() to parley_app`);
  }

  /**
   * Restores the 0.1 schema. Sealed values stay sealed (only the server could open them), so
   * this is for an empty database, such as a test that migrates down and up again.
   */
  async down(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query(`drop function parley_organization_ids()`);
    await queryRunner.query(
      `alter table signing_keys drop constraint signing_keys_private_key_sealed_check`,
    );
    await queryRunner.query(
      `alter table signing_keys add constraint signing_keys_private_key_sealed_check check (private_key_sealed like 'kek1.%')`,
    );
    await queryRunner.query(`drop index users_email_per_organization`);
    await queryRunner.query(`alter table users drop column email_index`);
    await queryRunner.query(
      `create unique index users_email_per_organization on users (organization_id, lower(email))`,
    );
    await queryRunner.query(`drop index contacts_email_per_organization`);
    await queryRunner.query(`alter table contacts drop constraint contacts_email_indexed`);
    await queryRunner.query(`alter table contacts drop column email_index`);
    await queryRunner.query(
      `create unique index contacts_email_per_organization on contacts (organization_id, lower(email)) where email is not null`,
    );
    for (const [table, column] of SEALED_COLUMNS) {
      await queryRunner.query(`alter table ${table} drop constraint ${table}_${column}_sealed`);
    }
    await queryRunner.query(`drop function parley_is_sealed(text)`);
    await queryRunner.query(`drop schema keyring cascade`);
  }
}
