import { MigrationInterface, QueryRunner } from 'typeorm';

const GENESIS = `'\\x${'00'.repeat(32)}'::bytea`;

/**
 * Chains audit entries just after they commit instead of inside the transaction that wrote
 * them. Linking an entry to its predecessor needs the organization's chain head, and holding
 * that row lock until each writing transaction commits made every audited write of an
 * organization wait for the one before it: the message path ran at about half its speed.
 *
 * Now an entry is inserted with no sequence number; `parley_audit_chain(organization, limit)`,
 * run by the server right after each audited commit and by a sweep every second, locks the head
 * once and links every pending entry of that organization in the order they were appended. One
 * chainer at a time per organization (the head's row lock), so the chain still never forks and
 * never skips an entry. The only update the trigger lets through is that one: filling the chain
 * columns of an entry that has none, changing nothing else.
 */
export class DeferAuditChaining1765152000000 implements MigrationInterface {
  name = 'DeferAuditChaining1765152000000';

  async up(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query(`drop trigger audit_events_chain on audit_events`);
    await queryRunner.query(`drop function audit_events_chain()`);
    await queryRunner.query(`alter table audit_events add column append_id bigserial`);
    // Every insert draws its number from the column's sequence.
    await queryRunner.query(`grant usage on sequence audit_events_append_id_seq to parley_app`);
    await queryRunner.query(`
      alter table audit_events
        alter column seq drop not null,
        alter column prev_hash drop not null,
        alter column hash drop not null,
        add constraint audit_events_chained_whole
          check ((seq is null) = (hash is null) and (seq is null) = (prev_hash is null))`);
    await queryRunner.query(
      `create index audit_events_unchained on audit_events (organization_id, append_id) where seq is null`,
    );

    await queryRunner.query(`drop trigger audit_events_append_only on audit_events`);
    await queryRunner.query(`
      create function audit_events_refuse_update() returns trigger language plpgsql as $$
      begin
        if old.seq is null and new.seq is not null
           and (new.id, new.organization_id, new.occurred_at, new.actor_type, new.actor_id,
                new.action, new.target_type, new.target_id, new.request_id, new.ip, new.changes,
                new.metadata, new.elevation_id, new.append_id)
               is not distinct from
               (old.id, old.organization_id, old.occurred_at, old.actor_type, old.actor_id,
                old.action, old.target_type, old.target_id, old.request_id, old.ip, old.changes,
                old.metadata, old.elevation_id, old.append_id) then
          return new;
        end if;
        raise exception 'audit_events is append-only' using errcode = 'insufficient_privilege';
      end
      $$`);
    await queryRunner.query(`
      create trigger audit_events_append_only before update on audit_events
        for each row execute function audit_events_refuse_update()`);
    await queryRunner.query(`
      create trigger audit_events_no_delete before delete on audit_events
        for each row execute function audit_events_refuse_change()`);

    // A key-encryption-key rotation re-seals the checkpoint signing keys (npm run keys:rotate-kek).
    await queryRunner.query(
      `grant update (private_key_sealed) on audit_checkpoint_keys to parley_app`,
    );
    await queryRunner.query(`
      create trigger audit_checkpoints_no_truncate before truncate on audit_checkpoints
        for each statement execute function audit_events_refuse_change()`);
    await queryRunner.query(`
      create function parley_audit_chain(p_organization uuid, p_limit integer) returns integer
        language plpgsql security definer set search_path = public, pg_temp
        as $$
        declare
          head record;
          e audit_events;
          linked integer := 0;
        begin
          insert into audit_chain_heads (organization_id, seq, hash)
            values (p_organization, 0, ${GENESIS})
            on conflict (organization_id) do nothing;
          select seq, hash into head from audit_chain_heads
            where organization_id = p_organization for update;
          for e in select * from audit_events
                    where organization_id = p_organization and seq is null
                    order by append_id limit greatest(p_limit, 1) loop
            e.seq := head.seq + 1;
            e.prev_hash := head.hash;
            e.hash := sha256(head.hash || convert_to(parley_audit_canonical(e), 'UTF8'));
            update audit_events set seq = e.seq, prev_hash = e.prev_hash, hash = e.hash
              where id = e.id;
            head.seq := e.seq;
            head.hash := e.hash;
            linked := linked + 1;
          end loop;
          if linked > 0 then
            update audit_chain_heads set seq = head.seq, hash = head.hash, updated_at = now()
              where organization_id = p_organization;
          end if;
          return linked;
        end
        $$`);
    await queryRunner.query(`
      create function parley_organizations_with_unchained_audit() returns setof uuid
        language sql stable security definer set search_path = public, pg_temp
        as $$ select distinct organization_id from audit_events where seq is null $$`);
    for (const fn of [
      'parley_audit_chain(uuid, integer)',
      'parley_organizations_with_unchained_audit()',
    ]) {
      await queryRunner.query(`revoke all on function ${fn} from public`);
      await queryRunner.query(`grant execute on function ${fn} to parley_app`);
    }
  }

  async down(queryRunner: QueryRunner): Promise<void> {
    for (const organization of (await queryRunner.query(
      'select parley_organizations_with_unchained_audit() as id',
    )) as { id: string }[]) {
      await queryRunner.query('select parley_audit_chain($1, 2147483647)', [organization.id]);
    }
    await queryRunner.query(`drop trigger audit_checkpoints_no_truncate on audit_checkpoints`);
    await queryRunner.query(
      `revoke update (private_key_sealed) on audit_checkpoint_keys from parley_app`,
    );
    await queryRunner.query(`drop function parley_organizations_with_unchained_audit()`);
    await queryRunner.query(`drop function parley_audit_chain(uuid, integer)`);
    await queryRunner.query(`drop trigger audit_events_no_delete on audit_events`);
    await queryRunner.query(`drop trigger audit_events_append_only on audit_events`);
    await queryRunner.query(`drop function audit_events_refuse_update()`);
    await queryRunner.query(`
      create trigger audit_events_append_only before update or delete on audit_events
        for each row execute function audit_events_refuse_change()`);
    await queryRunner.query(`drop index audit_events_unchained`);
    await queryRunner.query(`
      alter table audit_events
        drop constraint audit_events_chained_whole,
        drop column append_id,
        alter column seq set not null,
        alter column prev_hash set not null,
        alter column hash set not null`);
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
    await queryRunner.query(`
      create trigger audit_events_chain before insert on audit_events
        for each row execute function audit_events_chain()`);
  }
}
