import { MigrationInterface, QueryRunner } from 'typeorm';

const ALLOWED_UPDATE = `old.seq is null and new.seq is not null
  and (new.id, new.organization_id, new.occurred_at, new.actor_type, new.actor_id, new.action,
       new.target_type, new.target_id, new.request_id, new.ip, new.changes, new.metadata,
       new.elevation_id, new.append_id)
      is not distinct from
      (old.id, old.organization_id, old.occurred_at, old.actor_type, old.actor_id, old.action,
       old.target_type, old.target_id, old.request_id, old.ip, old.changes, old.metadata,
       old.elevation_id, old.append_id)`;

/**
 * Links audit entries for less: linking cost about as much as appending. The chain is computed
 * as before, entry by entry under the head's row lock, but written back with one UPDATE for
 * the whole batch instead of one per entry, and the append-only trigger now says in its WHEN
 * clause which update it lets through (filling the chain columns of an unchained entry,
 * nothing else), so that update no longer calls a PL/pgSQL function per row. Any other update
 * still reaches the function, which refuses it.
 */
export class LinkAuditEntriesInOneUpdate1765238500000 implements MigrationInterface {
  name = 'LinkAuditEntriesInOneUpdate1765238500000';

  async up(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query(`drop trigger audit_events_append_only on audit_events`);
    await queryRunner.query(`
      create trigger audit_events_append_only before update on audit_events
        for each row when (not (${ALLOWED_UPDATE}))
        execute function audit_events_refuse_update()`);

    await queryRunner.query(`
      create or replace function parley_audit_chain(p_organization uuid, p_limit integer)
      returns integer language plpgsql security definer set search_path = public, pg_temp as $$
      declare
        head record;
        e audit_events;
        linked integer := 0;
        ids uuid[] := '{}';
        seqs bigint[] := '{}';
        prevs bytea[] := '{}';
        hashes bytea[] := '{}';
        updated integer;
      begin
        insert into audit_chain_heads (organization_id, seq, hash)
          values (p_organization, 0, '\\x${'00'.repeat(32)}'::bytea)
          on conflict (organization_id) do nothing;
        select seq, hash into head from audit_chain_heads
          where organization_id = p_organization for update;
        for e in select * from audit_events
                  where organization_id = p_organization and seq is null
                  order by append_id limit greatest(p_limit, 1) loop
          e.seq := head.seq + 1;
          e.prev_hash := head.hash;
          e.hash := sha256(head.hash || convert_to(parley_audit_canonical(e), 'UTF8'));
          linked := linked + 1;
          ids[linked] := e.id;
          seqs[linked] := e.seq;
          prevs[linked] := e.prev_hash;
          hashes[linked] := e.hash;
          head.seq := e.seq;
          head.hash := e.hash;
        end loop;
        if linked > 0 then
          update audit_events a
             set seq = u.seq, prev_hash = u.prev_hash, hash = u.hash
            from unnest(ids, seqs, prevs, hashes) as u (id, seq, prev_hash, hash)
           where a.id = u.id and a.organization_id = p_organization and a.seq is null;
          get diagnostics updated = row_count;
          if updated <> linked then
            raise exception 'audit chain: % entries computed, % written', linked, updated;
          end if;
          update audit_chain_heads set seq = head.seq, hash = head.hash, updated_at = now()
            where organization_id = p_organization;
        end if;
        return linked;
      end
      $$`);
  }

  async down(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query(`drop trigger audit_events_append_only on audit_events`);
    await queryRunner.query(`
      create trigger audit_events_append_only before update on audit_events
        for each row execute function audit_events_refuse_update()`);
    await queryRunner.query(`
      create or replace function parley_audit_chain(p_organization uuid, p_limit integer)
      returns integer language plpgsql security definer set search_path = public, pg_temp as $$
      declare
        head record;
        e audit_events;
        linked integer := 0;
      begin
        insert into audit_chain_heads (organization_id, seq, hash)
          values (p_organization, 0, '\\x${'00'.repeat(32)}'::bytea)
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
  }
}
