import { randomUUID } from 'node:crypto';

import {
  MembersByRole,
  SignedUpOrganization,
  addMemberOfEachRole,
  signupOrganization,
  uniqueEmail,
} from './factories';
import {
  ApiResponse,
  TestServer,
  expectNoSecretsInLogs,
  expectProblem,
  startServer,
} from './support';

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;
const ISO_DATE = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?Z$/;

/** Text that only appears in message bodies of this suite, so the log check can look for it. */
const BODY_MARKER = `secret-body-${randomUUID()}`;

interface Tenant {
  organization: SignedUpOrganization;
  members: MembersByRole;
}

describe('contacts, conversations and messages over REST', () => {
  let server: TestServer;
  let alpha: Tenant;
  let beta: Tenant;

  const tokenOf = (tenant: Tenant, role: keyof MembersByRole) =>
    tenant.members[role].tokens.accessToken;

  async function createContact(tenant: Tenant, role: keyof MembersByRole = 'admin') {
    const response = await server.api.post(
      '/api/v1/contacts',
      { email: uniqueEmail('contact'), name: 'Grace Hopper' },
      { token: tokenOf(tenant, role) },
    );
    expect(response.status).toBe(201);

    return response.body as { id: string; email: string };
  }

  async function openConversation(
    tenant: Tenant,
    options: { role?: keyof MembersByRole; assigneeId?: string | null; subject?: string } = {},
  ) {
    const contact = await createContact(tenant);
    const opened = await server.api.post(
      '/api/v1/conversations',
      { contactId: contact.id, subject: options.subject ?? 'Order never arrived' },
      { token: tokenOf(tenant, options.role ?? 'admin') },
    );
    expect(opened.status).toBe(201);
    if (options.assigneeId !== undefined && options.assigneeId !== null) {
      const assigned = await server.api.patch(
        `/api/v1/conversations/${opened.body.id}`,
        { assigneeId: options.assigneeId },
        { token: tokenOf(tenant, 'admin') },
      );
      expect(assigned.status).toBe(200);

      return { contact, conversation: assigned.body as ConversationBody };
    }

    return { contact, conversation: opened.body as ConversationBody };
  }

  async function messagesOf(tenant: Tenant, conversationId: string): Promise<MessageBody[]> {
    const response = await server.api.get(`/api/v1/conversations/${conversationId}/messages`, {
      token: tokenOf(tenant, 'admin'),
    });
    expect(response.status).toBe(200);

    return response.body.items;
  }

  async function conversationOf(tenant: Tenant, id: string): Promise<ConversationBody> {
    const response = await server.api.get(`/api/v1/conversations/${id}`, {
      token: tokenOf(tenant, 'admin'),
    });
    expect(response.status).toBe(200);

    return response.body;
  }

  beforeAll(async () => {
    server = await startServer();
    const first = await signupOrganization(server.api);
    const second = await signupOrganization(server.api);
    alpha = { organization: first, members: await addMemberOfEachRole(server.api, first) };
    beta = { organization: second, members: await addMemberOfEachRole(server.api, second) };
  });

  afterAll(async () => {
    await server?.close();
  });

  describe('contract shapes', () => {
    it('creates a contact and reads it back with the contact shape', async () => {
      const email = uniqueEmail('Mixed.Case');

      const created = await server.api.post(
        '/api/v1/contacts',
        { email, name: '  Grace Hopper ', phone: '+44 20 7946 0958' },
        { token: tokenOf(alpha, 'agent') },
      );

      expect(created.status).toBe(201);
      expect(created.body).toEqual({
        id: expect.stringMatching(UUID),
        email: email.toLowerCase(),
        name: 'Grace Hopper',
        phone: '+44 20 7946 0958',
        createdAt: expect.stringMatching(ISO_DATE),
      });
      const read = await server.api.get(`/api/v1/contacts/${created.body.id}`, {
        token: tokenOf(alpha, 'manager'),
      });
      expect(read.status).toBe(200);
      expect(read.body).toEqual(created.body);
    });

    it('shows a viewer a contact without any of its confidential fields', async () => {
      const created = await server.api.post(
        '/api/v1/contacts',
        { email: uniqueEmail('viewed'), name: 'Katherine Johnson', phone: '+1 202 555 0147' },
        { token: tokenOf(alpha, 'agent') },
      );

      const read = await server.api.get(`/api/v1/contacts/${created.body.id}`, {
        token: tokenOf(alpha, 'viewer'),
      });

      expect(read.status).toBe(200);
      expect(read.body).toEqual({
        id: created.body.id,
        email: null,
        name: null,
        phone: null,
        createdAt: created.body.createdAt,
        redactedFields: ['email', 'name', 'phone'],
      });
      expect(JSON.stringify(read.body)).not.toContain('Katherine');
    });

    it('refuses a second contact with the same email in one organization with 409', async () => {
      const contact = await createContact(alpha);

      const again = await server.api.post(
        '/api/v1/contacts',
        { email: contact.email.toUpperCase(), name: 'Impostor' },
        { token: tokenOf(alpha, 'admin') },
      );

      expectProblem(again, 409, 'contact_email_taken');
      const elsewhere = await server.api.post(
        '/api/v1/contacts',
        { email: contact.email, name: 'Same email, other tenant' },
        { token: tokenOf(beta, 'admin') },
      );
      expect(elsewhere.status).toBe(201);
    });

    it('refuses an invalid contact with validation_failed', async () => {
      const response = await server.api.post(
        '/api/v1/contacts',
        { email: 'not-an-email', name: 'X', extra: true },
        { token: tokenOf(alpha, 'admin') },
      );

      expectProblem(response, 400, 'validation_failed');
    });

    it('opens, lists and reads a conversation with the conversation shape', async () => {
      const contact = await createContact(alpha);

      const opened = await server.api.post(
        '/api/v1/conversations',
        { contactId: contact.id, subject: 'Refund' },
        { token: tokenOf(alpha, 'agent') },
      );

      expect(opened.status).toBe(201);
      expect(opened.body).toEqual({
        id: expect.stringMatching(UUID),
        contactId: contact.id,
        subject: 'Refund',
        status: 'open',
        assigneeId: null,
        createdAt: expect.stringMatching(ISO_DATE),
        updatedAt: expect.stringMatching(ISO_DATE),
      });
      const list = await server.api.get('/api/v1/conversations', {
        token: tokenOf(alpha, 'viewer'),
      });
      expect(list.status).toBe(200);
      expect(Object.keys(list.body)).toEqual(['items']);
      expect(list.body.items).toContainEqual(opened.body);
      const read = await server.api.get(`/api/v1/conversations/${opened.body.id}`, {
        token: tokenOf(alpha, 'viewer'),
      });
      expect(read.body).toEqual(opened.body);
    });

    it('filters the conversation list by status', async () => {
      const { conversation } = await openConversation(alpha);
      await server.api.patch(
        `/api/v1/conversations/${conversation.id}`,
        { status: 'pending' },
        { token: tokenOf(alpha, 'admin') },
      );

      const pending = await server.api.get('/api/v1/conversations?status=pending', {
        token: tokenOf(alpha, 'admin'),
      });

      expect(pending.status).toBe(200);
      expect(pending.body.items.map((item: ConversationBody) => item.id)).toContain(
        conversation.id,
      );
      expect(pending.body.items.every((item: ConversationBody) => item.status === 'pending')).toBe(
        true,
      );
    });

    it('refuses a conversation for a contact that does not exist with 404', async () => {
      const response = await server.api.post(
        '/api/v1/conversations',
        { contactId: randomUUID() },
        { token: tokenOf(alpha, 'admin') },
      );

      expectProblem(response, 404, 'not_found');
    });

    it('sends a message and lists it with the message shape', async () => {
      const { conversation } = await openConversation(alpha);

      const sent = await server.api.post(
        `/api/v1/conversations/${conversation.id}/messages`,
        { body: `  hello ${BODY_MARKER} ` },
        { token: tokenOf(alpha, 'agent') },
      );

      expect(sent.status).toBe(201);
      expect(sent.body).toEqual({
        id: expect.stringMatching(UUID),
        conversationId: conversation.id,
        authorType: 'agent',
        authorId: alpha.members.agent.id,
        body: `hello ${BODY_MARKER}`,
        createdAt: expect.stringMatching(ISO_DATE),
      });
      const list = await server.api.get(`/api/v1/conversations/${conversation.id}/messages`, {
        token: tokenOf(alpha, 'viewer'),
      });
      expect(list.status).toBe(200);
      expect(list.body).toEqual({ items: [sent.body] });
    });

    it('reads and writes a conversation named by its id in upper case as the same conversation', async () => {
      const { conversation } = await openConversation(alpha);
      const upper = conversation.id.toUpperCase();

      const read = await server.api.get(`/api/v1/conversations/${upper}`, {
        token: tokenOf(alpha, 'admin'),
      });
      const sent = await server.api.post(
        `/api/v1/conversations/${upper}/messages`,
        { body: 'upper-case path' },
        { token: tokenOf(alpha, 'admin') },
      );

      expect(read.status).toBe(200);
      expect(read.body).toEqual(conversation);
      expect(sent.status).toBe(201);
      expect(sent.body.conversationId).toBe(conversation.id);
      expect(await messagesOf(alpha, conversation.id)).toEqual([sent.body]);
      expect(await messagesOf(alpha, upper)).toEqual([sent.body]);
    });

    it('lists messages in order and pages after a given message', async () => {
      const { conversation } = await openConversation(alpha);
      const sent: MessageBody[] = [];
      for (const text of ['one', 'two', 'three']) {
        const response = await server.api.post(
          `/api/v1/conversations/${conversation.id}/messages`,
          { body: text },
          { token: tokenOf(alpha, 'admin') },
        );
        sent.push(response.body);
      }

      const all = await messagesOf(alpha, conversation.id);
      const after = await server.api.get(
        `/api/v1/conversations/${conversation.id}/messages?after=${sent[0].id}&limit=1`,
        { token: tokenOf(alpha, 'admin') },
      );

      expect(all.map((message) => message.body)).toEqual(['one', 'two', 'three']);
      expect(after.body.items.map((message: MessageBody) => message.body)).toEqual(['two']);
    });

    it('refuses an empty or over-long message body and stores nothing', async () => {
      const { conversation } = await openConversation(alpha);

      const empty = await server.api.post(
        `/api/v1/conversations/${conversation.id}/messages`,
        { body: '   ' },
        { token: tokenOf(alpha, 'admin') },
      );
      const long = await server.api.post(
        `/api/v1/conversations/${conversation.id}/messages`,
        { body: 'x'.repeat(4001) },
        { token: tokenOf(alpha, 'admin') },
      );
      const poisoned = await server.api.post(
        `/api/v1/conversations/${conversation.id}/messages`,
        undefined,
        { token: tokenOf(alpha, 'admin'), rawBody: '{"body":"hi","__proto__":{"admin":true}}' },
      );

      expectProblem(empty, 400, 'validation_failed');
      expectProblem(long, 400, 'validation_failed');
      expectProblem(poisoned, 400, 'invalid_json');
      expect(await messagesOf(alpha, conversation.id)).toEqual([]);
    });
  });

  describe('role by route', () => {
    const WRITERS = ['admin', 'manager', 'agent'] as const;
    const ROLES = ['admin', 'manager', 'agent', 'viewer'] as const;

    it.each(ROLES)('lets the %s role read contacts, conversations and messages', async (role) => {
      const { contact, conversation } = await openConversation(alpha);
      await server.api.post(
        `/api/v1/conversations/${conversation.id}/messages`,
        { body: 'first' },
        { token: tokenOf(alpha, 'admin') },
      );
      const token = tokenOf(alpha, role);

      const responses = await Promise.all([
        server.api.get(`/api/v1/contacts/${contact.id}`, { token }),
        server.api.get('/api/v1/conversations', { token }),
        server.api.get(`/api/v1/conversations/${conversation.id}`, { token }),
        server.api.get(`/api/v1/conversations/${conversation.id}/messages`, { token }),
      ]);

      expect(responses.map((response) => response.status)).toEqual([200, 200, 200, 200]);
      expect(responses[3].body.items).toHaveLength(1);
    });

    it.each(WRITERS)(
      'lets the %s role create contacts, conversations and messages',
      async (role) => {
        const token = tokenOf(alpha, role);

        const contact = await server.api.post(
          '/api/v1/contacts',
          { email: uniqueEmail(role), name: `Contact of ${role}` },
          { token },
        );
        const conversation = await server.api.post(
          '/api/v1/conversations',
          { contactId: contact.body.id },
          { token },
        );
        const message = await server.api.post(
          `/api/v1/conversations/${conversation.body.id}/messages`,
          { body: `from ${role}` },
          { token },
        );
        const update = await server.api.patch(
          `/api/v1/conversations/${conversation.body.id}`,
          { status: 'pending' },
          { token },
        );

        expect([contact.status, conversation.status, message.status, update.status]).toEqual([
          201, 201, 201, 200,
        ]);
        expect(message.body.authorId).toBe(alpha.members[role].id);
        expect(update.body.status).toBe('pending');
      },
    );

    it('refuses every write of a viewer with 403 forbidden and changes nothing', async () => {
      const { contact, conversation } = await openConversation(alpha);
      const token = tokenOf(alpha, 'viewer');
      const conversationsBefore = await server.api.get('/api/v1/conversations?limit=200', {
        token: tokenOf(alpha, 'admin'),
      });

      const responses = await Promise.all([
        server.api.post('/api/v1/contacts', { email: uniqueEmail('v'), name: 'No' }, { token }),
        server.api.post('/api/v1/conversations', { contactId: contact.id }, { token }),
        server.api.patch(
          `/api/v1/conversations/${conversation.id}`,
          { status: 'closed' },
          { token },
        ),
        server.api.patch(
          `/api/v1/conversations/${conversation.id}`,
          { assigneeId: alpha.members.viewer.id },
          { token },
        ),
        server.api.post(
          `/api/v1/conversations/${conversation.id}/messages`,
          { body: 'no' },
          { token },
        ),
      ]);

      for (const response of responses) {
        expectProblem(response, 403, 'forbidden');
      }
      expect(await conversationOf(alpha, conversation.id)).toEqual(conversation);
      expect(await messagesOf(alpha, conversation.id)).toEqual([]);
      const conversationsAfter = await server.api.get('/api/v1/conversations?limit=200', {
        token: tokenOf(alpha, 'admin'),
      });
      expect(conversationsAfter.body.items).toEqual(conversationsBefore.body.items);
    });

    it('refuses every route without a token with 401', async () => {
      const { contact, conversation } = await openConversation(alpha);

      const responses = await Promise.all([
        server.api.post('/api/v1/contacts', { email: uniqueEmail(), name: 'Anon' }),
        server.api.get(`/api/v1/contacts/${contact.id}`),
        server.api.post('/api/v1/conversations', { contactId: contact.id }),
        server.api.get('/api/v1/conversations'),
        server.api.get(`/api/v1/conversations/${conversation.id}`),
        server.api.patch(`/api/v1/conversations/${conversation.id}`, { status: 'closed' }),
        server.api.post(`/api/v1/conversations/${conversation.id}/messages`, { body: 'anon' }),
        server.api.get(`/api/v1/conversations/${conversation.id}/messages`),
      ]);

      for (const response of responses) {
        expectProblem(response, 401);
      }
      expect(await conversationOf(alpha, conversation.id)).toEqual(conversation);
      expect(await messagesOf(alpha, conversation.id)).toEqual([]);
    });
  });

  describe('assignment', () => {
    it('lets an agent take an unassigned conversation and work in it', async () => {
      const { conversation } = await openConversation(alpha);
      const token = tokenOf(alpha, 'agent');

      const taken = await server.api.patch(
        `/api/v1/conversations/${conversation.id}`,
        { assigneeId: alpha.members.agent.id, status: 'pending' },
        { token },
      );
      const message = await server.api.post(
        `/api/v1/conversations/${conversation.id}/messages`,
        { body: 'on it' },
        { token },
      );
      const released = await server.api.patch(
        `/api/v1/conversations/${conversation.id}`,
        { assigneeId: null },
        { token },
      );

      expect(taken.status).toBe(200);
      expect(taken.body).toEqual(
        expect.objectContaining({ assigneeId: alpha.members.agent.id, status: 'pending' }),
      );
      expect(message.status).toBe(201);
      expect(released.status).toBe(200);
      expect(released.body.assigneeId).toBeNull();
    });

    it("refuses an agent's change to a conversation assigned to someone else", async () => {
      const { conversation } = await openConversation(alpha, {
        assigneeId: alpha.members.manager.id,
      });
      const token = tokenOf(alpha, 'agent');

      const status = await server.api.patch(
        `/api/v1/conversations/${conversation.id}`,
        { status: 'closed' },
        { token },
      );
      const takeOver = await server.api.patch(
        `/api/v1/conversations/${conversation.id}`,
        { assigneeId: alpha.members.agent.id },
        { token },
      );
      const message = await server.api.post(
        `/api/v1/conversations/${conversation.id}/messages`,
        { body: 'not mine' },
        { token },
      );

      expectProblem(status, 403);
      expectProblem(takeOver, 403);
      expectProblem(message, 403, 'forbidden');
      expect(await conversationOf(alpha, conversation.id)).toEqual(conversation);
      expect(await messagesOf(alpha, conversation.id)).toEqual([]);
    });

    it('refuses an agent assigning a conversation to someone else', async () => {
      const unassigned = (await openConversation(alpha)).conversation;
      const own = (await openConversation(alpha, { assigneeId: alpha.members.agent.id }))
        .conversation;
      const token = tokenOf(alpha, 'agent');

      const fromNobody = await server.api.patch(
        `/api/v1/conversations/${unassigned.id}`,
        { assigneeId: alpha.members.manager.id },
        { token },
      );
      const fromSelf = await server.api.patch(
        `/api/v1/conversations/${own.id}`,
        { assigneeId: alpha.members.viewer.id, status: 'closed' },
        { token },
      );

      expectProblem(fromNobody, 403, 'assign_others_forbidden');
      expectProblem(fromSelf, 403, 'assign_others_forbidden');
      expect(await conversationOf(alpha, unassigned.id)).toEqual(unassigned);
      expect(await conversationOf(alpha, own.id)).toEqual(own);
    });

    it('lets a manager assign a conversation to any member', async () => {
      const { conversation } = await openConversation(alpha);

      const response = await server.api.patch(
        `/api/v1/conversations/${conversation.id}`,
        { assigneeId: alpha.members.agent.id },
        { token: tokenOf(alpha, 'manager') },
      );

      expect(response.status).toBe(200);
      expect(response.body.assigneeId).toBe(alpha.members.agent.id);
    });

    it('refuses an assignee who is not a member with 422, including a member of another organization', async () => {
      const { conversation } = await openConversation(alpha);
      const token = tokenOf(alpha, 'admin');

      const unknown = await server.api.patch(
        `/api/v1/conversations/${conversation.id}`,
        { assigneeId: randomUUID() },
        { token },
      );
      const foreign = await server.api.patch(
        `/api/v1/conversations/${conversation.id}`,
        { assigneeId: beta.members.agent.id, status: 'closed' },
        { token },
      );
      const notUuid = await server.api.patch(
        `/api/v1/conversations/${conversation.id}`,
        { assigneeId: 'nobody' },
        { token },
      );

      expectProblem(unknown, 422, 'assignee_not_member');
      expectProblem(foreign, 422, 'assignee_not_member');
      expectProblem(notUuid, 400, 'validation_failed');
      expect(await conversationOf(alpha, conversation.id)).toEqual(conversation);
    });
  });

  describe('tenant isolation', () => {
    function variantsOf(id: string): string[] {
      return [id, id.toUpperCase(), id.replace(/[a-f]/, (letter) => letter.toUpperCase())];
    }

    for (const role of ['admin', 'agent', 'viewer'] as const) {
      it(`answers 404 to the ${role} of another organization on every route and changes nothing`, async () => {
        const { contact, conversation } = await openConversation(alpha);
        await server.api.post(
          `/api/v1/conversations/${conversation.id}/messages`,
          { body: `victim ${BODY_MARKER}` },
          { token: tokenOf(alpha, 'admin') },
        );
        const messagesBefore = await messagesOf(alpha, conversation.id);
        const token = tokenOf(beta, role);

        const responses: [string, ApiResponse][] = [];
        for (const contactId of variantsOf(contact.id)) {
          responses.push([
            `GET contact ${contactId}`,
            await server.api.get(`/api/v1/contacts/${contactId}`, { token }),
          ]);
          if (role !== 'viewer') {
            responses.push([
              `POST conversation for ${contactId}`,
              await server.api.post('/api/v1/conversations', { contactId }, { token }),
            ]);
          }
        }
        for (const id of variantsOf(conversation.id)) {
          const base = `/api/v1/conversations/${id}`;
          responses.push([`GET ${id}`, await server.api.get(base, { token })]);
          responses.push([
            `GET ${id}/messages`,
            await server.api.get(`${base}/messages`, { token }),
          ]);
          if (role !== 'viewer') {
            responses.push([
              `PATCH ${id}`,
              await server.api.patch(
                base,
                { status: 'closed', assigneeId: beta.members[role].id },
                { token },
              ),
            ]);
            responses.push([
              `POST ${id}/messages`,
              await server.api.post(`${base}/messages`, { body: 'intrusion' }, { token }),
            ]);
          }
        }

        for (const [what, response] of responses) {
          expect({ what, status: response.status, code: response.body?.code }).toEqual({
            what,
            status: 404,
            code: 'not_found',
          });
          expectProblem(response, 404, 'not_found');
          expect(response.text).not.toContain(BODY_MARKER);
        }
        expect(await messagesOf(alpha, conversation.id)).toEqual(messagesBefore);
        expect(await conversationOf(alpha, conversation.id)).toEqual(conversation);
        const list = await server.api.get('/api/v1/conversations?limit=200', { token });
        expect(list.body.items.map((item: ConversationBody) => item.id)).not.toContain(
          conversation.id,
        );
      });
    }

    it("never lists another organization's conversations", async () => {
      const { conversation } = await openConversation(alpha);
      const ours = await openConversation(beta);

      const list = await server.api.get('/api/v1/conversations?limit=200', {
        token: tokenOf(beta, 'admin'),
      });

      const ids = list.body.items.map((item: ConversationBody) => item.id);
      expect(ids).toContain(ours.conversation.id);
      expect(ids).not.toContain(conversation.id);
    });

    it('answers 404 for ids that do not exist anywhere, the same as for foreign ids', async () => {
      const token = tokenOf(beta, 'admin');
      const missing = randomUUID();

      const contact = await server.api.get(`/api/v1/contacts/${missing}`, { token });
      const conversation = await server.api.get(`/api/v1/conversations/${missing}`, { token });
      const messages = await server.api.get(`/api/v1/conversations/${missing}/messages`, { token });

      expectProblem(contact, 404, 'not_found');
      expectProblem(conversation, 404, 'not_found');
      expectProblem(messages, 404, 'not_found');
    });
  });

  it('logs no message body text and no tokens', async () => {
    expectNoSecretsInLogs(server);

    expect(server.logs.text()).not.toContain(BODY_MARKER);
  });
});

interface ConversationBody {
  id: string;
  contactId: string;
  subject: string | null;
  status: string;
  assigneeId: string | null;
  createdAt: string;
  updatedAt: string;
}

interface MessageBody {
  id: string;
  conversationId: string;
  authorType: string;
  authorId: string | null;
  body: string;
  createdAt: string;
}
