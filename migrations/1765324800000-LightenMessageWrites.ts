import { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * What each message costs PostgreSQL, measured with perf and pgbench at 50 concurrent senders:
 * the statement and its audit entry came to about 500 µs of CPU against 90 µs for a bare insert.
 * This migration removes the parts that cost the most and protect nothing the rest does not.
 *
 * - The audit trail's foreign key to organizations. Every message's audit entry locked the one
 *   organization row FOR KEY SHARE, so concurrent senders of one organization built a new
 *   multixact on that row for each entry: about 100 µs each. The organization of an entry is
 *   pinned by row-level security instead (WITH CHECK: only the organization the transaction
 *   entered), and organizations are never deleted.
 * - The chain index covers linked entries only. Unlinked entries all had the key
 *   (organization, NULL), and each insert searched its way past the other NULLs: about 50 µs.
 * - The sealed-column constraints are written out in each constraint instead of calling
 *   parley_is_sealed, which PostgreSQL inlined again, parsing its SQL, for every row a statement
 *   wrote; and they check the envelope with LIKE and simple character classes instead of one
 *   regular expression whose counted repetitions cost about 40 ns per character of the value.
 *   Together about 20 µs a row. Clear values and damaged envelopes are refused as before; what
 *   is no longer checked is that the version's later characters are digits and that the nonce
 *   and ciphertext hold no further dots.
 * - parley_send_message and parley_message_page enter the tenant inline and name their tables
 *   by schema instead of setting search_path, which PostgreSQL saved and restored on each call.
 *   parley_send_message runs its steps one by one, each a small cached plan, instead of one
 *   statement with four common table expressions.
 * - parley_audit_canonical no longer sets search_path, so it can be inlined where it is used.
 */

/**
 * One sealed value: pv1.<key id>.<version>.<nonce>.<ciphertext and tag>. LIKE checks the layout
 * (where the dashes and dots fall, 16 characters of nonce, at least 22 of ciphertext), one
 * character class the alphabet of the whole value, and one regular expression, on the first 42
 * characters only, that the key id is lower-case hexadecimal and the version starts 1 to 9.
 */
function sealedCheck(column: string): string {
  return (
    `${column} like 'pv1.________-____-____-____-____________._%.________________.______________________%'` +
    ` and ${column} !~ '[^-._A-Za-z0-9]'` +
    ` and left(${column}, 42) ~ '^pv1\\.[-0-9a-f]+\\.[1-9]'`
  );
}

const ENTER_TENANT = `
        if p_organization is null then
          raise exception 'a tenant statement needs an organization' using errcode = 'invalid_parameter_value';
        end if;
        if nullif(pg_catalog.current_setting('app.organization_id', true), '') <> p_organization::text then
          raise exception 'a tenant statement cannot switch organization' using errcode = 'insufficient_privilege';
        end if;
        perform pg_catalog.set_config('app.organization_id', p_organization::text, true);`;

const SEND_MESSAGE_SIGNATURE = `parley_send_message(
        p_organization uuid, p_conversation uuid, p_contact uuid, p_assignee uuid,
        p_id uuid, p_author_type text, p_author_id uuid, p_body text, p_client_message_id text,
        p_at timestamptz, p_actor_type text, p_actor_id text, p_request_id text, p_ip text,
        p_elevation uuid, p_audit boolean)
      returns table (conversation_id uuid, organization_id uuid, contact_id uuid, assignee_id uuid,
                     id uuid, created_at timestamptz)`;

const MESSAGE_PAGE_SIGNATURE = `parley_message_page(
        p_organization uuid, p_conversation uuid, p_limit integer, p_after uuid)
      returns table (organization_id uuid, contact_id uuid, assignee_id uuid, after_found boolean,
                     id uuid, author_type text, author_id uuid, body text, created_at timestamptz)`;

interface SealedConstraint {
  table: string;
  name: string;
  column: string;
}

export class LightenMessageWrites1765324800000 implements MigrationInterface {
  name = 'LightenMessageWrites1765324800000';

  async up(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query(
      `alter table audit_events drop constraint audit_events_organization_id_fkey`,
    );
    await queryRunner.query(`drop index audit_events_chain`);
    await queryRunner.query(
      `create unique index audit_events_chain on audit_events (organization_id, seq) where seq is not null`,
    );

    const constraints: SealedConstraint[] = await queryRunner.query(`
      select conrelid::regclass::text as table, conname as name,
             (regexp_match(pg_get_constraintdef(oid), 'parley_is_sealed\\((\\w+)\\)'))[1] as column
        from pg_constraint
       where contype = 'c' and pg_get_constraintdef(oid) like '%parley_is_sealed(%'
       order by 1, 2`);
    for (const { table, name, column } of constraints) {
      // Every value already passed the stricter check, which implies this one.
      await queryRunner.query(
        `alter table ${table} drop constraint ${name}, add constraint ${name} check (${sealedCheck(column)})`,
      );
    }

    await queryRunner.query(`
      create or replace function ${SEND_MESSAGE_SIGNATURE}
      language plpgsql as $$
      declare
        c record;
        m record;
      begin
        ${ENTER_TENANT}
        select x.id, x.organization_id, x.contact_id, x.assignee_id into c
          from public.conversations x
         where x.id = p_conversation
           for share;
        if not found then
          return;
        end if;
        conversation_id := c.id;
        organization_id := c.organization_id;
        contact_id := c.contact_id;
        assignee_id := c.assignee_id;
        if c.contact_id = p_contact and c.assignee_id is not distinct from p_assignee then
          insert into public.messages as x
            (id, organization_id, conversation_id, author_type, author_id, body, client_message_id, created_at)
          values (p_id, c.organization_id, c.id, p_author_type, p_author_id, p_body, p_client_message_id, p_at)
          on conflict do nothing
          returning x.id, x.created_at into m;
          if m.id is not null then
            id := m.id;
            created_at := m.created_at;
            if p_audit then
              insert into public.audit_events
                (organization_id, occurred_at, actor_type, actor_id, action, target_type, target_id,
                 request_id, ip, metadata, elevation_id)
              values (c.organization_id, p_at, p_actor_type, p_actor_id, 'message.created', 'message',
                      m.id::text, p_request_id, p_ip,
                      pg_catalog.jsonb_build_object('conversationId', c.id), p_elevation);
            end if;
          end if;
        end if;
        return next;
      end
      $$`);
    await queryRunner.query(`
      alter function parley_send_message(uuid, uuid, uuid, uuid, uuid, text, uuid, text, text,
        timestamptz, text, text, text, text, uuid, boolean) reset search_path`);

    await queryRunner.query(`
      create or replace function ${MESSAGE_PAGE_SIGNATURE}
      language plpgsql as $$
      #variable_conflict use_column
      begin
        ${ENTER_TENANT}
        return query
          select c.organization_id, c.contact_id, c.assignee_id, a.found,
                 m.id, m.author_type, m.author_id, m.body, m.created_at
            from public.conversations c
            cross join lateral (
              select p_after is null or exists (
                select 1 from public.messages
                 where id = p_after and organization_id = c.organization_id and conversation_id = c.id
              ) as found
            ) a
            left join lateral (
              select id, author_type, author_id, body, created_at
                from public.messages
               where organization_id = c.organization_id and conversation_id = c.id
                 and (p_after is null
                      or (created_at, id) > (select created_at, id from public.messages
                                              where id = p_after and conversation_id = c.id))
               order by created_at, id
               limit p_limit
            ) m on a.found
           where c.id = p_conversation;
      end
      $$`);
    await queryRunner.query(
      `alter function parley_message_page(uuid, uuid, integer, uuid) reset search_path`,
    );

    await queryRunner.query(
      `alter function parley_audit_canonical(audit_events) reset search_path`,
    );
  }

  /** Restores the statements, constraints, index and key as AddTenantStatements left them. */
  async down(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query(
      `alter function parley_audit_canonical(audit_events) set search_path = public, pg_temp`,
    );

    await queryRunner.query(`
      create or replace function ${MESSAGE_PAGE_SIGNATURE}
      language plpgsql set search_path = public, pg_temp as $$
      #variable_conflict use_column
      begin
        perform parley_enter_tenant(p_organization);
        return query
          select c.organization_id, c.contact_id, c.assignee_id, a.found,
                 m.id, m.author_type, m.author_id, m.body, m.created_at
            from conversations c
            cross join lateral (
              select p_after is null or exists (
                select 1 from messages
                 where id = p_after and organization_id = c.organization_id and conversation_id = c.id
              ) as found
            ) a
            left join lateral (
              select id, author_type, author_id, body, created_at
                from messages
               where organization_id = c.organization_id and conversation_id = c.id
                 and (p_after is null
                      or (created_at, id) > (select created_at, id from messages
                                              where id = p_after and conversation_id = c.id))
               order by created_at, id
               limit p_limit
            ) m on a.found
           where c.id = p_conversation;
      end
      $$`);

    await queryRunner.query(`
      create or replace function ${SEND_MESSAGE_SIGNATURE}
      language plpgsql set search_path = public, pg_temp as $$
      #variable_conflict use_column
      begin
        perform parley_enter_tenant(p_organization);
        return query
          with c as (
            select id, organization_id, contact_id, assignee_id from conversations
             where id = p_conversation
               for share
          ), m as (
            insert into messages (id, organization_id, conversation_id, author_type, author_id, body, client_message_id, created_at)
            select p_id, c.organization_id, c.id, p_author_type, p_author_id, p_body, p_client_message_id, p_at
              from c
             where c.contact_id = p_contact and c.assignee_id is not distinct from p_assignee
            on conflict do nothing
            returning id, created_at
          ), a as (
            insert into audit_events
              (organization_id, occurred_at, actor_type, actor_id, action, target_type, target_id, request_id, ip, metadata, elevation_id)
            select c.organization_id, p_at, p_actor_type, p_actor_id, 'message.created', 'message', m.id::text,
                   p_request_id, p_ip, jsonb_build_object('conversationId', c.id), p_elevation
              from m, c where p_audit
          )
          select c.id, c.organization_id, c.contact_id, c.assignee_id, m.id, m.created_at
            from c left join m on true;
      end
      $$`);

    const constraints: SealedConstraint[] = await queryRunner.query(`
      select conrelid::regclass::text as table, conname as name,
             (regexp_match(pg_get_constraintdef(oid), '\\((\\w+) ~~ ''pv1\\.'))[1] as column
        from pg_constraint
       where contype = 'c' and conname like '%\\_sealed' and pg_get_constraintdef(oid) like '%~~ ''pv1.%'
       order by 1, 2`);
    for (const { table, name, column } of constraints) {
      await queryRunner.query(
        `alter table ${table} drop constraint ${name}, add constraint ${name} check (parley_is_sealed(${column}))`,
      );
    }

    await queryRunner.query(`drop index audit_events_chain`);
    await queryRunner.query(
      `create unique index audit_events_chain on audit_events (organization_id, seq)`,
    );
    await queryRunner.query(`
      alter table audit_events add constraint audit_events_organization_id_fkey
        foreign key (organization_id) references organizations (id) on delete cascade`);
  }
}
