import { randomUUID } from 'node:crypto';

import { Socket, io } from 'socket.io-client';

import { Clock } from '@parley/core';

import {
  MembersByRole,
  SignedUpOrganization,
  addMember,
  addMemberOfEachRole,
  login,
  signupOrganization,
  uniqueEmail,
} from './factories';
import { TestServer, expectNoSecretsInLogs, startServer } from './support';

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;
const ACK_TIMEOUT_MS = 5_000;
const WIDGET_ORIGIN = 'https://shop.example.test';
/** Text that only appears in message bodies of this suite, so the log check can look for it. */
const BODY_MARKER = `socket-body-${randomUUID()}`;

interface Tenant {
  organization: SignedUpOrganization;
  members: MembersByRole;
  widgetKey: string;
}

interface Visitor {
  token: string;
  contactId: string;
  conversationId: string;
}

interface Ack {
  ok: boolean;
  error?: { code: string; message: string };
  message?: MessageBody;
  duplicate?: boolean;
  conversationId?: string;
  messages?: MessageBody[];
  expiresAt?: string;
}

interface MessageBody {
  id: string;
  conversationId: string;
  authorType: string;
  authorId: string | null;
  body: string;
  createdAt: string;
}

type Refusal = Error & { data?: { code?: string } };

/**
 * Sockets and their helpers for one test server. Every socket opened here is closed by
 * `closeAll`, so a failing test leaves nothing connected for the next one.
 */
class SocketPool {
  private readonly open: Socket[] = [];

  constructor(private readonly server: () => TestServer) {}

  raw(auth: Record<string, unknown> | undefined, query?: Record<string, string>): Socket {
    const socket = io(`${this.server().baseUrl}/chat`, {
      transports: ['websocket'],
      reconnection: false,
      forceNew: true,
      timeout: ACK_TIMEOUT_MS,
      auth,
      query,
    });
    this.open.push(socket);

    return socket;
  }

  async connect(token: string): Promise<Socket> {
    const socket = this.raw({ token });
    await new Promise<void>((resolve, reject) => {
      socket.once('connect', () => resolve());
      socket.once('connect_error', (error) =>
        reject(new Error(`expected the socket to connect: ${error.message}`)),
      );
    });

    return socket;
  }

  /** The connect_error a handshake ends with; fails when the socket connects instead. */
  async refusal(auth: Record<string, unknown> | undefined, query?: Record<string, string>) {
    const socket = this.raw(auth, query);

    return new Promise<Refusal>((resolve, reject) => {
      socket.once('connect', () => reject(new Error('expected the handshake to be refused')));
      socket.once('connect_error', (error) => resolve(error as Refusal));
    });
  }

  closeAll(): void {
    for (const socket of this.open.splice(0)) {
      socket.disconnect();
    }
  }
}

function ack(socket: Socket, event: string, ...args: unknown[]): Promise<Ack> {
  return socket.timeout(ACK_TIMEOUT_MS).emitWithAck(event, ...args) as Promise<Ack>;
}

/** Every `message:new` a socket receives from now on. */
function collectMessages(socket: Socket): MessageBody[] {
  const received: MessageBody[] = [];
  socket.on('message:new', (message: MessageBody) => received.push(message));

  return received;
}

async function eventually(check: () => void, timeoutMs = 3_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      check();

      return;
    } catch (error) {
      if (Date.now() > deadline) {
        throw error;
      }
      await new Promise((resolve) => setTimeout(resolve, 25));
    }
  }
}

function waitForDisconnect(socket: Socket, timeoutMs = 3_000): Promise<string> {
  if (socket.disconnected) {
    return Promise.resolve('already disconnected');
  }

  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('the socket was not disconnected')), timeoutMs);
    socket.once('disconnect', (reason) => {
      clearTimeout(timer);
      resolve(reason);
    });
  });
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

describe('chat gateway', () => {
  let server: TestServer;
  const sockets = new SocketPool(() => server);
  let alpha: Tenant;
  let beta: Tenant;

  const tokenOf = (tenant: Tenant, role: keyof MembersByRole) =>
    tenant.members[role].tokens.accessToken;

  async function setUpTenant(): Promise<Tenant> {
    const organization = await signupOrganization(server.api);
    const members = await addMemberOfEachRole(server.api, organization);
    const patched = await server.api.patch(
      '/api/v1/organization',
      { widget: { allowedOrigins: [WIDGET_ORIGIN] } },
      { token: organization.admin.tokens.accessToken },
    );
    expect(patched.status).toBe(200);

    return { organization, members, widgetKey: patched.body.widget.key };
  }

  async function startVisitor(tenant: Tenant): Promise<Visitor> {
    const session = await server.api.post(
      '/api/v1/widget/sessions',
      { widgetKey: tenant.widgetKey },
      { headers: { origin: WIDGET_ORIGIN } },
    );
    expect(session.status).toBe(201);
    const conversation = await server.api.post(
      '/api/v1/widget/conversations',
      { subject: 'Help' },
      { token: session.body.visitorToken },
    );
    expect(conversation.status).toBe(201);

    return {
      token: session.body.visitorToken,
      contactId: session.body.contactId,
      conversationId: conversation.body.id,
    };
  }

  async function openConversation(tenant: Tenant, assigneeId?: string): Promise<string> {
    const token = tokenOf(tenant, 'admin');
    const contact = await server.api.post(
      '/api/v1/contacts',
      { email: uniqueEmail('contact'), name: 'Socket Contact' },
      { token },
    );
    const conversation = await server.api.post(
      '/api/v1/conversations',
      { contactId: contact.body.id },
      { token },
    );
    expect(conversation.status).toBe(201);
    if (assigneeId) {
      const assigned = await server.api.patch(
        `/api/v1/conversations/${conversation.body.id}`,
        { assigneeId },
        { token },
      );
      expect(assigned.status).toBe(200);
    }

    return conversation.body.id;
  }

  async function messagesOf(tenant: Tenant, conversationId: string): Promise<MessageBody[]> {
    const response = await server.api.get(
      `/api/v1/conversations/${conversationId}/messages?limit=500`,
      { token: tokenOf(tenant, 'admin') },
    );
    expect(response.status).toBe(200);

    return response.body.items;
  }

  beforeAll(async () => {
    server = await startServer({ env: { SESSION_CACHE_MS: '0' } });
    alpha = await setUpTenant();
    beta = await setUpTenant();
  });

  afterEach(() => {
    sockets.closeAll();
  });

  afterAll(async () => {
    sockets.closeAll();
    await server?.close();
  });

  describe('handshake', () => {
    it('connects a member with an access token in the auth payload', async () => {
      const socket = await sockets.connect(tokenOf(alpha, 'agent'));

      expect(socket.connected).toBe(true);
    });

    it('refuses a connection without a token', async () => {
      const refusal = await sockets.refusal(undefined);

      expect(refusal.data?.code).toBe('invalid_token');
    });

    it('refuses a token in the query string, even beside a valid auth payload', async () => {
      const token = tokenOf(alpha, 'agent');

      const queryOnly = await sockets.refusal(undefined, { token });
      const both = await sockets.refusal({ token }, { token });
      const accessToken = await sockets.refusal(undefined, { access_token: token });

      expect(queryOnly.data?.code).toBe('token_in_query');
      expect(both.data?.code).toBe('token_in_query');
      expect(accessToken.data?.code).toBe('token_in_query');
    });

    it('refuses a garbage token, a refresh token and a non-string token', async () => {
      const garbage = await sockets.refusal({ token: 'x'.repeat(64) });
      const jwtShaped = await sockets.refusal({ token: 'eyJhbGciOi.eyJzdWIiOi.c2lnbmF0dXJl' });
      const refresh = await sockets.refusal({ token: alpha.members.agent.tokens.refreshToken });
      const notString = await sockets.refusal({ token: { $ne: null } });

      expect(garbage.data?.code).toBe('invalid_token');
      expect(jwtShaped.data?.code).toBe('invalid_token');
      expect(refresh.data?.code).toBe('invalid_token');
      expect(notString.data?.code).toBe('invalid_token');
    });

    it('refuses a token whose claims were altered to name another organization', async () => {
      const [header, payload, signature] = tokenOf(alpha, 'admin').split('.');
      const claims = JSON.parse(Buffer.from(payload, 'base64url').toString('utf8'));
      const forged = Buffer.from(JSON.stringify({ ...claims, org: beta.organization.id })).toString(
        'base64url',
      );
      const unsigned = `${Buffer.from(JSON.stringify({ alg: 'none', typ: 'at+jwt' })).toString('base64url')}.${payload}.`;

      const altered = await sockets.refusal({ token: `${header}.${forged}.${signature}` });
      const none = await sockets.refusal({ token: unsigned });

      expect(altered.data?.code).toBe('invalid_token');
      expect(none.data?.code).toBe('invalid_token');
    });

    it('refuses the token of a logged-out session and cuts the sockets already connected with it', async () => {
      const member = await login(
        server.api,
        alpha.organization.slug,
        alpha.members.agent.email,
        alpha.members.agent.password,
      );
      const otherSession = await sockets.connect(tokenOf(alpha, 'agent'));
      const first = await sockets.connect(member.accessToken);
      const second = await sockets.connect(member.accessToken);
      const conversationId = await openConversation(alpha);
      expect(await ack(first, 'conversation:join', { conversationId })).toEqual(
        expect.objectContaining({ ok: true }),
      );
      const firstGone = waitForDisconnect(first);
      const secondGone = waitForDisconnect(second);

      const logout = await server.api.post('/api/v1/auth/logout', undefined, {
        token: member.accessToken,
      });

      expect(logout.status).toBe(204);
      expect(await firstGone).toBe('io server disconnect');
      expect(await secondGone).toBe('io server disconnect');
      const again = await sockets.refusal({ token: member.accessToken });
      expect(again.data?.code).toBe('session_ended');
      expect(otherSession.connected).toBe(true);
      expect(await ack(otherSession, 'conversation:join', { conversationId })).toEqual(
        expect.objectContaining({ ok: true }),
      );
    });
  });

  describe('token expiry', () => {
    let shortLived: TestServer;
    const shortSockets = new SocketPool(() => shortLived);
    let organization: SignedUpOrganization;

    beforeAll(async () => {
      shortLived = await startServer({
        env: { ACCESS_TOKEN_TTL_SECONDS: '60', SESSION_CACHE_MS: '0' },
      });
      organization = await signupOrganization(shortLived.api);
    });

    afterEach(() => {
      shortSockets.closeAll();
    });

    afterAll(async () => {
      shortSockets.closeAll();
      await shortLived?.close();
    });

    it('warns a socket whose token expires within a minute', async () => {
      const socket = shortSockets.raw({ token: organization.admin.tokens.accessToken });

      const warning = await new Promise<{ expiresAt: string }>((resolve) =>
        socket.once('auth:expiring', resolve),
      );

      expect(new Date(warning.expiresAt).getTime()).toBeGreaterThan(Date.now());
    });

    it('refuses an expired access token at the handshake and on the events of a connected socket', async () => {
      const fresh = await login(
        shortLived.api,
        organization.slug,
        organization.admin.email,
        organization.admin.password,
      );
      const socket = await shortSockets.connect(fresh.accessToken);
      const contact = await shortLived.api.post(
        '/api/v1/contacts',
        { email: uniqueEmail(), name: 'Expiry' },
        { token: fresh.accessToken },
      );
      const conversation = await shortLived.api.post(
        '/api/v1/conversations',
        { contactId: contact.body.id },
        { token: fresh.accessToken },
      );
      const conversationId = conversation.body.id;
      expect(await ack(socket, 'conversation:join', { conversationId })).toEqual(
        expect.objectContaining({ ok: true }),
      );

      shortLived.app.get(Clock).advance(2 * 60_000);

      const refusal = await shortSockets.refusal({ token: fresh.accessToken });
      expect(refusal.data?.code).toBe('token_expired');
      const send = await ack(socket, 'message:send', {
        conversationId,
        body: 'after expiry',
        clientMessageId: 'expired-1',
      });
      expect(send).toEqual({
        ok: false,
        error: expect.objectContaining({ code: 'token_expired' }),
      });
      const renewed = await login(
        shortLived.api,
        organization.slug,
        organization.admin.email,
        organization.admin.password,
      );
      const messages = await shortLived.api.get(
        `/api/v1/conversations/${conversationId}/messages`,
        {
          token: renewed.accessToken,
        },
      );
      expect(messages.body.items).toEqual([]);
    });
  });

  describe('auth:refresh', () => {
    it('accepts a new token of the same caller and refuses one of another caller', async () => {
      const session = await login(
        server.api,
        alpha.organization.slug,
        alpha.members.manager.email,
        alpha.members.manager.password,
      );
      const socket = await sockets.connect(session.accessToken);
      const refreshed = await server.api.post('/api/v1/auth/refresh', {
        refreshToken: session.refreshToken,
      });
      expect(refreshed.status).toBe(200);

      const same = await ack(socket, 'auth:refresh', { token: refreshed.body.accessToken });
      const other = await ack(socket, 'auth:refresh', { token: tokenOf(alpha, 'agent') });
      const foreign = await ack(socket, 'auth:refresh', { token: tokenOf(beta, 'manager') });

      expect(same).toEqual({ ok: true, expiresAt: expect.any(String) });
      expect(other).toEqual({
        ok: false,
        error: expect.objectContaining({ code: 'invalid_token' }),
      });
      expect(foreign).toEqual({
        ok: false,
        error: expect.objectContaining({ code: 'invalid_token' }),
      });
      const conversationId = await openConversation(alpha);
      const joined = await ack(socket, 'conversation:join', { conversationId });
      expect(joined).toEqual({ ok: true, conversationId, messages: [] });
    });
  });

  describe('tenant isolation', () => {
    it("answers not_found to a member joining or sending into another organization's conversation", async () => {
      const conversationId = await openConversation(alpha);
      const before = await messagesOf(alpha, conversationId);
      const intruder = await sockets.connect(tokenOf(beta, 'admin'));
      const watcher = await sockets.connect(tokenOf(alpha, 'agent'));
      await ack(watcher, 'conversation:join', { conversationId });
      const watched = collectMessages(watcher);

      const results: Ack[] = [];
      for (const id of [conversationId, conversationId.toUpperCase()]) {
        results.push(await ack(intruder, 'conversation:join', { conversationId: id }));
        results.push(
          await ack(intruder, 'message:send', {
            conversationId: id,
            body: 'intrusion',
            clientMessageId: randomUUID(),
          }),
        );
      }

      for (const result of results) {
        expect(result).toEqual({
          ok: false,
          error: expect.objectContaining({ code: 'not_found' }),
        });
      }
      expect(await messagesOf(alpha, conversationId)).toEqual(before);
      await sleep(100);
      expect(watched).toEqual([]);
    });

    it("never delivers one organization's messages to another organization's sockets", async () => {
      const alphaConversation = await openConversation(alpha);
      const betaConversation = await openConversation(beta);
      const alphaSocket = await sockets.connect(tokenOf(alpha, 'admin'));
      const betaSocket = await sockets.connect(tokenOf(beta, 'admin'));
      await ack(alphaSocket, 'conversation:join', { conversationId: alphaConversation });
      await ack(betaSocket, 'conversation:join', { conversationId: betaConversation });
      const betaReceived = collectMessages(betaSocket);

      const sent = await ack(alphaSocket, 'message:send', {
        conversationId: alphaConversation,
        body: 'for alpha only',
        clientMessageId: 'alpha-only',
      });

      expect(sent.ok).toBe(true);
      await sleep(150);
      expect(betaReceived).toEqual([]);
    });
  });

  describe('visitor scope', () => {
    it("answers not_found to a visitor joining or sending into another visitor's conversation", async () => {
      const visitorA = await startVisitor(alpha);
      const visitorB = await startVisitor(alpha);
      const memberConversation = await openConversation(alpha);
      const socketA = await sockets.connect(visitorA.token);
      const before = await messagesOf(alpha, visitorB.conversationId);

      const join = await ack(socketA, 'conversation:join', {
        conversationId: visitorB.conversationId,
      });
      const send = await ack(socketA, 'message:send', {
        conversationId: visitorB.conversationId,
        body: 'not my conversation',
        clientMessageId: 'a-into-b',
      });
      const joinMember = await ack(socketA, 'conversation:join', {
        conversationId: memberConversation,
      });

      expect(join).toEqual({ ok: false, error: expect.objectContaining({ code: 'not_found' }) });
      expect(send).toEqual({ ok: false, error: expect.objectContaining({ code: 'not_found' }) });
      expect(joinMember).toEqual({
        ok: false,
        error: expect.objectContaining({ code: 'not_found' }),
      });
      expect(await messagesOf(alpha, visitorB.conversationId)).toEqual(before);
    });

    it('lets a visitor join and write in its own conversation as the contact', async () => {
      const visitor = await startVisitor(alpha);
      const socket = await sockets.connect(visitor.token);

      const join = await ack(socket, 'conversation:join', {
        conversationId: visitor.conversationId,
      });
      const send = await ack(socket, 'message:send', {
        conversationId: visitor.conversationId,
        body: `my parcel ${BODY_MARKER}`,
        clientMessageId: 'visitor-1',
      });

      expect(join).toEqual({ ok: true, conversationId: visitor.conversationId, messages: [] });
      expect(send).toEqual({
        ok: true,
        duplicate: false,
        message: {
          id: expect.stringMatching(UUID),
          conversationId: visitor.conversationId,
          authorType: 'contact',
          authorId: visitor.contactId,
          body: `my parcel ${BODY_MARKER}`,
          createdAt: expect.any(String),
        },
      });
      expect(await messagesOf(alpha, visitor.conversationId)).toEqual([send.message]);
    });

    it('gives a rejoining visitor its history, and only what came after a given message', async () => {
      const visitor = await startVisitor(alpha);
      const first = await sockets.connect(visitor.token);
      await ack(first, 'conversation:join', { conversationId: visitor.conversationId });
      const sent: Ack[] = [];
      for (const label of ['one', 'two', 'three']) {
        sent.push(
          await ack(first, 'message:send', {
            conversationId: visitor.conversationId,
            body: `history ${label} ${BODY_MARKER}`,
            clientMessageId: `history-${label}`,
          }),
        );
      }
      first.close();
      const again = await sockets.connect(visitor.token);

      const all = await ack(again, 'conversation:join', { conversationId: visitor.conversationId });
      const later = await ack(again, 'conversation:join', {
        conversationId: visitor.conversationId,
        after: sent[0].message?.id,
      });

      expect(all.messages?.map((message) => message.id)).toEqual(
        sent.map((result) => result.message?.id),
      );
      expect(later.messages?.map((message) => message.id)).toEqual(
        sent.slice(1).map((result) => result.message?.id),
      );
    });

    it("refuses a visitor token of another organization on this organization's conversation", async () => {
      const visitor = await startVisitor(beta);
      const conversationId = (await startVisitor(alpha)).conversationId;
      const socket = await sockets.connect(visitor.token);

      const join = await ack(socket, 'conversation:join', { conversationId });

      expect(join).toEqual({ ok: false, error: expect.objectContaining({ code: 'not_found' }) });
    });
  });

  describe('message:send', () => {
    it.each([
      ['an empty body', (id: string) => ({ conversationId: id, body: '', clientMessageId: 'e-1' })],
      [
        'a blank body',
        (id: string) => ({ conversationId: id, body: '   ', clientMessageId: 'e-2' }),
      ],
      [
        'a 4001-character body',
        (id: string) => ({ conversationId: id, body: 'x'.repeat(4001), clientMessageId: 'e-3' }),
      ],
      ['a missing clientMessageId', (id: string) => ({ conversationId: id, body: 'hi' })],
      [
        'a clientMessageId with forbidden characters',
        (id: string) => ({ conversationId: id, body: 'hi', clientMessageId: 'no spaces <>' }),
      ],
      [
        'a body that is not a string',
        (id: string) => ({ conversationId: id, body: { text: 'hi' }, clientMessageId: 'e-4' }),
      ],
      [
        'a conversationId that is not a UUID',
        () => ({ conversationId: 'abc', body: 'hi', clientMessageId: 'e-5' }),
      ],
      [
        'an unknown extra field',
        (id: string) => ({ conversationId: id, body: 'hi', clientMessageId: 'e-6', authorId: id }),
      ],
      ['a string payload', () => 'hello'],
      ['an array payload', (id: string) => [id, 'hello']],
      ['a null payload', () => null],
    ])('refuses %s with validation_failed and stores nothing', async (_label, payload) => {
      const conversationId = await openConversation(alpha);
      const socket = await sockets.connect(tokenOf(alpha, 'agent'));

      const result = await ack(socket, 'message:send', payload(conversationId));

      expect(result).toEqual({
        ok: false,
        error: { code: 'validation_failed', message: expect.any(String) },
      });
      expect(await messagesOf(alpha, conversationId)).toEqual([]);
      expect(await ack(socket, 'conversation:join', { conversationId })).toEqual(
        expect.objectContaining({ ok: true }),
      );
    });

    it('validates conversation:join like message:send', async () => {
      const conversationId = await openConversation(alpha);
      const socket = await sockets.connect(tokenOf(alpha, 'agent'));

      const results = [
        await ack(socket, 'conversation:join', { conversationId: 'not-a-uuid' }),
        await ack(socket, 'conversation:join', { conversationId, role: 'admin' }),
        await ack(socket, 'conversation:join', conversationId),
        await ack(socket, 'conversation:join'),
      ];

      for (const result of results) {
        expect(result).toEqual({
          ok: false,
          error: { code: 'validation_failed', message: expect.any(String) },
        });
      }
    });

    it('refuses a payload with a __proto__ or constructor key with invalid_json', async () => {
      const conversationId = await openConversation(alpha);
      const socket = await sockets.connect(tokenOf(alpha, 'agent'));
      const proto = JSON.parse(
        `{"conversationId":"${conversationId}","body":"hi","clientMessageId":"p-1","__proto__":{"polluted":true}}`,
      );
      const nested = JSON.parse(
        `{"conversationId":"${conversationId}","body":"hi","clientMessageId":"p-2","x":{"constructor":{"prototype":{"polluted":true}}}}`,
      );

      const protoResult = await ack(socket, 'message:send', proto);
      const nestedResult = await ack(socket, 'message:send', nested);

      expect(protoResult).toEqual({
        ok: false,
        error: expect.objectContaining({ code: 'invalid_json' }),
      });
      expect(nestedResult).toEqual({
        ok: false,
        error: expect.objectContaining({ code: 'invalid_json' }),
      });
      expect(({} as Record<string, unknown>).polluted).toBeUndefined();
      expect(await messagesOf(alpha, conversationId)).toEqual([]);
    });

    it('acks a valid send with the stored message and broadcasts it to every joined socket', async () => {
      const visitor = await startVisitor(alpha);
      const agent = await sockets.connect(tokenOf(alpha, 'agent'));
      const manager = await sockets.connect(tokenOf(alpha, 'manager'));
      const visitorSocket = await sockets.connect(visitor.token);
      const bystander = await sockets.connect(tokenOf(alpha, 'admin'));
      for (const socket of [agent, manager, visitorSocket]) {
        expect(
          await ack(socket, 'conversation:join', { conversationId: visitor.conversationId }),
        ).toMatchObject({
          ok: true,
          conversationId: visitor.conversationId,
        });
      }
      const received = [agent, manager, visitorSocket, bystander].map(collectMessages);

      const sent = await ack(agent, 'message:send', {
        conversationId: visitor.conversationId,
        body: `  we are on it ${BODY_MARKER}  `,
        clientMessageId: 'agent-1',
      });

      expect(sent).toEqual({
        ok: true,
        duplicate: false,
        message: {
          id: expect.stringMatching(UUID),
          conversationId: visitor.conversationId,
          authorType: 'agent',
          authorId: alpha.members.agent.id,
          body: `we are on it ${BODY_MARKER}`,
          createdAt: expect.any(String),
        },
      });
      await eventually(() => {
        expect(received.slice(0, 3)).toEqual([[sent.message], [sent.message], [sent.message]]);
      });
      await sleep(100);
      expect(received[3]).toEqual([]);
      expect(await messagesOf(alpha, visitor.conversationId)).toEqual([sent.message]);
    });

    it('returns the same message for a retried clientMessageId and stores it once', async () => {
      const conversationId = await openConversation(alpha);
      const socket = await sockets.connect(tokenOf(alpha, 'agent'));
      await ack(socket, 'conversation:join', { conversationId });
      const received = collectMessages(socket);
      const payload = { conversationId, body: 'only once', clientMessageId: 'retry-1' };

      const first = await ack(socket, 'message:send', payload);
      const second = await ack(socket, 'message:send', payload);
      const other = await sockets.connect(tokenOf(alpha, 'agent'));
      const fromAnotherSocket = await ack(other, 'message:send', payload);

      expect(first.ok).toBe(true);
      expect(first.duplicate).toBe(false);
      expect(second).toEqual({ ok: true, duplicate: true, message: first.message });
      expect(fromAnotherSocket).toEqual({ ok: true, duplicate: true, message: first.message });
      const stored = await messagesOf(alpha, conversationId);
      expect(stored).toEqual([first.message]);
      await sleep(100);
      expect(received).toEqual([first.message]);
    });

    it('stores the same clientMessageId from two different authors as two messages', async () => {
      const conversationId = await openConversation(alpha);
      const agent = await sockets.connect(tokenOf(alpha, 'agent'));
      const manager = await sockets.connect(tokenOf(alpha, 'manager'));

      const fromAgent = await ack(agent, 'message:send', {
        conversationId,
        body: 'agent',
        clientMessageId: 'shared-id',
      });
      const fromManager = await ack(manager, 'message:send', {
        conversationId,
        body: 'manager',
        clientMessageId: 'shared-id',
      });

      expect(fromAgent.duplicate).toBe(false);
      expect(fromManager.duplicate).toBe(false);
      expect(fromManager.message?.id).not.toBe(fromAgent.message?.id);
      expect((await messagesOf(alpha, conversationId)).map((message) => message.body)).toEqual([
        'agent',
        'manager',
      ]);
    });

    it("refuses a viewer's send with forbidden but lets the viewer join and read", async () => {
      const conversationId = await openConversation(alpha);
      const socket = await sockets.connect(tokenOf(alpha, 'viewer'));

      const join = await ack(socket, 'conversation:join', { conversationId });
      const send = await ack(socket, 'message:send', {
        conversationId,
        body: 'viewers never write',
        clientMessageId: 'viewer-1',
      });

      expect(join).toMatchObject({ ok: true, conversationId });
      expect(send).toEqual({ ok: false, error: expect.objectContaining({ code: 'forbidden' }) });
      expect(await messagesOf(alpha, conversationId)).toEqual([]);
    });

    it("refuses an agent's send into a conversation assigned to someone else", async () => {
      const conversationId = await openConversation(alpha, alpha.members.manager.id);
      const socket = await sockets.connect(tokenOf(alpha, 'agent'));

      const send = await ack(socket, 'message:send', {
        conversationId,
        body: 'not mine',
        clientMessageId: 'agent-x',
      });

      expect(send).toEqual({ ok: false, error: expect.objectContaining({ code: 'forbidden' }) });
      expect(await messagesOf(alpha, conversationId)).toEqual([]);
    });

    it('answers not_found for a conversation that does not exist', async () => {
      const socket = await sockets.connect(tokenOf(alpha, 'admin'));

      const join = await ack(socket, 'conversation:join', { conversationId: randomUUID() });
      const send = await ack(socket, 'message:send', {
        conversationId: randomUUID(),
        body: 'into the void',
        clientMessageId: 'void-1',
      });

      expect(join).toEqual({ ok: false, error: expect.objectContaining({ code: 'not_found' }) });
      expect(send).toEqual({ ok: false, error: expect.objectContaining({ code: 'not_found' }) });
    });

    it('treats a conversation id in upper case as the same conversation and broadcasts to its room', async () => {
      const conversationId = await openConversation(alpha);
      const listener = await sockets.connect(tokenOf(alpha, 'manager'));
      const sender = await sockets.connect(tokenOf(alpha, 'agent'));
      const join = await ack(listener, 'conversation:join', {
        conversationId: conversationId.toUpperCase(),
      });
      const received = collectMessages(listener);

      const sent = await ack(sender, 'message:send', {
        conversationId: conversationId.toUpperCase(),
        body: 'shouted id',
        clientMessageId: 'upper-1',
      });
      const retried = await ack(sender, 'message:send', {
        conversationId,
        body: 'shouted id',
        clientMessageId: 'upper-1',
      });

      expect(join).toMatchObject({ ok: true, conversationId });
      expect(sent).toEqual(
        expect.objectContaining({ ok: true, message: expect.objectContaining({ conversationId }) }),
      );
      expect(retried).toEqual({ ok: true, duplicate: true, message: sent.message });
      await eventually(() => expect(received).toEqual([sent.message]));
      expect(await messagesOf(alpha, conversationId)).toEqual([sent.message]);
    });

    it('follows a role change on a connected socket: an agent demoted to viewer can no longer send', async () => {
      const conversationId = await openConversation(alpha);
      const member = await addMember(server.api, alpha.organization, 'agent');
      const socket = await sockets.connect(member.tokens.accessToken);
      const before = await ack(socket, 'message:send', {
        conversationId,
        body: 'while an agent',
        clientMessageId: 'demoted-1',
      });
      expect(before.ok).toBe(true);

      const demoted = await server.api.patch(
        `/api/v1/users/${member.id}`,
        { role: 'viewer' },
        { token: tokenOf(alpha, 'admin') },
      );

      expect(demoted.status).toBe(200);
      const after = socket.connected
        ? await ack(socket, 'message:send', {
            conversationId,
            body: 'while a viewer',
            clientMessageId: 'demoted-2',
          }).catch(() => ({ ok: false, error: { code: 'disconnected', message: '' } }))
        : { ok: false, error: { code: 'disconnected', message: '' } };
      expect(after.ok).toBe(false);
      expect(['forbidden', 'session_ended', 'disconnected']).toContain(after.error?.code);
      expect((await messagesOf(alpha, conversationId)).map((message) => message.body)).toEqual([
        'while an agent',
      ]);
    });

    it('broadcasts a message sent over REST to the joined sockets', async () => {
      const visitor = await startVisitor(alpha);
      const agent = await sockets.connect(tokenOf(alpha, 'agent'));
      const visitorSocket = await sockets.connect(visitor.token);
      for (const socket of [agent, visitorSocket]) {
        await ack(socket, 'conversation:join', { conversationId: visitor.conversationId });
      }
      const received = [agent, visitorSocket].map(collectMessages);

      const sent = await server.api.post(
        `/api/v1/conversations/${visitor.conversationId}/messages`,
        { body: `over rest ${BODY_MARKER}` },
        { token: tokenOf(alpha, 'manager') },
      );

      expect(sent.status).toBe(201);
      await eventually(() => {
        expect(received).toEqual([[sent.body], [sent.body]]);
      });
    });
  });

  describe('robustness', () => {
    it('cuts a socket that sends a frame over 64 KiB and keeps serving others', async () => {
      const conversationId = await openConversation(alpha);
      const bystander = await sockets.connect(tokenOf(alpha, 'admin'));
      const offender = await sockets.connect(tokenOf(alpha, 'agent'));
      const gone = waitForDisconnect(offender);

      offender.emit('message:send', {
        conversationId,
        body: 'x'.repeat(70 * 1024),
        clientMessageId: 'huge-1',
      });

      expect(await gone).toMatch(/transport (close|error)/);
      expect(bystander.connected).toBe(true);
      expect(await ack(bystander, 'conversation:join', { conversationId })).toMatchObject({
        ok: true,
        conversationId,
      });
      const again = await sockets.connect(tokenOf(alpha, 'agent'));
      const send = await ack(again, 'message:send', {
        conversationId,
        body: 'small again',
        clientMessageId: 'small-1',
      });
      expect(send.ok).toBe(true);
      expect((await messagesOf(alpha, conversationId)).map((message) => message.body)).toEqual([
        'small again',
      ]);
      const health = await server.api.get('/health/live');
      expect(health.status).toBe(200);
    });

    it('refuses an unknown event with an ack, without crashing or dropping the socket', async () => {
      const conversationId = await openConversation(alpha);
      const socket = await sockets.connect(tokenOf(alpha, 'agent'));

      socket.emit('admin:delete-everything', { conversationId });
      socket.emit('__proto__', { conversationId });
      const answer = await socket.timeout(2_000).emitWithAck('no:such-event', { conversationId });

      expect(answer).toEqual({
        ok: false,
        error: expect.objectContaining({ code: 'unknown_event' }),
      });
      expect(socket.connected).toBe(true);
      expect(await ack(socket, 'conversation:join', { conversationId })).toMatchObject({
        ok: true,
        conversationId,
      });
    });

    it('acks 50 rapid sends from one socket and stores each once', async () => {
      const conversationId = await openConversation(alpha);
      const socket = await sockets.connect(tokenOf(alpha, 'agent'));
      await ack(socket, 'conversation:join', { conversationId });
      const received = collectMessages(socket);

      const results = await Promise.all(
        Array.from(
          { length: 50 },
          (_, index) =>
            socket.timeout(15_000).emitWithAck('message:send', {
              conversationId,
              body: `rapid ${index}`,
              clientMessageId: `rapid-${index}`,
            }) as Promise<Ack>,
        ),
      );

      expect(results.filter((result) => result.ok)).toHaveLength(50);
      expect(new Set(results.map((result) => result.message?.id)).size).toBe(50);
      const stored = await messagesOf(alpha, conversationId);
      expect(stored).toHaveLength(50);
      expect(new Set(stored.map((message) => message.body))).toEqual(
        new Set(Array.from({ length: 50 }, (_, index) => `rapid ${index}`)),
      );
      await eventually(() => expect(received).toHaveLength(50));
    });
  });

  describe('logs', () => {
    it('contain no message body text and no tokens', async () => {
      expectNoSecretsInLogs(server);

      expect(server.logs.text()).not.toContain(BODY_MARKER);
      expect(server.logs.text()).not.toContain('rapid 1');
    });
  });
});
