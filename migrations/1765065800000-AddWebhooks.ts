import { MigrationInterface, QueryRunner } from 'typeorm';

const ISOLATION = `organization_id = nullif(current_setting('app.organization_id', true), '')::uuid`;

/** An event name such as `security.alert`; the server checks the name against its own list. */
const EVENT_NAME = `'^[a-z][a-z_]*(\\.[a-z][a-z_]*)+$'`;

/**
 * Signed webhooks: each organization's endpoints, and the durable queue of their deliveries.
 *
 * An endpoint's signing secret is restricted and sealed under the organization's data key, and
 * so is the previous one while a rotation's overlap lasts; CHECK constraints refuse any value
 * that is not sealed. A delivery row is the queue entry itself: it is inserted in the
 * transaction that causes it and the worker of any instance claims it with SKIP LOCKED.
 */
export class AddWebhooks1765065800000 implements MigrationInterface {
  name = 'AddWebhooks1765065800000';

  async up(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query(`
      create table webhook_endpoints (
        id uuid primary key default gen_random_uuid(),
        organization_id uuid not null references organizations (id) on delete cascade,
        url text not null check (length(url) between 10 and 2048 and url ~ '^https?://'),
        events text[] not null
          check (cardinality(events) between 1 and 50 and array_position(events, null) is null),
        enabled boolean not null default true,
        secret text not null,
        previous_secret text,
        previous_secret_expires_at timestamptz,
        created_by uuid,
        created_at timestamptz not null,
        updated_at timestamptz not null,
        secret_rotated_at timestamptz,
        unique (organization_id, id),
        foreign key (organization_id, created_by) references users (organization_id, id)
          on delete set null (created_by),
        constraint webhook_endpoints_secret_sealed check (parley_is_sealed(secret)),
        constraint webhook_endpoints_previous_secret_sealed check (parley_is_sealed(previous_secret)),
        check ((previous_secret is null) = (previous_secret_expires_at is null))
      )`);
    await queryRunner.query(`
      create function parley_webhook_events_valid(events text[]) returns boolean
        language sql immutable strict parallel safe
        as $$ select coalesce(bool_and(event ~ ${EVENT_NAME}), false) from unnest(events) as event $$`);
    await queryRunner.query(
      `alter table webhook_endpoints add constraint webhook_endpoints_events_valid check (parley_webhook_events_valid(events))`,
    );

    await queryRunner.query(`
      create table webhook_deliveries (
        id uuid primary key default gen_random_uuid(),
        organization_id uuid not null references organizations (id) on delete cascade,
        endpoint_id uuid not null,
        event text not null check (event ~ ${EVENT_NAME}),
        payload jsonb not null check (jsonb_typeof(payload) = 'object'),
        status text not null default 'pending' check (status in ('pending', 'delivered', 'failed')),
        attempts integer not null default 0 check (attempts >= 0),
        next_attempt_at timestamptz,
        last_attempt_at timestamptz,
        last_status_code integer check (last_status_code between 100 and 599),
        last_error text check (length(last_error) <= 500),
        created_at timestamptz not null,
        delivered_at timestamptz,
        unique (organization_id, id),
        foreign key (organization_id, endpoint_id) references webhook_endpoints (organization_id, id)
          on delete cascade,
        check ((status = 'pending') = (next_attempt_at is not null)),
        check ((status = 'delivered') = (delivered_at is not null))
      )`);
    await queryRunner.query(
      `create index webhook_deliveries_due on webhook_deliveries (organization_id, next_attempt_at) where status = 'pending'`,
    );
    await queryRunner.query(
      `create index webhook_deliveries_by_endpoint on webhook_deliveries (organization_id, endpoint_id, created_at desc)`,
    );

    for (const table of ['webhook_endpoints', 'webhook_deliveries']) {
      await queryRunner.query(`alter table ${table} enable row level security`);
      await queryRunner.query(`
        create policy organization_isolation on ${table}
          using (${ISOLATION}) with check (${ISOLATION})`);
      await queryRunner.query(`grant select, insert, update, delete on ${table} to parley_app`);
    }

    // The worker of every instance polls each second. Visiting every organization in a tenant
    // transaction each time would cost one transaction per organization per second, so this
    // answers, ids only, which organizations have a delivery due; the deliveries themselves are
    // then read and claimed in that organization's own tenant transaction.
    await queryRunner.query(`
      create function parley_organizations_with_due_webhooks(p_now timestamptz) returns setof uuid
        language sql stable security definer set search_path = public, pg_temp
        as $$
          select distinct organization_id from webhook_deliveries
           where status = 'pending' and next_attempt_at <= p_now
           order by organization_id
        $$`);
    await queryRunner.query(
      `revoke all on function parley_organizations_with_due_webhooks(timestamptz) from public`,
    );
    await queryRunner.query(
      `grant execute on function parley_organizations_with_due_webhooks(timestamptz) to parley_app`,
    );
  }

  async down(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query(
      `drop function if exists parley_organizations_with_due_webhooks(timestamptz)`,
    );
    await queryRunner.query(`drop table if exists webhook_deliveries`);
    await queryRunner.query(`drop table if exists webhook_endpoints`);
    await queryRunner.query(`drop function if exists parley_webhook_events_valid(text[])`);
  }
}
