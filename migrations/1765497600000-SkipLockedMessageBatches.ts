import { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * A message batch no longer waits for a conversation row another transaction holds locked (a
 * reassignment, a contact's erasure): before, one such row held up every send in the batch, and
 * the organization's next batches behind it. `parley_send_messages` gains `p_wait`: false, it
 * reads conversations FOR SHARE SKIP LOCKED and answers a send whose conversation is visible but
 * locked as `busy` (a new column, the rest of its row null), writing nothing for it; true, it
 * waits for the lock and decides on the outcome, as the one-send function did. The server
 * writes busy sends alone, with `p_wait` true, after one another, and routes later sends to the
 * same conversation behind them (libs/conversations/src/message-writer.ts).
 *
 * `create or replace` and `drop ... if exists`: a database migrated at commit 5379d69, which
 * changed BatchMessageWrites in place, already has the new function and not the old one.
 */

const ENTER_TENANT = `
        if p_organization is null then
          raise exception 'a tenant statement needs an organization' using errcode = 'invalid_parameter_value';
        end if;
        if nullif(pg_catalog.current_setting('app.organization_id', true), '') <> p_organization::text then
          raise exception 'a tenant statement cannot switch organization' using errcode = 'insufficient_privilege';
        end if;
        perform pg_catalog.set_config('app.organization_id', p_organization::text, true);`;

/** Every array but p_ids, whose length is the number of sends. */
const PARALLEL_ARRAYS = [
  'p_conversations',
  'p_contacts',
  'p_assignees',
  'p_author_types',
  'p_author_ids',
  'p_bodies',
  'p_client_message_ids',
  'p_ats',
  'p_actor_types',
  'p_actor_ids',
  'p_request_ids',
  'p_ips',
  'p_elevations',
];

const SEND_MESSAGES = `parley_send_messages(
        p_organization uuid, p_conversations uuid[], p_contacts uuid[], p_assignees uuid[],
        p_ids uuid[], p_author_types text[], p_author_ids uuid[], p_bodies text[],
        p_client_message_ids text[], p_ats timestamptz[], p_actor_types text[], p_actor_ids text[],
        p_request_ids text[], p_ips text[], p_elevations uuid[], p_audit boolean)`;

const SEND_MESSAGES_WAITING = `parley_send_messages(
        p_organization uuid, p_conversations uuid[], p_contacts uuid[], p_assignees uuid[],
        p_ids uuid[], p_author_types text[], p_author_ids uuid[], p_bodies text[],
        p_client_message_ids text[], p_ats timestamptz[], p_actor_types text[], p_actor_ids text[],
        p_request_ids text[], p_ips text[], p_elevations uuid[], p_audit boolean, p_wait boolean)`;

const SEND_MESSAGES_ARGUMENTS =
  'uuid, uuid[], uuid[], uuid[], uuid[], text[], uuid[], text[], text[], timestamptz[], text[], text[], text[], text[], uuid[], boolean';

const SEND_MESSAGES_WAITING_ARGUMENTS = `${SEND_MESSAGES_ARGUMENTS}, boolean`;

export class SkipLockedMessageBatches1765497600000 implements MigrationInterface {
  name = 'SkipLockedMessageBatches1765497600000';

  async up(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query(`
      create or replace function ${SEND_MESSAGES_WAITING}
      returns table (ord integer, busy boolean, conversation_id uuid, organization_id uuid,
                     contact_id uuid, assignee_id uuid, id uuid, created_at timestamptz)
      language plpgsql as $$
      declare
        sends integer := coalesce(pg_catalog.array_length(p_ids, 1), 0);
        n integer;
        c record;
        m record;
      begin
        ${ENTER_TENANT}
        if array[${PARALLEL_ARRAYS.map((name) => `coalesce(pg_catalog.array_length(${name}, 1), 0)`).join(', ')}]
           <> pg_catalog.array_fill(sends, array[${PARALLEL_ARRAYS.length}]) then
          raise exception 'every array of a message batch must have one element per send'
            using errcode = 'invalid_parameter_value';
        end if;
        for n in 1 .. sends loop
          if p_wait then
            select x.id, x.organization_id, x.contact_id, x.assignee_id into c
              from public.conversations x
             where x.id = p_conversations[n]
               for share;
          else
            select x.id, x.organization_id, x.contact_id, x.assignee_id into c
              from public.conversations x
             where x.id = p_conversations[n]
               for share skip locked;
          end if;
          if not found then
            -- Visible but locked (a reassignment or deletion in progress): skipped, so that one
            -- conversation's lock never holds up the rest of the batch.
            if not p_wait and exists (select 1 from public.conversations x where x.id = p_conversations[n]) then
              ord := n;
              busy := true;
              conversation_id := null;
              organization_id := null;
              contact_id := null;
              assignee_id := null;
              id := null;
              created_at := null;
              return next;
            end if;
            continue;
          end if;
          ord := n;
          busy := false;
          conversation_id := c.id;
          organization_id := c.organization_id;
          contact_id := c.contact_id;
          assignee_id := c.assignee_id;
          id := null;
          created_at := null;
          if c.contact_id = p_contacts[n] and c.assignee_id is not distinct from p_assignees[n] then
            insert into public.messages as x
              (id, organization_id, conversation_id, author_type, author_id, body, client_message_id,
               created_at)
            values (p_ids[n], c.organization_id, c.id, p_author_types[n], p_author_ids[n], p_bodies[n],
                    p_client_message_ids[n], p_ats[n])
            on conflict do nothing
            returning x.id, x.created_at into m;
            if found then
              id := m.id;
              created_at := m.created_at;
              if p_audit then
                insert into public.audit_events
                  (organization_id, occurred_at, actor_type, actor_id, action, target_type, target_id,
                   request_id, ip, metadata, elevation_id)
                values (c.organization_id, p_ats[n], p_actor_types[n], p_actor_ids[n], 'message.created',
                        'message', m.id::text, p_request_ids[n], p_ips[n],
                        pg_catalog.jsonb_build_object('conversationId', c.id), p_elevations[n]);
              end if;
            end if;
          end if;
          return next;
        end loop;
      end
      $$`);
    await queryRunner.query(
      `revoke all on function parley_send_messages(${SEND_MESSAGES_WAITING_ARGUMENTS}) from public`,
    );
    await queryRunner.query(
      `grant execute on function parley_send_messages(${SEND_MESSAGES_WAITING_ARGUMENTS}) to parley_app`,
    );
    await queryRunner.query(
      `drop function if exists parley_send_messages(${SEND_MESSAGES_ARGUMENTS})`,
    );
  }

  /** Brings back the batch function that always waits, as BatchMessageWrites left it. */
  async down(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query(`
      create function ${SEND_MESSAGES}
      returns table (ord integer, conversation_id uuid, organization_id uuid, contact_id uuid,
                     assignee_id uuid, id uuid, created_at timestamptz)
      language plpgsql as $$
      declare
        sends integer := coalesce(pg_catalog.array_length(p_ids, 1), 0);
        n integer;
        c record;
        m record;
      begin
        ${ENTER_TENANT}
        if array[${PARALLEL_ARRAYS.map((name) => `coalesce(pg_catalog.array_length(${name}, 1), 0)`).join(', ')}]
           <> pg_catalog.array_fill(sends, array[${PARALLEL_ARRAYS.length}]) then
          raise exception 'every array of a message batch must have one element per send'
            using errcode = 'invalid_parameter_value';
        end if;
        for n in 1 .. sends loop
          select x.id, x.organization_id, x.contact_id, x.assignee_id into c
            from public.conversations x
           where x.id = p_conversations[n]
             for share;
          continue when not found;
          ord := n;
          conversation_id := c.id;
          organization_id := c.organization_id;
          contact_id := c.contact_id;
          assignee_id := c.assignee_id;
          id := null;
          created_at := null;
          if c.contact_id = p_contacts[n] and c.assignee_id is not distinct from p_assignees[n] then
            insert into public.messages as x
              (id, organization_id, conversation_id, author_type, author_id, body, client_message_id,
               created_at)
            values (p_ids[n], c.organization_id, c.id, p_author_types[n], p_author_ids[n], p_bodies[n],
                    p_client_message_ids[n], p_ats[n])
            on conflict do nothing
            returning x.id, x.created_at into m;
            if found then
              id := m.id;
              created_at := m.created_at;
              if p_audit then
                insert into public.audit_events
                  (organization_id, occurred_at, actor_type, actor_id, action, target_type, target_id,
                   request_id, ip, metadata, elevation_id)
                values (c.organization_id, p_ats[n], p_actor_types[n], p_actor_ids[n], 'message.created',
                        'message', m.id::text, p_request_ids[n], p_ips[n],
                        pg_catalog.jsonb_build_object('conversationId', c.id), p_elevations[n]);
              end if;
            end if;
          end if;
          return next;
        end loop;
      end
      $$`);
    await queryRunner.query(
      `revoke all on function parley_send_messages(${SEND_MESSAGES_ARGUMENTS}) from public`,
    );
    await queryRunner.query(
      `grant execute on function parley_send_messages(${SEND_MESSAGES_ARGUMENTS}) to parley_app`,
    );
    await queryRunner.query(
      `drop function parley_send_messages(${SEND_MESSAGES_WAITING_ARGUMENTS})`,
    );
  }
}
