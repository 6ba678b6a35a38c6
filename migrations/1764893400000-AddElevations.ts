import { MigrationInterface, QueryRunner } from 'typeorm';

/** Lowest first: a role's position in this array is its rank. */
const ROLE_ORDER = `array['viewer', 'agent', 'manager', 'admin']`;

/**
 * Just-in-time elevation: a member asks for a higher role for a number of minutes, an admin other
 * than the member approves, and the role applies from the approval until `ends_at` (or an earlier
 * revocation). `requester_role` is the member's own role when asking; the elevation applies only
 * while the member still has that role, so a demotion also ends it. Audit entries name the
 * elevation an act was done under in `elevation_id`.
 */
export class AddElevations1764893400000 implements MigrationInterface {
  name = 'AddElevations1764893400000';

  async up(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query(`
      create table access_elevations (
        id uuid primary key default gen_random_uuid(),
        organization_id uuid not null references organizations (id) on delete cascade,
        requester_id uuid not null,
        requester_role text not null check (requester_role in ('admin', 'manager', 'agent', 'viewer')),
        role text not null check (role in ('admin', 'manager', 'agent')),
        minutes integer not null check (minutes between 1 and 480),
        reason text not null check (length(reason) between 10 and 500),
        status text not null default 'pending'
          check (status in ('pending', 'approved', 'denied', 'revoked', 'expired')),
        requested_at timestamptz not null default now(),
        approver_id uuid,
        decided_at timestamptz,
        starts_at timestamptz,
        ends_at timestamptz,
        ended_at timestamptz,
        revoked_by uuid,
        unique (organization_id, id),
        foreign key (organization_id, requester_id) references users (organization_id, id)
          on delete cascade,
        foreign key (organization_id, approver_id) references users (organization_id, id)
          on delete set null (approver_id),
        foreign key (organization_id, revoked_by) references users (organization_id, id)
          on delete set null (revoked_by),
        check (array_position(${ROLE_ORDER}, role) > array_position(${ROLE_ORDER}, requester_role)),
        check (approver_id <> requester_id),
        check ((starts_at is null) = (ends_at is null)),
        check (ends_at = starts_at + make_interval(mins => minutes)),
        check (status <> 'approved' or starts_at is not null),
        check (status not in ('approved', 'denied') or decided_at is not null),
        check ((status in ('revoked', 'expired')) = (ended_at is not null)),
        check (revoked_by is null or status = 'revoked')
      )`);
    // One open request per member at a time; the lookup on every request reads the second index.
    await queryRunner.query(
      `create unique index access_elevations_one_pending on access_elevations (organization_id, requester_id) where status = 'pending'`,
    );
    await queryRunner.query(
      `create index access_elevations_approved on access_elevations (organization_id, requester_id, ends_at) where status = 'approved'`,
    );

    // Row-level security exactly as on every other tenant table (see CreateTenantSchema).
    await queryRunner.query(`alter table access_elevations enable row level security`);
    await queryRunner.query(`
      create policy organization_isolation on access_elevations
        using (organization_id = nullif(current_setting('app.organization_id', true), '')::uuid)
        with check (organization_id = nullif(current_setting('app.organization_id', true), '')::uuid)`);

    // Elevations end by status, never by deletion, so the server's role gets no delete.
    await queryRunner.query(`grant select, insert, update on access_elevations to parley_app`);

    // No foreign key: audit entries are append-only and outlive the rows they name.
    await queryRunner.query(`alter table audit_events add column elevation_id uuid`);
    await queryRunner.query(
      `create index audit_events_by_elevation on audit_events (organization_id, elevation_id) where elevation_id is not null`,
    );
  }

  async down(queryRunner: QueryRunner): Promise<void> {
    // The audit entries stay; only the note of which elevation each was made under goes.
    await queryRunner.query(`alter table audit_events drop column if exists elevation_id`);
    await queryRunner.query(`drop table if exists access_elevations`);
  }
}
