import { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * Messages are written in batches: `parley_send_messages` takes any number of sends of one
 * organization, as parallel arrays, and writes each exactly as `parley_send_message` wrote one,
 * in array order, in one statement and one transaction.
 *
 * Measured with pgbench at 50 concurrent senders of one organization, PostgreSQL spent about
 * 340 µs of CPU per message sent one statement at a time, against about 160 µs in batches of 10
 * and 140 µs in batches of 25: the statement, the transaction, its commit and the round trip are
 * paid once per batch. The server sends a batch of whatever arrived while the previous batches
 * of that organization were running (libs/conversations/src/message-writer.ts), so a lone message
 * is a batch of one and waits for nothing.
 *
 * Each send is decided on its own: its conversation is read FOR SHARE under row-level security,
 * and the message and its audit entry are inserted only when the conversation still has the
 * contact and assignee the server authorized the write against. The function returns one row per
 * send whose conversation it could see, with the send's position in the arrays (`ord`, from 1),
 * the conversation as it is now, and the stored message's id and time, or nulls when it inserted
 * nothing (the state changed, or the idempotency key was taken). A send whose conversation it
 * cannot see (another organization's, or none) has no row.
 *
 * `parley_send_message`, the one-send version, is dropped: the batch of one replaces it.
 */

const ENTER_TENANT = `
        if p_organization is null then
          raise exception 'a tenant statement needs an organization' using errcode = 'invalid_parameter_value';
        end if;
        if nullif(pg_catalog.current_setting('app.organization_id', true), '') <> p_organization::text then
          raise exception 'a tenant statement cannot switch organization' using errcode = 'insufficient_privilege';
        end if;
        perform pg_catalog.set_config('app.organization_id', p_organization::text, true);`;

const SEND_MESSAGES = `parley_send_messages(
        p_organization uuid, p_conversations uuid[], p_contacts uuid[], p_assignees uuid[],
        p_ids uuid[], p_author_types text[], p_author_ids uuid[], p_bodies text[],
        p_client_message_ids text[], p_ats timestamptz[], p_actor_types text[], p_actor_ids text[],
        p_request_ids text[], p_ips text[], p_elevations uuid[], p_audit boolean)`;

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

const SEND_MESSAGE = `parley_send_message(
        p_organization uuid, p_conversation uuid, p_contact uuid, p_assignee uuid,
        p_id uuid, p_author_type text, p_author_id uuid, p_body text, p_client_message_id text,
        p_at timestamptz, p_actor_type text, p_actor_id text, p_request_id text, p_ip text,
        p_elevation uuid, p_audit boolean)`;

const SEND_MESSAGE_ARGUMENTS =
  'uuid, uuid, uuid, uuid, uuid, text, uuid, text, text, timestamptz, text, text, text, text, uuid, boolean';

const SEND_MESSAGES_ARGUMENTS =
  'uuid, uuid[], uuid[], uuid[], uuid[], text[], uuid[], text[], text[], timestamptz[], text[], text[], text[], text[], uuid[], boolean';

export class BatchMessageWrites1765411200000 implements MigrationInterface {
  name = 'BatchMessageWrites1765411200000';

  async up(queryRunner: QueryRunner): Promise<void> {
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
    await queryRunner.query(`drop function parley_send_message(${SEND_MESSAGE_ARGUMENTS})`);
  }

  /** Brings back the one-send function as LightenMessageWrites left it. */
  async down(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query(`
      create function ${SEND_MESSAGE}
      returns table (conversation_id uuid, organization_id uuid, contact_id uuid, assignee_id uuid,
                     id uuid, created_at timestamptz)
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
    await queryRunner.query(
      `revoke all on function parley_send_message(${SEND_MESSAGE_ARGUMENTS}) from public`,
    );
    await queryRunner.query(
      `grant execute on function parley_send_message(${SEND_MESSAGE_ARGUMENTS}) to parley_app`,
    );
    await queryRunner.query(`drop function parley_send_messages(${SEND_MESSAGES_ARGUMENTS})`);
  }
}
