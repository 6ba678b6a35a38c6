import { MigrationInterface, QueryRunner } from 'typeorm';

const TENANT_TABLES = [
  'users',
  'auth_sessions',
  'refresh_tokens',
  'contacts',
  'conversations',
  'messages',
  'audit_events',
];

/**
 * The first schema: organizations and everything they own. Every tenant table carries
 * organization_id, row-level security on app.organization_id, and composite foreign keys so a
 * row can never point at another organization's row (foreign-key checks ignore RLS).
 */
export class CreateTenantSchema1764806400000 implements MigrationInterface {
  name = 'CreateTenantSchema1764806400000';

  async up(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query(`
      do $$
      begin
        if not exists (select 1 from pg_roles where rolname = 'parley_app') then
          create role parley_app nologin nosuperuser nobypassrls nocreatedb nocreaterole;
        end if;
      end
      $$`);
    await queryRunner.query(`
      do $$
      begin
        if not (select rolsuper from pg_roles where rolname = current_user) then
          execute format('grant parley_app to %I', current_user);
        end if;
      exception when others then
        raise notice 'could not grant parley_app to %: %', current_user, sqlerrm;
      end
      $$`);

    await queryRunner.query(`
      create table organizations (
        id uuid primary key default gen_random_uuid(),
        slug text not null unique check (slug ~ '^[a-z0-9](?:[a-z0-9-]{0,38}[a-z0-9])?$'),
        name text not null check (length(name) between 1 and 200),
        widget_key text not null unique,
        widget_allowed_origins text[] not null default '{}',
        created_at timestamptz not null default now(),
        updated_at timestamptz not null default now()
      )`);

    await queryRunner.query(`
      create table users (
        id uuid primary key default gen_random_uuid(),
        organization_id uuid not null references organizations (id) on delete cascade,
        email text not null,
        name text not null,
        role text not null check (role in ('admin', 'manager', 'agent', 'viewer')),
        password_hash text not null,
        last_login_at timestamptz,
        created_at timestamptz not null default now(),
        updated_at timestamptz not null default now(),
        unique (organization_id, id)
      )`);
    await queryRunner.query(
      `create unique index users_email_per_organization on users (organization_id, lower(email))`,
    );

    await queryRunner.query(`
      create table contacts (
        id uuid primary key default gen_random_uuid(),
        organization_id uuid not null references organizations (id) on delete cascade,
        email text,
        name text,
        phone text,
        created_at timestamptz not null default now(),
        updated_at timestamptz not null default now(),
        unique (organization_id, id)
      )`);
    await queryRunner.query(
      `create unique index contacts_email_per_organization on contacts (organization_id, lower(email)) where email is not null`,
    );

    await queryRunner.query(`
      create table auth_sessions (
        id uuid primary key default gen_random_uuid(),
        organization_id uuid not null references organizations (id) on delete cascade,
        subject_type text not null check (subject_type in ('user', 'visitor')),
        user_id uuid,
        contact_id uuid,
        ip text,
        user_agent text,
        created_at timestamptz not null default now(),
        last_seen_at timestamptz not null default now(),
        expires_at timestamptz not null,
        ended_at timestamptz,
        end_reason text,
        unique (organization_id, id),
        foreign key (organization_id, user_id) references users (organization_id, id) on delete cascade,
        foreign key (organization_id, contact_id) references contacts (organization_id, id) on delete cascade,
        check ((subject_type = 'user') = (user_id is not null)),
        check ((subject_type = 'visitor') = (contact_id is not null))
      )`);
    await queryRunner.query(
      `create index auth_sessions_user on auth_sessions (organization_id, user_id) where ended_at is null`,
    );

    await queryRunner.query(`
      create table refresh_tokens (
        id uuid primary key default gen_random_uuid(),
        organization_id uuid not null references organizations (id) on delete cascade,
        session_id uuid not null,
        token_hash bytea not null unique check (length(token_hash) = 32),
        created_at timestamptz not null default now(),
        expires_at timestamptz not null,
        consumed_at timestamptz,
        foreign key (organization_id, session_id) references auth_sessions (organization_id, id) on delete cascade
      )`);

    await queryRunner.query(`
      create table conversations (
        id uuid primary key default gen_random_uuid(),
        organization_id uuid not null references organizations (id) on delete cascade,
        contact_id uuid not null,
        subject text,
        status text not null default 'open' check (status in ('open', 'pending', 'resolved', 'closed')),
        assignee_id uuid,
        created_at timestamptz not null default now(),
        updated_at timestamptz not null default now(),
        last_message_at timestamptz,
        unique (organization_id, id),
        foreign key (organization_id, contact_id) references contacts (organization_id, id) on delete cascade,
        foreign key (organization_id, assignee_id) references users (organization_id, id)
      )`);
    await queryRunner.query(
      `create index conversations_by_time on conversations (organization_id, created_at desc, id)`,
    );
    await queryRunner.query(
      `create index conversations_by_contact on conversations (organization_id, contact_id)`,
    );

    await queryRunner.query(`
      create table messages (
        id uuid primary key default gen_random_uuid(),
        organization_id uuid not null references organizations (id) on delete cascade,
        conversation_id uuid not null,
        author_type text not null check (author_type in ('contact', 'agent', 'assistant')),
        author_id uuid,
        body text not null,
        client_message_id text check (length(client_message_id) between 1 and 100),
        created_at timestamptz not null default now(),
        foreign key (organization_id, conversation_id) references conversations (organization_id, id) on delete cascade
      )`);
    await queryRunner.query(
      `create index messages_by_conversation on messages (organization_id, conversation_id, created_at, id)`,
    );
    await queryRunner.query(`
      create unique index messages_idempotency on messages (organization_id, conversation_id, author_type, author_id, client_message_id)
        where client_message_id is not null`);

    await queryRunner.query(`
      create table audit_events (
        id uuid primary key default gen_random_uuid(),
        organization_id uuid not null references organizations (id) on delete cascade,
        occurred_at timestamptz not null default now(),
        actor_type text not null check (actor_type in ('user', 'visitor', 'system', 'anonymous')),
        actor_id text,
        action text not null,
        target_type text,
        target_id text,
        request_id text,
        ip text,
        changes text[] not null default '{}',
        metadata jsonb not null default '{}'
      )`);
    await queryRunner.query(
      `create index audit_events_by_time on audit_events (organization_id, occurred_at desc, id)`,
    );
    await queryRunner.query(`
      create function audit_events_refuse_change() returns trigger language plpgsql as $$
      begin
        raise exception 'audit_events is append-only' using errcode = 'insufficient_privilege';
      end
      $$`);
    await queryRunner.query(`
      create trigger audit_events_append_only before update or delete on audit_events
        for each row execute function audit_events_refuse_change()`);

    // Row-level security: one policy per tenant table, reading the transaction-local setting.
    // nullif() matters: after a transaction that set it locally, the setting reads '' not NULL.
    await queryRunner.query(`alter table organizations enable row level security`);
    await queryRunner.query(`
      create policy organization_isolation on organizations
        using (id = nullif(current_setting('app.organization_id', true), '')::uuid)
        with check (id = nullif(current_setting('app.organization_id', true), '')::uuid)`);
    for (const table of TENANT_TABLES) {
      await queryRunner.query(`alter table ${table} enable row level security`);
      await queryRunner.query(`
        create policy organization_isolation on ${table}
          using (organization_id = nullif(current_setting('app.organization_id', true), '')::uuid)
          with check (organization_id = nullif(current_setting('app.organization_id', true), '')::uuid)`);
    }

    // Lookups that must happen before the tenant is known. Each returns only an organization id
    // for a secret or name the caller already holds.
    await queryRunner.query(`
      create function parley_organization_by_slug(p_slug text) returns uuid
        language sql stable security definer set search_path = public, pg_temp
        as $$ select id from organizations where slug = lower(p_slug) $$`);
    await queryRunner.query(`
      create function parley_organization_by_widget_key(p_key text) returns uuid
        language sql stable security definer set search_path = public, pg_temp
        as $$ select id from organizations where widget_key = p_key $$`);
    await queryRunner.query(`
      create function parley_organization_by_refresh_token(p_hash bytea) returns uuid
        language sql stable security definer set search_path = public, pg_temp
        as $$ select organization_id from refresh_tokens where token_hash = p_hash $$`);
    for (const fn of [
      'parley_organization_by_slug(text)',
      'parley_organization_by_widget_key(text)',
      'parley_organization_by_refresh_token(bytea)',
    ]) {
      await queryRunner.query(`revoke all on function ${fn} from public`);
      await queryRunner.query(`grant execute on function ${fn} to parley_app`);
    }

    await queryRunner.query(`grant usage on schema public to parley_app`);
    await queryRunner.query(`grant select, insert, update on organizations to parley_app`);
    await queryRunner.query(
      `grant select, insert, update, delete on users, auth_sessions, refresh_tokens, contacts, conversations, messages to parley_app`,
    );
    await queryRunner.query(`grant select, insert on audit_events to parley_app`);
    await queryRunner.query(`grant select on schema_migrations to parley_app`);
  }

  async down(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query(`drop function if exists parley_organization_by_refresh_token(bytea)`);
    await queryRunner.query(`drop function if exists parley_organization_by_widget_key(text)`);
    await queryRunner.query(`drop function if exists parley_organization_by_slug(text)`);
    await queryRunner.query(
      `drop table if exists audit_events, messages, conversations, refresh_tokens, auth_sessions, contacts, users, organizations`,
    );
    await queryRunner.query(`drop function if exists audit_events_refuse_change()`);
    await queryRunner.query(`revoke select on schema_migrations from parley_app`);
  }
}
