import { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * The two hottest paths, sending a message and reading a page of them, as one statement each.
 *
 * Until now each was three round trips: START TRANSACTION with set_config, the statement, COMMIT,
 * and the statement was parsed and planned on every call. Here each becomes a function that
 * enters the tenant itself (`parley_enter_tenant`, the same transaction-local setting the
 * request transactions make) and then runs the same SQL as before, so a call outside a
 * transaction is its own implicit transaction: one round trip, with the plans cached by PL/pgSQL
 * per connection. The functions run as the caller (no security definer): row-level security
 * applies to every row they touch exactly as it did.
 *
 * `parley_message_page` also says whether `after` names a message of that conversation, so a
 * cursor from elsewhere is refused instead of read as a point in time.
 *
 * `parley_send_message` inserts only when the conversation is still in the state the server
 * authorized the write against (same contact, same assignee); otherwise, or when no state is
 * given, it inserts nothing and answers with the conversation as it is now, so the server can
 * decide again. The decision thus stays with the server's CASL rules while the write commits in
 * the same statement that checks it. The conversation row is read FOR SHARE: a reassignment
 * running at the same time waits for the send, or the send sees its result, never both sides of it.
 *
 * The messages table also loses its foreign key to organizations: the key to its conversation
 * (organization_id, id) already implies it, and each insert checked both.
 */
export class AddTenantStatements1765238400000 implements MigrationInterface {
  name = 'AddTenantStatements1765238400000';

  async up(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query(`
      create function parley_enter_tenant(p_organization uuid) returns void
      language plpgsql set search_path = public, pg_temp as $$
      declare
        current_tenant text := nullif(current_setting('app.organization_id', true), '');
      begin
        if p_organization is null then
          raise exception 'a tenant statement needs an organization' using errcode = 'invalid_parameter_value';
        end if;
        if current_tenant is not null and current_tenant <> p_organization::text then
          raise exception 'a tenant statement cannot switch organization' using errcode = 'insufficient_privilege';
        end if;
        perform set_config('app.organization_id', p_organization::text, true);
      end
      $$`);

    await queryRunner.query(`
      create function parley_send_message(
        p_organization uuid, p_conversation uuid, p_contact uuid, p_assignee uuid,
        p_id uuid, p_author_type text, p_author_id uuid, p_body text, p_client_message_id text,
        p_at timestamptz, p_actor_type text, p_actor_id text, p_request_id text, p_ip text,
        p_elevation uuid, p_audit boolean)
      returns table (conversation_id uuid, organization_id uuid, contact_id uuid, assignee_id uuid,
                     id uuid, created_at timestamptz)
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

    await queryRunner.query(`
      create function parley_message_page(
        p_organization uuid, p_conversation uuid, p_limit integer, p_after uuid)
      returns table (organization_id uuid, contact_id uuid, assignee_id uuid, after_found boolean,
                     id uuid, author_type text, author_id uuid, body text, created_at timestamptz)
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

    for (const fn of [
      'parley_enter_tenant(uuid)',
      'parley_send_message(uuid, uuid, uuid, uuid, uuid, text, uuid, text, text, timestamptz, text, text, text, text, uuid, boolean)',
      'parley_message_page(uuid, uuid, integer, uuid)',
    ]) {
      await queryRunner.query(`revoke all on function ${fn} from public`);
      await queryRunner.query(`grant execute on function ${fn} to parley_app`);
    }

    await queryRunner.query(`alter table messages drop constraint messages_organization_id_fkey`);
  }

  async down(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query(`
      alter table messages add constraint messages_organization_id_fkey
        foreign key (organization_id) references organizations (id) on delete cascade`);
    await queryRunner.query(`drop function parley_message_page(uuid, uuid, integer, uuid)`);
    await queryRunner.query(
      `drop function parley_send_message(uuid, uuid, uuid, uuid, uuid, text, uuid, text, text, timestamptz, text, text, text, text, uuid, boolean)`,
    );
    await queryRunner.query(`drop function parley_enter_tenant(uuid)`);
  }
}
