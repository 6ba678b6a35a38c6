import { MigrationInterface, QueryRunner } from 'typeorm';

const ISOLATION = `organization_id = nullif(current_setting('app.organization_id', true), '')::uuid`;
const GENESIS = `'\\x${'00'.repeat(32)}'::bytea`;

/**
 * The tamper-evident audit chain. Each organization's entries carry a sequence number, the hash
 * of the entry before and their own hash: SHA-256 of the previous hash followed by the entry's
 * canonical form (`parley_audit_canonical`, a jsonb rendering of every column but the hashes).
 * A BEFORE INSERT trigger, running as the owner, assigns all three under a row lock on the
 * organization's chain head, so concurrent appends from any number of processes queue on that
 * row and never fork the chain or lose an entry; the runtime role can read the head but not
 * change it. Update, delete and truncate of entries are refused by triggers.
 *
 * Checkpoints: the worker signs each organization's head with Ed25519 (keys sealed under the
 * key-encryption key in audit_checkpoint_keys) and keeps the signed checkpoints here and in the
 * log stream, so a chain rewritten after a checkpoint no longer matches it.
 */
export class AddAuditChain1765065600000 implements MigrationInterface {
  name = 'AddAuditChain1765065600000';

  async up(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query(`
      alter table audit_events
        add column seq bigint,
        add column prev_hash bytea check (length(prev_hash) = 32),
        add column hash bytea check (length(hash) = 32)`);
    await queryRunner.query(`
      create table audit_chain_heads (
        organization_id uuid primary key references organizations (id) on delete cascade,
        seq bigint not null check (seq >= 0),
        hash bytea not null check (length(hash) = 32),
        updated_at timestamptz not null default now()
      )`);
    await queryRunner.query(`alter table audit_chain_heads enable row level security`);
    await queryRunner.query(`
      create policy organization_isolation on audit_chain_heads
        using (${ISOLATION}) with check (${ISOLATION})`);
    await queryRunner.query(`grant select on audit_chain_heads to parley_app`);

    // The canonical form: every column but the hashes, in jsonb's deterministic text rendering,
    // times in UTC to the microsecond.
    await queryRunner.query(`
      create function parley_audit_canonical(e audit_events) returns text
        language sql immutable parallel safe set search_path = public, pg_temp
        as $$
          select jsonb_build_object(
            'v', 1,
            'organizationId', e.organization_id,
            'seq', e.seq,
            'id', e.id,
            'occurredAt', to_char(e.occurred_at at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"'),
            'actorType', e.actor_type,
            'actorId', e.actor_id,
            'action', e.action,
            'targetType', e.target_type,
            'targetId', e.target_id,
            'requestId', e.request_id,
            'ip', e.ip,
            'changes', to_jsonb(e.changes),
            'elevationId', e.elevation_id,
            'metadata', e.metadata
          )::text
        $$`);
    await queryRunner.query(
      `grant execute on function parley_audit_canonical(audit_events) to parley_app`,
    );

    await queryRunner.query(`
      create function audit_events_chain() returns trigger
        language plpgsql security definer set search_path = public, pg_temp
        as $$
        declare
          head record;
        begin
          insert into audit_chain_heads (organization_id, seq, hash)
            values (new.organization_id, 0, ${GENESIS})
            on conflict (organization_id) do nothing;
          select seq, hash into head from audit_chain_heads
            where organization_id = new.organization_id for update;
          new.seq := head.seq + 1;
          new.prev_hash := head.hash;
          new.hash := sha256(head.hash || convert_to(parley_audit_canonical(new), 'UTF8'));
          update audit_chain_heads set seq = new.seq, hash = new.hash, updated_at = now()
            where organization_id = new.organization_id;
          return new;
        end
        $$`);
    await queryRunner.query(`revoke all on function audit_events_chain() from public`);

    // Entries written before the chain existed are chained in the order they were written.
    await queryRunner.query(`alter table audit_events disable trigger audit_events_append_only`);
    await queryRunner.query(`
      do $$
      declare
        e audit_events;
        previous bytea;
        position bigint;
        organization uuid;
      begin
        for e in select * from audit_events order by organization_id, occurred_at, id loop
          if organization is distinct from e.organization_id then
            if organization is not null then
              insert into audit_chain_heads (organization_id, seq, hash) values (organization, position, previous);
            end if;
            organization := e.organization_id;
            previous := ${GENESIS};
            position := 0;
          end if;
          position := position + 1;
          e.seq := position;
          e.prev_hash := previous;
          e.hash := sha256(previous || convert_to(parley_audit_canonical(e), 'UTF8'));
          update audit_events set seq = e.seq, prev_hash = e.prev_hash, hash = e.hash where id = e.id;
          previous := e.hash;
        end loop;
        if organization is not null then
          insert into audit_chain_heads (organization_id, seq, hash) values (organization, position, previous);
        end if;
      end
      $$`);
    await queryRunner.query(`alter table audit_events enable trigger audit_events_append_only`);
    await queryRunner.query(`
      alter table audit_events
        alter column seq set not null,
        alter column prev_hash set not null,
        alter column hash set not null`);
    await queryRunner.query(
      `create unique index audit_events_chain on audit_events (organization_id, seq)`,
    );
    await queryRunner.query(`
      create trigger audit_events_chain before insert on audit_events
        for each row execute function audit_events_chain()`);
    await queryRunner.query(`
      create trigger audit_events_no_truncate before truncate on audit_events
        for each statement execute function audit_events_refuse_change()`);

    await queryRunner.query(`
      create table audit_checkpoint_keys (
        kid text primary key check (kid ~ '^[A-Za-z0-9_-]{16,64}$'),
        algorithm text not null check (algorithm = 'Ed25519'),
        public_key_pem text not null,
        private_key_sealed text not null check (private_key_sealed ~ '^kek2\\.'),
        created_at timestamptz not null default now()
      )`);
    await queryRunner.query(`grant select, insert on audit_checkpoint_keys to parley_app`);
    await queryRunner.query(`
      create table audit_checkpoints (
        id uuid primary key default gen_random_uuid(),
        organization_id uuid not null references organizations (id) on delete cascade,
        seq bigint not null check (seq >= 1),
        hash bytea not null check (length(hash) = 32),
        signed_at timestamptz not null,
        kid text not null references audit_checkpoint_keys (kid),
        signature bytea not null check (length(signature) = 64),
        unique (organization_id, id)
      )`);
    await queryRunner.query(
      `create index audit_checkpoints_by_time on audit_checkpoints (organization_id, signed_at desc, id)`,
    );
    await queryRunner.query(`alter table audit_checkpoints enable row level security`);
    await queryRunner.query(`
      create policy organization_isolation on audit_checkpoints
        using (${ISOLATION}) with check (${ISOLATION})`);
    await queryRunner.query(`grant select, insert on audit_checkpoints to parley_app`);
    await queryRunner.query(`
      create trigger audit_checkpoints_append_only before update or delete on audit_checkpoints
        for each row execute function audit_events_refuse_change()`);
  }

  async down(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query(`drop table audit_checkpoints, audit_checkpoint_keys`);
    await queryRunner.query(`drop trigger audit_events_no_truncate on audit_events`);
    await queryRunner.query(`drop trigger audit_events_chain on audit_events`);
    await queryRunner.query(`drop function audit_events_chain()`);
    await queryRunner.query(`drop index audit_events_chain`);
    await queryRunner.query(
      `alter table audit_events drop column seq, drop column prev_hash, drop column hash`,
    );
    await queryRunner.query(`drop function parley_audit_canonical(audit_events)`);
    await queryRunner.query(`drop table audit_chain_heads`);
  }
}
