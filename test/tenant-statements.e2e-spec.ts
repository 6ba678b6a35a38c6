import { randomUUID } from 'node:crypto';

import { Client } from 'pg';
import { Socket, io } from 'socket.io-client';
import { DataSource } from 'typeorm';

import { MessageWrite, MessageWriter, WrittenRow } from '@parley/conversations';

import {
  Member,
  SignedUpOrganization,
  addMember,
  signupOrganization,
  uniqueEmail,
} from './factories';
import {
  ApiResponse,
  TestServer,
  expectNoSecretsInLogs,
  expectProblem,
  startServer,
  testDatabaseUrl,
} from './support';

/**
 * Adversarial tests of e70cc92: the message send and the message page read are one statement each
 * (parley_send_messages, parley_message_page), outside any request transaction, and a send is
 * authorized against the conversation state the server cached the last time it wrote there.
 */

const ACK_TIMEOUT_MS = 5_000;
/** Text that only appears in message bodies of this suite, so the log check can look for it. */
const BODY_MARKER = `tenant-statement-body-${randomUUID()}`;

interface Tenant {
  organization: SignedUpOrganization;
  admin: Member;
  manager: Member;
  agent: Member;
  otherAgent: Member;
  viewer: Member;
}

interface Ack {
  ok: boolean;
  error?: { code: string; message: string };
  message?: { id: string; conversationId: string; body: string; authorId: string | null };
  duplicate?: boolean;
  conversationId?: string;
  messages?: { id: string; body: string }[];
}

interface Opened {
  id: string;
  contactId: string;
}

interface Written {
  messages: number;
  audits: number;
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

function ack(socket: Socket, event: string, payload: unknown): Promise<Ack> {
  return socket.timeout(ACK_TIMEOUT_MS).emitWithAck(event, payload) as Promise<Ack>;
}

function refusedWith(code: string) {
  return { ok: false, error: expect.objectContaining({ code }) };
}

describe('tenant statements: one-statement message send and page read', () => {
  let server: TestServer;
  /** A second instance on the same database: its own caches, so what it sees first is cold. */
  let other: TestServer;
  let owner: Client;
  let runtime: Client;
  let alpha: Tenant;
  let beta: Tenant;
  const openSockets: Socket[] = [];

  async function setUpTenant(): Promise<Tenant> {
    const organization = await signupOrganization(server.api);
    const manager = await addMember(server.api, organization, 'manager');
    const agent = await addMember(server.api, organization, 'agent', { name: 'First agent' });
    const otherAgent = await addMember(server.api, organization, 'agent', { name: 'Other agent' });
    const viewer = await addMember(server.api, organization, 'viewer');

    return { organization, admin: organization.admin, manager, agent, otherAgent, viewer };
  }

  async function connect(member: Member, on: TestServer = server): Promise<Socket> {
    const socket = io(`${on.baseUrl}/chat`, {
      auth: { token: member.tokens.accessToken },
      transports: ['websocket'],
      reconnection: false,
      forceNew: true,
      timeout: ACK_TIMEOUT_MS,
    });
    openSockets.push(socket);
    await new Promise<void>((resolve, reject) => {
      socket.once('connect', () => resolve());
      socket.once('connect_error', (error) =>
        reject(new Error(`expected the socket to connect: ${error.message}`)),
      );
    });

    return socket;
  }

  /** The body of every `message:new` a socket receives from now on. */
  function collect(socket: Socket): string[] {
    const received: string[] = [];
    socket.on('message:new', (message: { body: string }) => received.push(message.body));

    return received;
  }

  async function openConversation(tenant: Tenant, assigneeId?: string): Promise<Opened> {
    const token = tenant.admin.tokens.accessToken;
    const contact = await server.api.post(
      '/api/v1/contacts',
      { email: uniqueEmail('contact'), name: 'Statement Contact' },
      { token },
    );
    expect(contact.status).toBe(201);
    const conversation = await server.api.post(
      '/api/v1/conversations',
      { contactId: contact.body.id, subject: 'Statement test' },
      { token },
    );
    expect(conversation.status).toBe(201);
    if (assigneeId) {
      await assign(tenant, conversation.body.id, assigneeId);
    }

    return { id: conversation.body.id, contactId: contact.body.id };
  }

  /** Reassigns as the manager (any member, or nobody), on the given instance. */
  async function assign(
    tenant: Tenant,
    conversationId: string,
    assigneeId: string | null,
    on: TestServer = server,
  ): Promise<void> {
    const response = await on.api.patch(
      `/api/v1/conversations/${conversationId}`,
      { assigneeId },
      { token: tenant.manager.tokens.accessToken },
    );
    expect({ status: response.status, assigneeId: response.body?.assigneeId }).toEqual({
      status: 200,
      assigneeId,
    });
  }

  function restSend(
    member: Member,
    conversationId: string,
    label: string,
    on: TestServer = server,
  ): Promise<ApiResponse> {
    return on.api.post(
      `/api/v1/conversations/${conversationId}/messages`,
      { body: `${label} ${BODY_MARKER}` },
      { token: member.tokens.accessToken },
    );
  }

  function socketSend(
    socket: Socket,
    conversationId: string,
    label: string,
    clientMessageId: string = randomUUID(),
  ): Promise<Ack> {
    return ack(socket, 'message:send', {
      conversationId,
      body: `${label} ${BODY_MARKER}`,
      clientMessageId,
    });
  }

  function restRead(member: Member, conversationId: string): Promise<ApiResponse> {
    return server.api.get(`/api/v1/conversations/${conversationId}/messages?limit=100`, {
      token: member.tokens.accessToken,
    });
  }

  /** What is stored for a conversation, read as the owner (no row-level security). */
  async function written(conversationId: string): Promise<Written> {
    const { rows } = await owner.query<Written>(
      `select (select count(*) from messages where conversation_id = $1)::int as messages,
              (select count(*) from audit_events
                where action = 'message.created' and metadata->>'conversationId' = $1::text)::int as audits`,
      [conversationId],
    );

    return rows[0];
  }

  beforeAll(async () => {
    server = await startServer();
    other = await startServer();
    owner = new Client({ connectionString: testDatabaseUrl() });
    await owner.connect();
    runtime = new Client({ connectionString: testDatabaseUrl(), options: '-c role=parley_app' });
    await runtime.connect();
    alpha = await setUpTenant();
    beta = await setUpTenant();
  });

  afterEach(() => {
    for (const socket of openSockets.splice(0)) {
      socket.disconnect();
    }
  });

  afterAll(async () => {
    for (const socket of openSockets.splice(0)) {
      socket.disconnect();
    }
    await runtime?.end();
    await owner?.end();
    await other?.close();
    await server?.close();
  });

  describe('a stale cached conversation state', () => {
    it.each([
      ['an unassigned conversation', false],
      ["the agent's own conversation", true],
    ])(
      'cannot authorize an agent who wrote in %s once it was reassigned to another agent',
      async (_label, own) => {
        const conversation = await openConversation(alpha, own ? alpha.agent.id : undefined);
        const agentSocket = await connect(alpha.agent);
        const watcher = await connect(alpha.otherAgent);
        const watched = collect(watcher);
        expect(
          await ack(watcher, 'conversation:join', { conversationId: conversation.id }),
        ).toEqual(expect.objectContaining({ ok: true }));
        // Both transports warm the one cache: the server last saw the conversation writable.
        expect((await restSend(alpha.agent, conversation.id, 'warm rest')).status).toBe(201);
        expect((await socketSend(agentSocket, conversation.id, 'warm socket')).ok).toBe(true);
        const before = await written(conversation.id);
        expect(before).toEqual({ messages: 2, audits: 2 });

        await assign(alpha, conversation.id, alpha.otherAgent.id);

        const rest = await restSend(alpha.agent, conversation.id, 'stale rest');
        const socket = await socketSend(agentSocket, conversation.id, 'stale socket');
        const restAgain = await restSend(alpha.agent, conversation.id, 'stale rest again');

        expectProblem(rest, 403, 'forbidden');
        expect(socket).toEqual(refusedWith('forbidden'));
        expectProblem(restAgain, 403, 'forbidden');
        expect(await written(conversation.id)).toEqual(before);
        await sleep(150);
        expect(watched.filter((body) => body.startsWith('stale'))).toEqual([]);
        expect(watched.filter((body) => body.startsWith('warm'))).toHaveLength(2);
      },
    );

    it.each([
      ['back to the agent', 'agent'],
      ['back to nobody', 'nobody'],
    ] as const)(
      'lets the agent write again, over REST and the socket, once the conversation is reassigned %s',
      async (_label, to) => {
        const conversation = await openConversation(alpha);
        const agentSocket = await connect(alpha.agent);
        expect((await restSend(alpha.agent, conversation.id, 'before reassign')).status).toBe(201);
        await assign(alpha, conversation.id, alpha.otherAgent.id);
        // The refusal leaves the server's cache holding the conversation as the other agent's.
        expectProblem(
          await restSend(alpha.agent, conversation.id, 'while not mine'),
          403,
          'forbidden',
        );
        expect(await socketSend(agentSocket, conversation.id, 'while not mine')).toEqual(
          refusedWith('forbidden'),
        );
        const before = await written(conversation.id);

        await assign(alpha, conversation.id, to === 'agent' ? alpha.agent.id : null);

        const rest = await restSend(alpha.agent, conversation.id, 'mine again');
        const socket = await socketSend(agentSocket, conversation.id, 'mine again');

        expect({ rest: rest.status, restCode: rest.body?.code, socket }).toEqual({
          rest: 201,
          restCode: undefined,
          socket: expect.objectContaining({ ok: true, duplicate: false }),
        });
        expect(await written(conversation.id)).toEqual({
          messages: before.messages + 2,
          audits: before.audits + 2,
        });
      },
    );

    it('lets an agent write at once in a conversation newly assigned to them that they were refused before', async () => {
      const conversation = await openConversation(alpha, alpha.otherAgent.id);
      const agentSocket = await connect(alpha.agent);
      expectProblem(await restSend(alpha.agent, conversation.id, 'not yet mine'), 403, 'forbidden');

      await assign(alpha, conversation.id, alpha.agent.id);

      // The control: an instance that never cached the conversation lets the agent write.
      expect((await restSend(alpha.agent, conversation.id, 'now mine', other)).status).toBe(201);
      const socket = await socketSend(agentSocket, conversation.id, 'now mine');
      const rest = await restSend(alpha.agent, conversation.id, 'now mine');
      expect({ socket, rest: rest.status, restCode: rest.body?.code }).toEqual({
        socket: expect.objectContaining({ ok: true, duplicate: false }),
        rest: 201,
        restCode: undefined,
      });
      expect(await written(conversation.id)).toEqual({ messages: 3, audits: 3 });
    });

    it('refuses a stale agent on one instance after the reassignment was made on another', async () => {
      const conversation = await openConversation(alpha);
      expect((await restSend(alpha.agent, conversation.id, 'warm on one')).status).toBe(201);
      const before = await written(conversation.id);

      await assign(alpha, conversation.id, alpha.otherAgent.id, other);

      expectProblem(await restSend(alpha.agent, conversation.id, 'stale on one'), 403, 'forbidden');
      expect(await written(conversation.id)).toEqual(before);
    });
  });

  describe('viewers', () => {
    it("refuses a viewer's REST and socket sends and writes nothing, also after another member's send warmed the conversation", async () => {
      const conversation = await openConversation(alpha);
      const viewerSocket = await connect(alpha.viewer);

      const coldRest = await restSend(alpha.viewer, conversation.id, 'viewer cold');
      const coldSocket = await socketSend(viewerSocket, conversation.id, 'viewer cold');
      expectProblem(coldRest, 403, 'forbidden');
      expect(coldSocket).toEqual(refusedWith('forbidden'));
      expect(await written(conversation.id)).toEqual({ messages: 0, audits: 0 });

      expect((await restSend(alpha.admin, conversation.id, 'admin warms')).status).toBe(201);
      const adminSocket = await connect(alpha.admin);
      expect((await socketSend(adminSocket, conversation.id, 'admin warms')).ok).toBe(true);

      const warmRest = await restSend(alpha.viewer, conversation.id, 'viewer warm');
      const warmSocket = await socketSend(viewerSocket, conversation.id, 'viewer warm');
      expectProblem(warmRest, 403, 'forbidden');
      expect(warmSocket).toEqual(refusedWith('forbidden'));
      expect(await written(conversation.id)).toEqual({ messages: 2, audits: 2 });

      // Reading stays open to the viewer, through both one-statement reads.
      const read = await restRead(alpha.viewer, conversation.id);
      const joined = await ack(viewerSocket, 'conversation:join', {
        conversationId: conversation.id,
      });
      expect(read.status).toBe(200);
      expect(read.body.items).toHaveLength(2);
      expect(joined.ok).toBe(true);
      expect(joined.messages).toHaveLength(2);
    });
  });

  describe("another organization's conversation", () => {
    async function intrude(conversationId: string) {
      const socket = await connect(alpha.admin);
      const results: Record<string, unknown> = {};
      for (const [spelling, id] of [
        ['lower', conversationId],
        ['upper', conversationId.toUpperCase()],
      ]) {
        const send = await restSend(alpha.admin, id, 'intrusion');
        const read = await restRead(alpha.admin, id);
        expectProblem(send, 404, 'not_found');
        expectProblem(read, 404, 'not_found');
        results[`${spelling} socket send`] = await socketSend(socket, id, 'intrusion');
        results[`${spelling} socket join`] = await ack(socket, 'conversation:join', {
          conversationId: id,
        });
      }
      for (const result of Object.values(results)) {
        expect(result).toEqual(refusedWith('not_found'));
      }
    }

    it('answers 404 and not_found to sends and reads over REST and the socket, before and after its own members used it, and writes nothing', async () => {
      const conversation = await openConversation(beta);
      const betaSocket = await connect(beta.agent);
      const betaReceived = collect(betaSocket);
      expect(
        await ack(betaSocket, 'conversation:join', { conversationId: conversation.id }),
      ).toEqual(expect.objectContaining({ ok: true, messages: [] }));

      await intrude(conversation.id);
      expect(await written(conversation.id)).toEqual({ messages: 0, audits: 0 });

      // Beta's own members use it on this instance: sends and reads warm every cache for it.
      expect((await restSend(beta.agent, conversation.id, 'beta rest')).status).toBe(201);
      expect((await socketSend(betaSocket, conversation.id, 'beta socket')).ok).toBe(true);
      expect((await restRead(beta.agent, conversation.id)).status).toBe(200);
      const before = await written(conversation.id);
      expect(before).toEqual({ messages: 2, audits: 2 });

      await intrude(conversation.id);

      expect(await written(conversation.id)).toEqual(before);
      const { rows } = await owner.query<{ organization_id: string }>(
        'select distinct organization_id from messages where conversation_id = $1',
        [conversation.id],
      );
      expect(rows).toEqual([{ organization_id: beta.organization.id }]);
      await sleep(150);
      expect(betaReceived.filter((body) => body.startsWith('intrusion'))).toEqual([]);
      expect(betaReceived.filter((body) => body.startsWith('beta'))).toHaveLength(2);
    });

    it("shows none of another organization's messages through a page cursor naming one of them", async () => {
      const ours = await openConversation(alpha);
      const theirs = await openConversation(beta);
      expect((await restSend(alpha.admin, ours.id, 'ours')).status).toBe(201);
      const theirMessage = await restSend(beta.admin, theirs.id, 'theirs');
      expect(theirMessage.status).toBe(201);

      const page = await server.api.get(
        `/api/v1/conversations/${ours.id}/messages?after=${theirMessage.body.id}`,
        { token: alpha.admin.tokens.accessToken },
      );
      const socket = await connect(alpha.admin);
      const joined = await ack(socket, 'conversation:join', {
        conversationId: ours.id,
        after: theirMessage.body.id,
      });

      for (const text of [page.text, JSON.stringify(joined)]) {
        expect(text).not.toContain('theirs');
        expect(text).not.toContain(theirMessage.body.id);
      }
    });
  });

  describe('in the database, as parley_app', () => {
    let alphaConversation: Opened;
    let betaConversation: Opened;
    let betaBody: string;

    interface BatchSend {
      conversation: Opened;
      id?: string;
      contactId?: string | null;
      assigneeId?: string | null;
      authorId?: string;
      body?: string;
      authorType?: string;
      clientMessageId?: string | null;
    }

    /**
     * The 17 arguments of parley_send_messages for these sends, in this order; `wait` false makes
     * a batch skip conversations another transaction holds locked.
     */
    function batchArguments(
      organizationId: string | null,
      sends: BatchSend[],
      { wait = true }: { wait?: boolean } = {},
    ): unknown[] {
      const rows = sends.map((send) => {
        const authorId = send.authorId ?? beta.agent.id;

        return {
          conversation: send.conversation.id,
          contact: send.contactId === undefined ? send.conversation.contactId : send.contactId,
          assignee: send.assigneeId ?? null,
          id: send.id ?? randomUUID(),
          authorType: send.authorType ?? 'agent',
          authorId,
          // A well-formed sealed body, so that a leaking insert would really store a row.
          body: send.body ?? betaBody,
          clientMessageId: send.clientMessageId ?? null,
          at: new Date(),
          actorType: 'user',
          actorId: authorId,
        };
      });

      return [
        organizationId,
        rows.map((row) => row.conversation),
        rows.map((row) => row.contact),
        rows.map((row) => row.assignee),
        rows.map((row) => row.id),
        rows.map((row) => row.authorType),
        rows.map((row) => row.authorId),
        rows.map((row) => row.body),
        rows.map((row) => row.clientMessageId),
        rows.map((row) => row.at),
        rows.map((row) => row.actorType),
        rows.map((row) => row.actorId),
        rows.map(() => null),
        rows.map(() => null),
        rows.map(() => null),
        true,
        wait,
      ];
    }

    /** parley_send_messages with one send, for the given organization and conversation. */
    function sendArguments(
      organizationId: string | null,
      conversation: Opened,
      options: Omit<BatchSend, 'conversation'> = {},
    ): unknown[] {
      return batchArguments(organizationId, [{ conversation, ...options }]);
    }

    const SEND =
      'select * from parley_send_messages($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17)';
    const PAGE = 'select * from parley_message_page($1, $2, $3, $4)';

    async function inTransactionOf<T>(
      organizationId: string,
      work: () => Promise<T>,
    ): Promise<PromiseSettledResult<T>> {
      await runtime.query('begin');
      try {
        await runtime.query(`select set_config('app.organization_id', $1, true)`, [organizationId]);
        const [outcome] = await Promise.allSettled([work()]);

        return outcome;
      } finally {
        await runtime.query('rollback');
      }
    }

    async function tenantSetting(): Promise<string | null> {
      const { rows } = await runtime.query<{ setting: string | null }>(
        `select current_setting('app.organization_id', true) as setting`,
      );

      return rows[0].setting;
    }

    async function visibleConversations(): Promise<number> {
      const { rows } = await runtime.query<{ count: number }>(
        'select count(*)::int as count from conversations',
      );

      return rows[0].count;
    }

    beforeAll(async () => {
      alphaConversation = await openConversation(alpha);
      betaConversation = await openConversation(beta);
      expect((await restSend(beta.admin, betaConversation.id, 'beta stored')).status).toBe(201);
      const { rows } = await owner.query<{ body: string }>(
        'select body from messages where conversation_id = $1',
        [betaConversation.id],
      );
      betaBody = rows[0].body;
    });

    it('connects as parley_app, which is no superuser and cannot bypass row-level security', async () => {
      const { rows } = await runtime.query(
        `select current_user as "user", rolsuper as super, rolbypassrls as bypass
           from pg_roles where rolname = current_user`,
      );

      expect(rows).toEqual([{ user: 'parley_app', super: false, bypass: false }]);
      expect(await visibleConversations()).toBe(0);
    });

    it('refuses parley_enter_tenant and parley_send_messages for another organization inside a transaction set to one, and writes nothing', async () => {
      const before = await written(betaConversation.id);
      const id = randomUUID();

      const enter = await inTransactionOf(alpha.organization.id, () =>
        runtime.query('select parley_enter_tenant($1)', [beta.organization.id]),
      );
      const send = await inTransactionOf(alpha.organization.id, () =>
        runtime.query(SEND, sendArguments(beta.organization.id, betaConversation, { id })),
      );
      const page = await inTransactionOf(alpha.organization.id, () =>
        runtime.query(PAGE, [beta.organization.id, betaConversation.id, 10, null]),
      );

      for (const outcome of [enter, send, page]) {
        expect(outcome.status).toBe('rejected');
        expect((outcome as PromiseRejectedResult).reason).toEqual(
          expect.objectContaining({
            code: '42501',
            message: expect.stringMatching(/cannot switch organization/),
          }),
        );
      }
      expect(await written(betaConversation.id)).toEqual(before);
      const { rows } = await owner.query('select 1 from messages where id = $1', [id]);
      expect(rows).toEqual([]);
    });

    it("returns no row and inserts nothing when its own organization names another organization's conversation", async () => {
      const before = await written(betaConversation.id);
      const autocommitId = randomUUID();
      const transactionId = randomUUID();

      const autocommit = await runtime.query(
        SEND,
        sendArguments(alpha.organization.id, betaConversation, { id: autocommitId }),
      );
      const inTransaction = await inTransactionOf(alpha.organization.id, () =>
        runtime.query(
          SEND,
          sendArguments(alpha.organization.id, betaConversation, { id: transactionId }),
        ),
      );
      const autocommitPage = await runtime.query(PAGE, [
        alpha.organization.id,
        betaConversation.id,
        10,
        null,
      ]);
      const transactionPage = await inTransactionOf(alpha.organization.id, () =>
        runtime.query(PAGE, [alpha.organization.id, betaConversation.id, 10, null]),
      );

      expect(autocommit.rows).toEqual([]);
      expect(inTransaction).toEqual({ status: 'fulfilled', value: expect.anything() });
      expect((inTransaction as PromiseFulfilledResult<{ rows: unknown[] }>).value.rows).toEqual([]);
      expect(autocommitPage.rows).toEqual([]);
      expect(transactionPage).toEqual({ status: 'fulfilled', value: expect.anything() });
      expect((transactionPage as PromiseFulfilledResult<{ rows: unknown[] }>).value.rows).toEqual(
        [],
      );
      expect(await written(betaConversation.id)).toEqual(before);
      const { rows } = await owner.query('select 1 from messages where id = any($1::uuid[])', [
        [autocommitId, transactionId],
      ]);
      expect(rows).toEqual([]);

      // The control: under its own organization the same page comes back, message and all.
      const control = await runtime.query(PAGE, [
        beta.organization.id,
        betaConversation.id,
        10,
        null,
      ]);
      expect(control.rows).toEqual([
        expect.objectContaining({
          organization_id: beta.organization.id,
          contact_id: betaConversation.contactId,
          body: betaBody,
        }),
      ]);
    });

    it('refuses a null organization in every tenant statement', async () => {
      const outcomes = await Promise.allSettled([
        runtime.query('select parley_enter_tenant(null)'),
      ]);
      outcomes.push(
        ...(await Promise.allSettled([
          runtime.query(SEND, sendArguments(null, alphaConversation)),
        ])),
        ...(await Promise.allSettled([
          runtime.query(PAGE, [null, alphaConversation.id, 10, null]),
        ])),
      );

      for (const outcome of outcomes) {
        expect(outcome.status).toBe('rejected');
        expect((outcome as PromiseRejectedResult).reason).toEqual(
          expect.objectContaining({
            code: '22023',
            message: expect.stringMatching(/needs an organization/),
          }),
        );
      }
      expect(await written(alphaConversation.id)).toEqual({ messages: 0, audits: 0 });
    });

    it('leaves no organization set on the connection after a call in autocommit', async () => {
      const calls: [string, unknown[]][] = [
        ['select parley_enter_tenant($1)', [alpha.organization.id]],
        [PAGE, [alpha.organization.id, alphaConversation.id, 10, null]],
        // A state that does not match: the function answers with the row and writes nothing.
        [
          SEND,
          sendArguments(alpha.organization.id, alphaConversation, { contactId: randomUUID() }),
        ],
        // And one that fails part-way.
        ['select parley_enter_tenant($1::uuid)', ['not-a-uuid']],
      ];

      for (const [sql, parameters] of calls) {
        await runtime.query(sql, parameters).catch(() => undefined);

        const setting = await tenantSetting();
        expect({ sql, empty: setting === '' || setting === null }).toEqual({ sql, empty: true });
        expect(await visibleConversations()).toBe(0);
      }
      // The control: the page call did see the organization's conversation while it ran.
      const page = await runtime.query(PAGE, [
        alpha.organization.id,
        alphaConversation.id,
        10,
        null,
      ]);
      expect(page.rows).toEqual([
        expect.objectContaining({ organization_id: alpha.organization.id, id: null }),
      ]);
      expect(await written(alphaConversation.id)).toEqual({ messages: 0, audits: 0 });
    });

    it('lets a transaction that entered one organization through a tenant statement switch to no other', async () => {
      await runtime.query('begin');
      try {
        await runtime.query('select parley_enter_tenant($1)', [alpha.organization.id]);
        expect(await tenantSetting()).toBe(alpha.organization.id);
        await expect(
          runtime.query(PAGE, [beta.organization.id, betaConversation.id, 10, null]),
        ).rejects.toThrow(/cannot switch organization/);
      } finally {
        await runtime.query('rollback');
      }
      expect(await tenantSetting()).toBeFalsy();
    });

    it('makes a send wait for a reassignment in progress and decide on its outcome', async () => {
      const conversation = await openConversation(alpha);
      expect((await restSend(alpha.admin, conversation.id, 'race seed')).status).toBe(201);
      const { rows } = await owner.query<{ body: string }>(
        'select body from messages where conversation_id = $1',
        [conversation.id],
      );
      const before = await written(conversation.id);
      const locker = new Client({
        connectionString: testDatabaseUrl(),
        options: '-c role=parley_app',
      });
      await locker.connect();
      try {
        await locker.query('begin');
        await locker.query(`select set_config('app.organization_id', $1, true)`, [
          alpha.organization.id,
        ]);
        await locker.query('update conversations set assignee_id = $2 where id = $1', [
          conversation.id,
          alpha.otherAgent.id,
        ]);

        // Authorized against "unassigned", which the running reassignment is about to change.
        let settled = false;
        const send = runtime
          .query(
            SEND,
            sendArguments(alpha.organization.id, conversation, {
              authorId: alpha.agent.id,
              body: rows[0].body,
            }),
          )
          .finally(() => {
            settled = true;
          });
        await sleep(300);
        expect(settled).toBe(false);

        await locker.query('commit');
        const answer = await send;
        expect(answer.rows).toEqual([
          expect.objectContaining({ assignee_id: alpha.otherAgent.id, id: null }),
        ]);
      } finally {
        await locker.query('rollback').catch(() => undefined);
        await locker.end();
      }
      expect(await written(conversation.id)).toEqual(before);
    });

    it("decides each send of a batch on its own: another organization's conversation gets no row, a stale state stores nothing, the rest are stored in order", async () => {
      const first = await openConversation(alpha);
      const second = await openConversation(alpha);
      const beforeTheirs = await written(betaConversation.id);
      const ids = [randomUUID(), randomUUID(), randomUUID(), randomUUID()];

      const result = await runtime.query(
        SEND,
        batchArguments(alpha.organization.id, [
          { conversation: first, id: ids[0], authorId: alpha.agent.id },
          { conversation: betaConversation, id: ids[1], authorId: alpha.agent.id },
          { conversation: second, id: ids[2], authorId: alpha.agent.id, contactId: randomUUID() },
          { conversation: second, id: ids[3], authorId: alpha.agent.id },
        ]),
      );

      expect(result.rows).toEqual([
        expect.objectContaining({ ord: 1, conversation_id: first.id, id: ids[0] }),
        expect.objectContaining({ ord: 3, conversation_id: second.id, id: null }),
        expect.objectContaining({ ord: 4, conversation_id: second.id, id: ids[3] }),
      ]);
      expect(await written(first.id)).toEqual({ messages: 1, audits: 1 });
      expect(await written(second.id)).toEqual({ messages: 1, audits: 1 });
      expect(await written(betaConversation.id)).toEqual(beforeTheirs);
      const { rows } = await owner.query<{ id: string; organization_id: string }>(
        'select id, organization_id from messages where id = any($1::uuid[]) order by created_at',
        [ids],
      );
      expect(rows).toEqual([
        { id: ids[0], organization_id: alpha.organization.id },
        { id: ids[3], organization_id: alpha.organization.id },
      ]);
    });

    it('stores one message for two sends of a batch with the same idempotency key', async () => {
      const conversation = await openConversation(alpha);
      const key = `batch-${randomUUID()}`;
      const [kept, dropped] = [randomUUID(), randomUUID()];

      const result = await runtime.query(
        SEND,
        batchArguments(alpha.organization.id, [
          { conversation, id: kept, authorId: alpha.agent.id, clientMessageId: key },
          { conversation, id: dropped, authorId: alpha.agent.id, clientMessageId: key },
        ]),
      );

      expect(result.rows).toEqual([
        expect.objectContaining({ ord: 1, id: kept }),
        expect.objectContaining({ ord: 2, id: null }),
      ]);
      expect(await written(conversation.id)).toEqual({ messages: 1, audits: 1 });
    });

    it('refuses a batch whose arrays do not all have one element per send, and writes nothing', async () => {
      const conversation = await openConversation(alpha);
      const uneven = batchArguments(alpha.organization.id, [
        { conversation, authorId: alpha.agent.id },
        { conversation, authorId: alpha.agent.id },
      ]);
      // One body for two sends: the second would otherwise read a null body.
      uneven[7] = (uneven[7] as string[]).slice(0, 1);

      await expect(runtime.query(SEND, uneven)).rejects.toMatchObject({
        code: '22023',
        message: expect.stringMatching(/one element per send/),
      });
      expect(await written(conversation.id)).toEqual({ messages: 0, audits: 0 });
      expect(await runtime.query(SEND, batchArguments(alpha.organization.id, []))).toMatchObject({
        rows: [],
      });
    });

    it('skips a conversation another transaction holds locked when told not to wait, answers it busy, and writes the rest', async () => {
      const held = await openConversation(alpha);
      const free = await openConversation(alpha);
      const locker = new Client({ connectionString: testDatabaseUrl() });
      await locker.connect();
      try {
        await locker.query('begin');
        await locker.query('select 1 from conversations where id = $1 for update', [held.id]);

        const started = Date.now();
        const result = await runtime.query(
          SEND,
          batchArguments(
            alpha.organization.id,
            [
              { conversation: held, authorId: alpha.agent.id },
              { conversation: free, authorId: alpha.agent.id },
            ],
            { wait: false },
          ),
        );

        expect(Date.now() - started).toBeLessThan(2_000);
        expect(result.rows).toEqual([
          {
            ord: 1,
            busy: true,
            conversation_id: null,
            organization_id: null,
            contact_id: null,
            assignee_id: null,
            id: null,
            created_at: null,
          },
          expect.objectContaining({ ord: 2, busy: false, id: expect.any(String) }),
        ]);
        expect(await written(held.id)).toEqual({ messages: 0, audits: 0 });
        expect(await written(free.id)).toEqual({ messages: 1, audits: 1 });
      } finally {
        await locker.query('rollback').catch(() => undefined);
        await locker.end();
      }
    });

    it("answers another organization's locked conversation with no row, not busy", async () => {
      const locker = new Client({ connectionString: testDatabaseUrl() });
      await locker.connect();
      try {
        await locker.query('begin');
        await locker.query('select 1 from conversations where id = $1 for update', [
          betaConversation.id,
        ]);
        const before = await written(betaConversation.id);

        const result = await runtime.query(
          SEND,
          batchArguments(alpha.organization.id, [{ conversation: betaConversation }], {
            wait: false,
          }),
        );

        expect(result.rows).toEqual([]);
        expect(await written(betaConversation.id)).toEqual(before);
      } finally {
        await locker.query('rollback').catch(() => undefined);
        await locker.end();
      }
    });

    it('writes nothing of a batch in which one send breaks a constraint', async () => {
      const conversation = await openConversation(alpha);

      await expect(
        runtime.query(
          SEND,
          batchArguments(alpha.organization.id, [
            { conversation, authorId: alpha.agent.id },
            { conversation, authorId: alpha.agent.id, body: `clear ${BODY_MARKER}` },
          ]),
        ),
      ).rejects.toMatchObject({ code: '23514', constraint: 'messages_body_sealed' });
      expect(await written(conversation.id)).toEqual({ messages: 0, audits: 0 });
    });
  });

  describe('batched writes on the server', () => {
    /** A well-formed sealed value, for writes that skip the server's sealing. */
    let storedBody: string;

    beforeAll(async () => {
      const seeded = await openConversation(alpha);
      expect((await restSend(alpha.admin, seeded.id, 'seed')).status).toBe(201);
      const { rows } = await owner.query<{ body: string }>(
        'select body from messages where conversation_id = $1',
        [seeded.id],
      );
      storedBody = rows[0].body;
    });

    it('stores, acknowledges and delivers each of many concurrent socket sends once, with one audit entry each', async () => {
      const conversations = await Promise.all(
        Array.from({ length: 6 }, () => openConversation(alpha)),
      );
      const watcher = await connect(alpha.admin);
      const delivered = collect(watcher);
      for (const conversation of conversations) {
        expect(
          await ack(watcher, 'conversation:join', { conversationId: conversation.id }),
        ).toEqual(expect.objectContaining({ ok: true }));
      }
      const senders = await Promise.all(conversations.map(() => connect(alpha.admin)));
      const rounds = 5;

      const acks = await Promise.all(
        senders.map(async (socket, index) => {
          const answers: Ack[] = [];
          for (let round = 0; round < rounds; round += 1) {
            // Each sender sends two at once, so batches also hold two sends of one conversation.
            answers.push(
              ...(await Promise.all([
                socketSend(socket, conversations[index].id, `burst ${index}.${round}.a`),
                socketSend(socket, conversations[index].id, `burst ${index}.${round}.b`),
              ])),
            );
          }

          return answers;
        }),
      );

      const flat = acks.flat();
      expect(flat).toHaveLength(conversations.length * rounds * 2);
      expect(flat.every((answer) => answer.ok && answer.duplicate === false)).toBe(true);
      expect(new Set(flat.map((answer) => answer.message?.id)).size).toBe(flat.length);
      for (const conversation of conversations) {
        expect(await written(conversation.id)).toEqual({
          messages: rounds * 2,
          audits: rounds * 2,
        });
      }
      const deadline = Date.now() + 5_000;
      while (delivered.filter((body) => body.startsWith('burst')).length < flat.length) {
        if (Date.now() > deadline) {
          break;
        }
        await sleep(20);
      }
      expect(delivered.filter((body) => body.startsWith('burst')).sort()).toEqual(
        flat.map((answer) => answer.message?.body).sort(),
      );
    });

    it('lets a conversation held locked delay only its own sends, which are then stored in the order they were sent', async () => {
      const held = await openConversation(alpha);
      const free = await openConversation(alpha);
      const socket = await connect(alpha.agent);
      const other = await connect(alpha.agent);
      const locker = new Client({ connectionString: testDatabaseUrl() });
      await locker.connect();
      try {
        await locker.query('begin');
        await locker.query('select 1 from conversations where id = $1 for update', [held.id]);

        const order: string[] = [];
        const first = socketSend(socket, held.id, 'held first').then((answer) => {
          order.push('held first');

          return answer;
        });
        await sleep(50);
        const second = socketSend(socket, held.id, 'held second').then((answer) => {
          order.push('held second');

          return answer;
        });
        // Another conversation of the same organization is not held up meanwhile.
        const meanwhile = await socketSend(other, free.id, 'not held');
        order.push('not held');
        expect(meanwhile).toEqual(expect.objectContaining({ ok: true, duplicate: false }));
        await sleep(200);
        expect(order).toEqual(['not held']);
        expect(await written(held.id)).toEqual({ messages: 0, audits: 0 });

        await locker.query('commit');
        const answers = await Promise.all([first, second]);

        expect(answers.map((answer) => answer.ok)).toEqual([true, true]);
        expect(order).toEqual(['not held', 'held first', 'held second']);
        const { rows } = await owner.query<{ id: string }>(
          'select id from messages where conversation_id = $1 order by created_at, id',
          [held.id],
        );
        expect(rows.map((row) => row.id)).toEqual(answers.map((answer) => answer.message?.id));
      } finally {
        await locker.query('rollback').catch(() => undefined);
        await locker.end();
      }
    });

    it('writes a failed batch again one send at a time, so only the send that broke a constraint is refused', async () => {
      const conversation = await openConversation(alpha);
      const writer = server.app.get(MessageWriter);
      const write = (overrides: Partial<MessageWrite>): MessageWrite => ({
        conversationId: conversation.id,
        contactId: conversation.contactId,
        assigneeId: null,
        id: randomUUID(),
        authorType: 'agent',
        authorId: alpha.agent.id,
        body: storedBody,
        clientMessageId: null,
        at: new Date(),
        actorType: 'user',
        actorId: alpha.agent.id,
        requestId: null,
        ip: null,
        elevationId: null,
        ...overrides,
      });
      const writes = [write({}), write({ body: `clear ${BODY_MARKER}` }), write({})];

      // Called in one turn of the event loop, the three share one batch.
      const outcomes = await Promise.allSettled(
        writes.map((each) => writer.write(alpha.organization.id, each)),
      );

      expect(outcomes.map((outcome) => outcome.status)).toEqual([
        'fulfilled',
        'rejected',
        'fulfilled',
      ]);
      expect((outcomes[1] as PromiseRejectedResult).reason).toMatchObject({
        code: '23514',
        constraint: 'messages_body_sealed',
      });
      expect((outcomes[0] as PromiseFulfilledResult<WrittenRow>).value).toMatchObject({
        id: writes[0].id,
      });
      expect((outcomes[2] as PromiseFulfilledResult<WrittenRow>).value).toMatchObject({
        id: writes[2].id,
      });
      expect(await written(conversation.id)).toEqual({ messages: 2, audits: 2 });
    });
  });

  describe('on the server pool', () => {
    it('keeps concurrent one-statement sends and reads of two organizations to their own rows, and leaves no organization on any pooled connection', async () => {
      const ours = await openConversation(alpha);
      const theirs = await openConversation(beta);
      const sends = Array.from({ length: 12 }, (_, index) =>
        index % 2 === 0
          ? restSend(alpha.admin, ours.id, `concurrent alpha ${index}`)
          : restSend(beta.admin, theirs.id, `concurrent beta ${index}`),
      );
      const reads = Array.from({ length: 6 }, (_, index) =>
        index % 2 === 0 ? restRead(alpha.admin, ours.id) : restRead(beta.admin, theirs.id),
      );
      const [sent, read] = await Promise.all([Promise.all(sends), Promise.all(reads)]);

      expect(sent.map((response) => response.status)).toEqual(sent.map(() => 201));
      for (const response of read) {
        expect(response.status).toBe(200);
      }
      const { rows } = await owner.query<{ conversation_id: string; organization_id: string }>(
        'select conversation_id, organization_id from messages where conversation_id = any($1::uuid[])',
        [[ours.id, theirs.id]],
      );
      expect(rows.filter((row) => row.conversation_id === ours.id)).toEqual(
        Array.from({ length: 6 }, () => ({
          conversation_id: ours.id,
          organization_id: alpha.organization.id,
        })),
      );
      expect(rows.filter((row) => row.conversation_id === theirs.id)).toEqual(
        Array.from({ length: 6 }, () => ({
          conversation_id: theirs.id,
          organization_id: beta.organization.id,
        })),
      );
      const alphaBodies = (await restRead(alpha.admin, ours.id)).body.items.map(
        (item: { body: string }) => item.body,
      );
      expect(alphaBodies).toHaveLength(6);
      expect(alphaBodies.every((body: string) => body.startsWith('concurrent alpha'))).toBe(true);

      const dataSource = server.app.get(DataSource);
      const leftOver = await Promise.all(
        Array.from({ length: 8 }, () =>
          dataSource.query(
            `select current_setting('app.organization_id', true) as setting,
                    (select count(*) from messages)::int as messages,
                    (select count(*) from conversations)::int as conversations`,
          ),
        ),
      );
      for (const [row] of leftOver) {
        expect({ ...row, setting: row.setting || null }).toEqual({
          setting: null,
          messages: 0,
          conversations: 0,
        });
      }
    });
  });

  describe('idempotency and the cold path', () => {
    it('answers a retry with the stored message after the sender lost the right to write, and refuses a new send', async () => {
      const conversation = await openConversation(alpha);
      const socket = await connect(alpha.agent);
      const clientMessageId = `lost-ack-${randomUUID()}`;
      const first = await socketSend(
        socket,
        conversation.id,
        'before reassignment',
        clientMessageId,
      );
      expect(first).toMatchObject({ ok: true, duplicate: false });

      await assign(alpha, conversation.id, alpha.otherAgent.id);

      const retry = await socketSend(
        socket,
        conversation.id,
        'before reassignment',
        clientMessageId,
      );
      expect(retry).toMatchObject({
        ok: true,
        duplicate: true,
        message: { id: first.message?.id },
      });
      expect(await socketSend(socket, conversation.id, 'after reassignment')).toEqual(
        refusedWith('forbidden'),
      );
      expect(await written(conversation.id)).toEqual({ messages: 1, audits: 1 });
    });

    it('stores one message for a socket send retried with the same clientMessageId and acks the retry as a duplicate', async () => {
      const conversation = await openConversation(alpha);
      const socket = await connect(alpha.agent);
      const clientMessageId = `retry-${randomUUID()}`;

      const first = await socketSend(socket, conversation.id, 'retried', clientMessageId);
      const second = await socketSend(socket, conversation.id, 'retried', clientMessageId);

      expect(first).toEqual(expect.objectContaining({ ok: true, duplicate: false }));
      expect(second).toEqual(expect.objectContaining({ ok: true, duplicate: true }));
      expect(second.message?.id).toBe(first.message?.id);
      expect(second.message?.body).toBe(`retried ${BODY_MARKER}`);
      expect(await written(conversation.id)).toEqual({ messages: 1, audits: 1 });
    });

    it('acks a retry as a duplicate on an instance that never saw the conversation', async () => {
      const conversation = await openConversation(alpha);
      const clientMessageId = `retry-${randomUUID()}`;
      const first = await socketSend(
        await connect(alpha.agent),
        conversation.id,
        'x',
        clientMessageId,
      );

      const second = await socketSend(
        await connect(alpha.agent, other),
        conversation.id,
        'x',
        clientMessageId,
      );

      expect(first).toEqual(expect.objectContaining({ ok: true, duplicate: false }));
      expect(second).toEqual(expect.objectContaining({ ok: true, duplicate: true }));
      expect(second.message?.id).toBe(first.message?.id);
      expect(await written(conversation.id)).toEqual({ messages: 1, audits: 1 });
    });

    it('accepts the first send to a conversation never seen before, over REST and the socket', async () => {
      const viaRest = await openConversation(alpha);
      const viaSocket = await openConversation(alpha);

      const rest = await restSend(alpha.agent, viaRest.id.toUpperCase(), 'cold rest');
      const socket = await socketSend(await connect(alpha.agent), viaSocket.id, 'cold socket');

      expect(rest.status).toBe(201);
      expect(rest.body).toEqual(
        expect.objectContaining({
          conversationId: viaRest.id,
          authorId: alpha.agent.id,
          body: `cold rest ${BODY_MARKER}`,
        }),
      );
      expect(socket).toEqual(
        expect.objectContaining({
          ok: true,
          duplicate: false,
          message: expect.objectContaining({
            conversationId: viaSocket.id,
            body: `cold socket ${BODY_MARKER}`,
          }),
        }),
      );
      expect(await written(viaRest.id)).toEqual({ messages: 1, audits: 1 });
      expect(await written(viaSocket.id)).toEqual({ messages: 1, audits: 1 });
      const read = await restRead(alpha.agent, viaRest.id);
      expect(read.body.items.map((item: { body: string }) => item.body)).toEqual([
        `cold rest ${BODY_MARKER}`,
      ]);
    });
  });

  describe('a conversation deleted after its state was cached', () => {
    it('answers 404 to REST and socket sends once its contact was erased, and writes nothing', async () => {
      const conversation = await openConversation(alpha);
      const socket = await connect(alpha.agent);
      expect((await restSend(alpha.agent, conversation.id, 'before erasure')).status).toBe(201);
      expect((await socketSend(socket, conversation.id, 'before erasure')).ok).toBe(true);
      const auditsBefore = (await written(conversation.id)).audits;

      const erased = await server.api.delete(`/api/v1/contacts/${conversation.contactId}`, {
        token: alpha.admin.tokens.accessToken,
      });
      expect(erased.status).toBe(204);

      const rest = await restSend(alpha.agent, conversation.id, 'after erasure');
      const sent = await socketSend(socket, conversation.id, 'after erasure');

      expect({ rest: rest.status, restCode: rest.body?.code, socket: sent }).toEqual({
        rest: 404,
        restCode: 'not_found',
        socket: refusedWith('not_found'),
      });
      expectProblem(rest, 404, 'not_found');
      expect(await written(conversation.id)).toEqual({ messages: 0, audits: auditsBefore });
    });

    it('answers 404 when the erasure was made on another instance', async () => {
      const conversation = await openConversation(alpha);
      expect((await restSend(alpha.agent, conversation.id, 'before erasure')).status).toBe(201);
      const auditsBefore = (await written(conversation.id)).audits;

      const erased = await other.api.delete(`/api/v1/contacts/${conversation.contactId}`, {
        token: alpha.admin.tokens.accessToken,
      });
      expect(erased.status).toBe(204);

      expectProblem(
        await restSend(alpha.agent, conversation.id, 'after erasure'),
        404,
        'not_found',
      );
      expect(await written(conversation.id)).toEqual({ messages: 0, audits: auditsBefore });
    });
  });

  describe('cursors, unknown events and assignees', () => {
    it('refuses a page cursor that names no message of the conversation, over REST and the socket', async () => {
      const conversation = await openConversation(alpha);
      const elsewhere = await openConversation(alpha);
      const first = await restSend(alpha.admin, conversation.id, 'cursor first');
      expect((await restSend(alpha.admin, conversation.id, 'cursor second')).status).toBe(201);
      const foreign = await restSend(alpha.admin, elsewhere.id, 'cursor elsewhere');
      const page = (after: string) =>
        server.api.get(`/api/v1/conversations/${conversation.id}/messages?after=${after}`, {
          token: alpha.agent.tokens.accessToken,
        });

      expectProblem(await page(randomUUID()), 400, 'message_cursor_unknown');
      expectProblem(await page(foreign.body.id), 400, 'message_cursor_unknown');
      const next = await page(first.body.id);
      expect(next.status).toBe(200);
      expect(next.body.items.map((item: { body: string }) => item.body)).toEqual([
        `cursor second ${BODY_MARKER}`,
      ]);

      const socket = await connect(alpha.agent);
      expect(
        await ack(socket, 'conversation:join', {
          conversationId: conversation.id,
          after: foreign.body.id,
        }),
      ).toEqual(refusedWith('message_cursor_unknown'));
      expect(
        await ack(socket, 'conversation:join', {
          conversationId: conversation.id,
          after: first.body.id,
        }),
      ).toMatchObject({ ok: true, messages: [{ body: `cursor second ${BODY_MARKER}` }] });
    });

    it('answers an event the gateway does not know with a refused ack, and keeps the socket', async () => {
      const conversation = await openConversation(alpha);
      const socket = await connect(alpha.agent);

      expect(await ack(socket, 'foo:bar', { conversationId: conversation.id })).toEqual(
        refusedWith('unknown_event'),
      );
      expect(await ack(socket, '__proto__', {})).toEqual(refusedWith('unknown_event'));
      expect(socket.connected).toBe(true);
      expect(await socketSend(socket, conversation.id, 'after unknown')).toMatchObject({
        ok: true,
      });
    });

    it('refuses to assign a conversation to a viewer and leaves its assignee as it was', async () => {
      const conversation = await openConversation(alpha, alpha.agent.id);
      const response = await server.api.patch(
        `/api/v1/conversations/${conversation.id}`,
        { assigneeId: alpha.viewer.id },
        { token: alpha.manager.tokens.accessToken },
      );

      expectProblem(response, 422, 'assignee_cannot_answer');
      const stored = await owner.query('select assignee_id from conversations where id = $1', [
        conversation.id,
      ]);
      expect(stored.rows[0].assignee_id).toBe(alpha.agent.id);
    });
  });

  describe('afterwards', () => {
    it('leaves no password or token in the logs', () => {
      expectNoSecretsInLogs(server);
    });
  });
});
