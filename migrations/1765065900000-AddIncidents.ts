import { MigrationInterface, QueryRunner } from 'typeorm';

const ISOLATION = `organization_id = nullif(current_setting('app.organization_id', true), '')::uuid`;

const TABLES = [
  'incidents',
  'incident_alerts',
  'incident_notes',
  'incident_actions',
  'blocked_addresses',
];

/**
 * Incidents: alerts open or join them; admins move them through open, acknowledged, contained
 * and resolved, write notes, take containment actions and track the GDPR Article 33 deadline.
 * Root causes, lessons learned and notes are text staff type and may name people, so they are
 * sealed like every confidential column. Alerts, notes and actions are a record: the server's
 * role may add them, never change or delete them; incidents end by status, never by deletion.
 *
 * Blocked addresses belong to the organization that blocked them and hold a keyed digest of
 * the address (its /64 for IPv6) under that organization's blind-index key, never the address.
 */
export class AddIncidents1765065900000 implements MigrationInterface {
  name = 'AddIncidents1765065900000';

  async up(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query(`
      create table incidents (
        id uuid primary key default gen_random_uuid(),
        organization_id uuid not null references organizations (id) on delete cascade,
        rule text not null check (rule ~ '^[a-z][a-z0-9_]{0,63}$'),
        subject_type text check (length(subject_type) between 1 and 64),
        subject_id text check (length(subject_id) between 1 and 200),
        summary text not null check (length(summary) between 1 and 500),
        severity text not null check (severity in ('low', 'medium', 'high', 'critical')),
        status text not null default 'open'
          check (status in ('open', 'acknowledged', 'contained', 'resolved')),
        alert_count integer not null default 1 check (alert_count >= 1),
        opened_at timestamptz not null,
        last_alert_at timestamptz not null,
        response_due_at timestamptz not null check (response_due_at >= opened_at),
        acknowledged_at timestamptz,
        acknowledged_by uuid,
        contained_at timestamptz,
        contained_by uuid,
        resolved_at timestamptz,
        resolved_by uuid,
        root_cause text,
        lessons_learned text,
        escalation_level integer not null default 0 check (escalation_level >= 0),
        escalated_at timestamptz,
        personal_data_breach boolean not null default false,
        aware_at timestamptz,
        regulator_due_at timestamptz,
        regulator_notified_at timestamptz,
        regulator_escalation_level integer not null default 0
          check (regulator_escalation_level >= 0),
        regulator_escalated_at timestamptz,
        updated_at timestamptz not null,
        unique (organization_id, id),
        foreign key (organization_id, acknowledged_by) references users (organization_id, id)
          on delete set null (acknowledged_by),
        foreign key (organization_id, contained_by) references users (organization_id, id)
          on delete set null (contained_by),
        foreign key (organization_id, resolved_by) references users (organization_id, id)
          on delete set null (resolved_by),
        check ((subject_type is null) = (subject_id is null)),
        check (status = 'open' or acknowledged_at is not null),
        check (status in ('open', 'acknowledged') or contained_at is not null),
        check (status <> 'resolved' or (resolved_at is not null and root_cause is not null)),
        check ((escalation_level = 0) = (escalated_at is null)),
        check (personal_data_breach = (aware_at is not null)),
        check (regulator_due_at is not distinct from aware_at + interval '72 hours'),
        check (regulator_notified_at is null or regulator_notified_at >= aware_at),
        check ((regulator_escalation_level = 0) = (regulator_escalated_at is null))
      )`);
    await queryRunner.query(
      `create index incidents_open_by_key on incidents (organization_id, rule, subject_type, subject_id) where status <> 'resolved'`,
    );
    await queryRunner.query(
      `create index incidents_newest on incidents (organization_id, opened_at desc, id desc)`,
    );
    await queryRunner.query(
      `create index incidents_response_due on incidents (organization_id, response_due_at) where status = 'open'`,
    );
    await queryRunner.query(
      `create index incidents_regulator_due on incidents (organization_id, regulator_due_at) where personal_data_breach and regulator_notified_at is null`,
    );

    await queryRunner.query(`
      create table incident_alerts (
        organization_id uuid not null,
        alert_id uuid not null,
        incident_id uuid not null,
        rule text not null check (rule ~ '^[a-z][a-z0-9_]{0,63}$'),
        severity text not null check (severity in ('low', 'medium', 'high', 'critical')),
        summary text not null check (length(summary) between 1 and 500),
        details jsonb not null default '{}'::jsonb,
        occurred_at timestamptz not null,
        received_at timestamptz not null,
        primary key (organization_id, alert_id),
        foreign key (organization_id, incident_id) references incidents (organization_id, id)
          on delete cascade
      )`);
    await queryRunner.query(
      `create index incident_alerts_by_incident on incident_alerts (organization_id, incident_id, received_at)`,
    );

    await queryRunner.query(`
      create table incident_notes (
        id uuid primary key,
        organization_id uuid not null,
        incident_id uuid not null,
        author_id uuid,
        created_at timestamptz not null,
        body text not null,
        unique (organization_id, id),
        foreign key (organization_id, incident_id) references incidents (organization_id, id)
          on delete cascade,
        foreign key (organization_id, author_id) references users (organization_id, id)
          on delete set null (author_id)
      )`);
    await queryRunner.query(
      `create index incident_notes_by_incident on incident_notes (organization_id, incident_id, created_at)`,
    );

    await queryRunner.query(`
      create table blocked_addresses (
        id uuid primary key default gen_random_uuid(),
        organization_id uuid not null references organizations (id) on delete cascade,
        incident_id uuid not null,
        address_index bytea not null check (length(address_index) = 32),
        blocked_by uuid,
        created_at timestamptz not null,
        expires_at timestamptz not null check (expires_at > created_at),
        unique (organization_id, id),
        foreign key (organization_id, incident_id) references incidents (organization_id, id)
          on delete cascade,
        foreign key (organization_id, blocked_by) references users (organization_id, id)
          on delete set null (blocked_by)
      )`);
    await queryRunner.query(
      `create index blocked_addresses_active on blocked_addresses (organization_id, expires_at)`,
    );

    // No foreign key to the member, key or block an action names: the record outlives them.
    await queryRunner.query(`
      create table incident_actions (
        id uuid primary key default gen_random_uuid(),
        organization_id uuid not null,
        incident_id uuid not null,
        type text not null check (type in ('end_user_sessions', 'revoke_api_key', 'block_address')),
        target_id uuid not null,
        details jsonb not null default '{}'::jsonb,
        taken_by uuid,
        taken_at timestamptz not null,
        foreign key (organization_id, incident_id) references incidents (organization_id, id)
          on delete cascade,
        foreign key (organization_id, taken_by) references users (organization_id, id)
          on delete set null (taken_by)
      )`);
    await queryRunner.query(
      `create index incident_actions_by_incident on incident_actions (organization_id, incident_id, taken_at)`,
    );

    for (const table of TABLES) {
      await queryRunner.query(`alter table ${table} enable row level security`);
      await queryRunner.query(`
        create policy organization_isolation on ${table}
          using (${ISOLATION}) with check (${ISOLATION})`);
    }

    for (const [table, column] of [
      ['incidents', 'root_cause'],
      ['incidents', 'lessons_learned'],
      ['incident_notes', 'body'],
    ]) {
      await queryRunner.query(
        `alter table ${table} add constraint ${table}_${column}_sealed check (parley_is_sealed(${column}))`,
      );
    }

    await queryRunner.query(`grant select, insert, update on incidents to parley_app`);
    // Notes are never edited, but key rotation re-seals their body under a newer data key.
    await queryRunner.query(`grant update (body) on incident_notes to parley_app`);
    await queryRunner.query(
      `grant select, insert on incident_alerts, incident_notes, incident_actions, blocked_addresses to parley_app`,
    );

    // The per-request block check runs before it knows whether an organization has any block:
    // this says which organizations have one still running at `at`, and nothing else.
    await queryRunner.query(`
      create function parley_blocking_organization_ids(at timestamptz) returns setof uuid
        language sql stable security definer set search_path = public, pg_temp
        as $$ select distinct organization_id from blocked_addresses where expires_at > at $$`);
    await queryRunner.query(
      `revoke all on function parley_blocking_organization_ids(timestamptz) from public`,
    );
    await queryRunner.query(
      `grant execute on function parley_blocking_organization_ids(timestamptz) to parley_app`,
    );
  }

  async down(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query(
      `drop function if exists parley_blocking_organization_ids(timestamptz)`,
    );
    await queryRunner.query(
      `drop table if exists incident_actions, blocked_addresses, incident_notes, incident_alerts, incidents`,
    );
  }
}
