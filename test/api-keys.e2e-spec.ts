import { createHash } from 'node:crypto';

import { Client } from 'pg';
import { io } from 'socket.io-client';

import { Clock, ConfigError, loadConfig } from '@parley/core';

import {
  IssuedApiKey,
  Member,
  SignedUpOrganization,
  addMember,
  createApiKey,
  login,
  requestWithApiKey,
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

const KEY_SHAPE = /^psk_[a-z2-7]{8}_[A-Za-z0-9_-]{43}$/;
const HOUR_MS = 3600 * 1000;

describe('API keys', () => {
  let server: TestServer;
  let clock: Clock;
  let database: Client;
  let organization: SignedUpOrganization;
  let other: SignedUpOrganization;
  let conversationId: string;
  const issued: string[] = [];

  function admin(): Member {
    return organization.admin;
  }

  function call(key: string, method: string, path: string, body?: unknown): Promise<ApiResponse> {
    return requestWithApiKey(server.api, key, method, path, body);
  }

  async function issue(
    creator: Member,
    scopes: string[],
    options: { expiresAt?: string } = {},
  ): Promise<IssuedApiKey> {
    const created = await createApiKey(server.api, creator, scopes, options);
    issued.push(created.key);

    return created;
  }

  async function listedKey(id: string, member: Member = admin()) {
    const response = await server.api.get('/api/v1/api-keys', {
      token: member.tokens.accessToken,
    });
    expect(response.status).toBe(200);

    return (response.body.items as { id: string }[]).find((item) => item.id === id) as Record<
      string,
      unknown
    >;
  }

  /** Access tokens expire when the clock moves by hours; members sign in again afterwards. */
  async function signInAgain(...members: Member[]): Promise<void> {
    for (const member of members) {
      member.tokens = await login(server.api, organization.slug, member.email, member.password);
    }
  }

  async function auditActions(action: string): Promise<Record<string, unknown>[]> {
    const response = await server.api.get(`/api/v1/audit/events?action=${action}`, {
      token: admin().tokens.accessToken,
    });
    expect(response.status).toBe(200);

    return response.body.items;
  }

  beforeAll(async () => {
    server = await startServer();
    clock = server.app.get(Clock);
    database = new Client({ connectionString: testDatabaseUrl() });
    await database.connect();
    organization = await signupOrganization(server.api);
    other = await signupOrganization(server.api);
    const contact = await server.api.post(
      '/api/v1/contacts',
      { email: uniqueEmail('contact'), name: 'Key Contact' },
      { token: admin().tokens.accessToken },
    );
    const conversation = await server.api.post(
      '/api/v1/conversations',
      { contactId: contact.body.id, subject: 'through a key' },
      { token: admin().tokens.accessToken },
    );
    expect(conversation.status).toBe(201);
    conversationId = conversation.body.id;
  });

  afterAll(async () => {
    await database?.end();
    await server?.close();
  });

  describe('issuing', () => {
    it('shows the key once and stores only the digest of its secret and its prefix', async () => {
      const response = await server.api.post(
        '/api/v1/api-keys',
        { name: 'CRM sync', scopes: ['conversations:read'] },
        { token: admin().tokens.accessToken },
      );
      expect(response.status).toBe(201);
      const key: string = response.body.key;
      server.api.remember(key);
      issued.push(key);
      const [, prefix, secret] = key.split(/^psk_([a-z2-7]{8})_/);

      expect(key).toMatch(KEY_SHAPE);
      expect(response.body).toMatchObject({
        name: 'CRM sync',
        prefix: `psk_${prefix}`,
        scopes: ['conversations:read'],
        status: 'active',
        createdBy: { id: admin().id, name: admin().name },
        lastUsedAt: null,
        revokedAt: null,
      });

      const listed = await listedKey(response.body.id);
      expect(listed).toMatchObject({ id: response.body.id, prefix: `psk_${prefix}` });
      expect(listed).not.toHaveProperty('key');
      expect(JSON.stringify(listed)).not.toContain(secret);

      const { rows } = await database.query('select * from api_keys where id = $1', [
        response.body.id,
      ]);
      expect(rows).toHaveLength(1);
      expect(rows[0].lookup_prefix).toBe(prefix);
      expect(rows[0].secret_hash).toEqual(createHash('sha256').update(secret).digest());
      const stored = JSON.stringify(rows[0], (_name, value) =>
        value?.type === 'Buffer' ? Buffer.from(value.data).toString('base64url') : value,
      );
      expect(stored).not.toContain(secret);
      expect(stored).not.toContain(key);

      const created = await auditActions('api_key.created');
      expect(created).toEqual(
        expect.arrayContaining([
          expect.objectContaining({
            actorType: 'user',
            actorId: admin().id,
            targetId: response.body.id,
            metadata: expect.objectContaining({ scopes: ['conversations:read'] }),
          }),
        ]),
      );
    });

    it('refuses an unknown, a repeated or no scope, and an expiry in the past or too far away', async () => {
      const token = admin().tokens.accessToken;
      const now = clock.nowMs();
      const attempts = [
        { name: 'bad', scopes: ['conversations:delete'] },
        { name: 'bad', scopes: ['conversations:read', 'conversations:read'] },
        { name: 'bad', scopes: [] },
        { name: 'bad', scopes: 'conversations:read' },
        { name: '', scopes: ['conversations:read'] },
        {
          name: 'bad',
          scopes: ['conversations:read'],
          expiresAt: new Date(now - 1000).toISOString(),
        },
        {
          name: 'bad',
          scopes: ['conversations:read'],
          expiresAt: new Date(now + 400 * 24 * HOUR_MS).toISOString(),
        },
        { name: 'bad', scopes: ['conversations:read'], expiresAt: 'tomorrow' },
      ];

      for (const body of attempts) {
        expectProblem(
          await server.api.post('/api/v1/api-keys', body, { token }),
          400,
          'validation_failed',
        );
      }
    });

    it('lets managers create keys but not agents or viewers', async () => {
      const manager = await addMember(server.api, organization, 'manager');
      const agent = await addMember(server.api, organization, 'agent');
      const viewer = await addMember(server.api, organization, 'viewer');
      const body = { name: 'mine', scopes: ['conversations:read'] };

      const byManager = await server.api.post('/api/v1/api-keys', body, {
        token: manager.tokens.accessToken,
      });
      server.api.remember(byManager.body.key);
      issued.push(byManager.body.key);
      const byAgent = await server.api.post('/api/v1/api-keys', body, {
        token: agent.tokens.accessToken,
      });
      const byViewer = await server.api.post('/api/v1/api-keys', body, {
        token: viewer.tokens.accessToken,
      });
      const viewerList = await server.api.get('/api/v1/api-keys', {
        token: viewer.tokens.accessToken,
      });

      expect(byManager.status).toBe(201);
      expectProblem(byAgent, 403, 'forbidden');
      expectProblem(byViewer, 403, 'forbidden');
      expectProblem(viewerList, 403, 'forbidden');
    });

    it('refuses a scope the creator role cannot use, so no scope lies dormant', async () => {
      const manager = await addMember(server.api, organization, 'manager');

      const response = await server.api.post(
        '/api/v1/api-keys',
        { name: 'audit reader', scopes: ['conversations:read', 'audit:read'] },
        { token: manager.tokens.accessToken },
      );

      expectProblem(response, 403, 'scope_not_allowed');
      expect(response.body.detail).toContain('audit:read');
    });

    it('shows a manager only their own keys, and hides the others behind 404', async () => {
      const manager = await addMember(server.api, organization, 'manager');
      const own = await issue(manager, ['conversations:read']);
      const adminKey = await issue(admin(), ['conversations:read']);

      const listed = await server.api.get('/api/v1/api-keys', {
        token: manager.tokens.accessToken,
      });
      const rotateOthers = await server.api.post(
        `/api/v1/api-keys/${adminKey.id}/rotate`,
        {},
        {
          token: manager.tokens.accessToken,
        },
      );
      const revokeOthers = await server.api.delete(`/api/v1/api-keys/${adminKey.id}`, {
        token: manager.tokens.accessToken,
      });

      expect((listed.body.items as { id: string }[]).map((item) => item.id)).toEqual([own.id]);
      expectProblem(rotateOthers, 404, 'not_found');
      expectProblem(revokeOthers, 404, 'not_found');
      expect(await call(adminKey.key, 'GET', '/api/v1/conversations')).toMatchObject({
        status: 200,
      });
    });
  });

  describe('using', () => {
    it('lets a conversations:read key read but never write', async () => {
      const { key } = await issue(admin(), ['conversations:read']);

      const list = await call(key, 'GET', '/api/v1/conversations');
      const show = await call(key, 'GET', `/api/v1/conversations/${conversationId}`);
      const messages = await call(key, 'GET', `/api/v1/conversations/${conversationId}/messages`);
      const open = await call(key, 'POST', '/api/v1/conversations', {
        contactId: show.body.contactId,
      });
      const change = await call(key, 'PATCH', `/api/v1/conversations/${conversationId}`, {
        status: 'closed',
      });
      const send = await call(key, 'POST', `/api/v1/conversations/${conversationId}/messages`, {
        body: 'written with a read-only key',
      });
      const contact = await call(key, 'GET', `/api/v1/contacts/${show.body.contactId}`);
      const audit = await call(key, 'GET', '/api/v1/audit/events');

      expect(list.status).toBe(200);
      expect(show.status).toBe(200);
      expect(messages.status).toBe(200);
      expectProblem(open, 403, 'forbidden');
      expectProblem(change, 403, 'forbidden');
      expectProblem(send, 403, 'forbidden');
      expectProblem(contact, 403, 'forbidden');
      expectProblem(audit, 403, 'forbidden');
    });

    it('lets each scope open only its own subject', async () => {
      const auditor = await issue(admin(), ['audit:read']);
      const contacts = await issue(admin(), ['contacts:read', 'contacts:write']);

      const audit = await call(auditor.key, 'GET', '/api/v1/audit/events');
      const auditorConversations = await call(auditor.key, 'GET', '/api/v1/conversations');
      const contact = await call(contacts.key, 'POST', '/api/v1/contacts', {
        email: uniqueEmail('by-key'),
        name: 'Made by a key',
      });
      const readBack = await call(contacts.key, 'GET', `/api/v1/contacts/${contact.body.id}`);
      const contactsConversations = await call(contacts.key, 'GET', '/api/v1/conversations');

      expect(audit.status).toBe(200);
      expectProblem(auditorConversations, 403, 'forbidden');
      expect(contact.status).toBe(201);
      expect(readBack.status).toBe(200);
      expectProblem(contactsConversations, 403, 'forbidden');
    });

    it('writes messages as the creator, and the audit trail names the key', async () => {
      const created = await issue(admin(), ['conversations:read', 'messages:write']);

      const send = await call(
        created.key,
        'POST',
        `/api/v1/conversations/${conversationId}/messages`,
        { body: 'hello from an integration' },
      );

      expect(send.status).toBe(201);
      expect(send.body).toMatchObject({ authorType: 'agent', authorId: admin().id });
      const entries = await auditActions('message.created');
      expect(entries).toEqual(
        expect.arrayContaining([
          expect.objectContaining({
            actorType: 'api_key',
            actorId: created.id,
            targetId: send.body.id,
          }),
        ]),
      );
    });

    it('refuses a key on member-only routes and on routes no scope reaches', async () => {
      const { key, id } = await issue(admin(), ['conversations:read', 'contacts:read']);
      const routes: [string, string][] = [
        ['GET', '/api/v1/me'],
        ['POST', '/api/v1/auth/logout'],
        ['GET', '/api/v1/api-keys'],
        ['POST', '/api/v1/api-keys'],
        ['POST', `/api/v1/api-keys/${id}/rotate`],
        ['DELETE', `/api/v1/api-keys/${id}`],
        ['GET', '/api/v1/users'],
        ['GET', '/api/v1/organization'],
      ];

      for (const [method, path] of routes) {
        const response = await call(key, method, path, method === 'POST' ? {} : undefined);
        expectProblem(response, 401, 'token_not_accepted_here');
      }
      expect(await listedKey(id)).toMatchObject({ status: 'active', rotatedAt: null });
    });

    it('never reads a key from the query string', async () => {
      const { key } = await issue(admin(), ['conversations:read']);

      for (const query of [`api_key=${key}`, `apiKey=${key}`, `key=${key}`, `filter=${key}`]) {
        const response = await server.api.get(`/api/v1/conversations?${query}`);
        expectProblem(response, 400, 'token_in_query');
      }
    });

    it('is refused on the socket', async () => {
      const { key } = await issue(admin(), ['conversations:read']);
      const socket = io(`${server.baseUrl}/chat`, {
        transports: ['websocket'],
        reconnection: false,
        forceNew: true,
        auth: { token: key },
      });

      try {
        const refusal = await new Promise<{ data?: { code?: string } }>((resolve, reject) => {
          socket.once('connect', () => reject(new Error('expected the handshake to be refused')));
          socket.once('connect_error', (error) => resolve(error as { data?: { code?: string } }));
        });
        expect(refusal.data?.code).toBe('invalid_token');
      } finally {
        socket.disconnect();
      }
    });

    it('gives one answer to an unknown prefix, a wrong secret, a malformed key and another scheme', async () => {
      const { key } = await issue(admin(), ['conversations:read']);
      const prefix = key.slice(0, 'psk_'.length + 8);
      const flipped = `${key.slice(0, -1)}${key.endsWith('A') ? 'B' : 'A'}`;
      const candidates = [
        flipped,
        `psk_aaaaaaaa_${key.slice(prefix.length + 1)}`,
        `${prefix}_${'x'.repeat(43)}`,
        `${key}x`,
        'psk_nothing',
      ];

      const bodies: string[] = [];
      for (const candidate of candidates) {
        const response = await call(candidate, 'GET', '/api/v1/conversations');
        expectProblem(response, 401, 'invalid_api_key');
        expect(response.headers.get('www-authenticate')).toBe('ApiKey realm="parley"');
        bodies.push(`${response.body.title} ${response.body.detail}`);
      }
      expect(new Set(bodies).size).toBe(1);
      const lowerScheme = await server.api.get('/api/v1/conversations', {
        headers: { authorization: `apikey ${key}` },
      });
      expect(lowerScheme.status).toBe(200);
    });

    it('keeps the last use time and address, written at most once a minute', async () => {
      const created = await issue(admin(), ['conversations:read']);
      expect((await listedKey(created.id)).lastUsedAt).toBeNull();

      await call(created.key, 'GET', '/api/v1/conversations');
      const first = await listedKey(created.id);
      clock.advance(10_000);
      await call(created.key, 'GET', '/api/v1/conversations');
      const withinTheMinute = await listedKey(created.id);
      clock.advance(61_000);
      await call(created.key, 'GET', '/api/v1/conversations');
      const later = await listedKey(created.id);

      expect(first.lastUsedAt).toEqual(expect.any(String));
      expect(first.lastUsedIp).toBe('127.0.0.1');
      expect(withinTheMinute.lastUsedAt).toBe(first.lastUsedAt);
      expect(Date.parse(later.lastUsedAt as string)).toBeGreaterThan(
        Date.parse(first.lastUsedAt as string) + 60_000,
      );
    });
  });

  describe('the creator', () => {
    it('takes rights away from the key as soon as the creator is demoted', async () => {
      const manager = await addMember(server.api, organization, 'manager');
      const { key } = await issue(manager, [
        'conversations:read',
        'conversations:write',
        'messages:write',
      ]);
      const contactId = (await call(key, 'GET', `/api/v1/conversations/${conversationId}`)).body
        .contactId;
      const before = await call(key, 'POST', '/api/v1/conversations', { contactId });
      expect(before.status).toBe(201);

      const demotion = await server.api.patch(
        `/api/v1/users/${manager.id}`,
        { role: 'viewer' },
        { token: admin().tokens.accessToken },
      );
      expect(demotion.status).toBe(200);

      const open = await call(key, 'POST', '/api/v1/conversations', { contactId });
      const send = await call(key, 'POST', `/api/v1/conversations/${conversationId}/messages`, {
        body: 'after the demotion',
      });
      const read = await call(key, 'GET', '/api/v1/conversations');

      expectProblem(open, 403, 'forbidden');
      expectProblem(send, 403, 'forbidden');
      expect(read.status).toBe(200);
    });

    it("hides a contact's confidential fields from a key once its creator is a viewer", async () => {
      const manager = await addMember(server.api, organization, 'manager');
      const { key } = await issue(manager, ['contacts:read', 'contacts:write']);
      const created = await call(key, 'POST', '/api/v1/contacts', {
        email: `demoted-${organization.slug}@example.test`,
        name: 'Demoted Reader',
      });
      expect(created.status).toBe(201);
      expect((await call(key, 'GET', `/api/v1/contacts/${created.body.id}`)).body.name).toBe(
        'Demoted Reader',
      );

      await server.api.patch(
        `/api/v1/users/${manager.id}`,
        { role: 'viewer' },
        { token: admin().tokens.accessToken },
      );
      const read = await call(key, 'GET', `/api/v1/contacts/${created.body.id}`);

      expect(read.status).toBe(200);
      expect(read.body).toMatchObject({
        name: null,
        email: null,
        redactedFields: ['email', 'name', 'phone'],
      });
    });

    it('stops a key whose creator was deleted', async () => {
      const manager = await addMember(server.api, organization, 'manager');
      const created = await issue(manager, ['conversations:read']);
      expect((await call(created.key, 'GET', '/api/v1/conversations')).status).toBe(200);

      await database.query('delete from users where id = $1', [manager.id]);

      expectProblem(
        await call(created.key, 'GET', '/api/v1/conversations'),
        401,
        'invalid_api_key',
      );
      expect(await listedKey(created.id)).toMatchObject({
        status: 'creator_removed',
        createdBy: null,
      });
    });
  });

  describe('tenant isolation', () => {
    it("answers 404 to another organization's key id, in any case", async () => {
      const created = await issue(admin(), ['conversations:read']);
      const token = other.admin.tokens.accessToken;

      for (const id of [created.id, created.id.toUpperCase()]) {
        expectProblem(
          await server.api.post(`/api/v1/api-keys/${id}/rotate`, {}, { token }),
          404,
          'not_found',
        );
        expectProblem(
          await server.api.delete(`/api/v1/api-keys/${id}`, { token }),
          404,
          'not_found',
        );
      }
      const listed = await server.api.get('/api/v1/api-keys', { token });
      expect(listed.status).toBe(200);
      expect((listed.body.items as { id: string }[]).map((item) => item.id)).not.toContain(
        created.id,
      );
      expect((await call(created.key, 'GET', '/api/v1/conversations')).status).toBe(200);
    });

    it("reads only its own organization's data", async () => {
      const { key } = await issue(other.admin, ['conversations:read']);

      const list = await call(key, 'GET', '/api/v1/conversations');
      const foreign = await call(key, 'GET', `/api/v1/conversations/${conversationId}`);

      expect(list.status).toBe(200);
      expect((list.body.items as { id: string }[]).map((item) => item.id)).not.toContain(
        conversationId,
      );
      expectProblem(foreign, 404, 'not_found');
    });
  });

  describe('revoking and rotating', () => {
    it('revokes a key at once', async () => {
      const created = await issue(admin(), ['conversations:read']);
      expect((await call(created.key, 'GET', '/api/v1/conversations')).status).toBe(200);

      const revoked = await server.api.delete(`/api/v1/api-keys/${created.id}`, {
        token: admin().tokens.accessToken,
      });
      const after = await call(created.key, 'GET', '/api/v1/conversations');
      const again = await server.api.delete(`/api/v1/api-keys/${created.id}`, {
        token: admin().tokens.accessToken,
      });
      const rotate = await server.api.post(
        `/api/v1/api-keys/${created.id}/rotate`,
        {},
        {
          token: admin().tokens.accessToken,
        },
      );

      expect(revoked.status).toBe(204);
      expectProblem(after, 401, 'invalid_api_key');
      expect(again.status).toBe(204);
      expectProblem(rotate, 409, 'api_key_inactive');
      expect(await listedKey(created.id)).toMatchObject({ status: 'revoked' });
      expect(await auditActions('api_key.revoked')).toEqual(
        expect.arrayContaining([expect.objectContaining({ targetId: created.id })]),
      );
      expect(await auditActions('api_key.refused')).toEqual(
        expect.arrayContaining([
          expect.objectContaining({ targetId: created.id, metadata: { reason: 'revoked' } }),
        ]),
      );
    });

    it('keeps the old secret of a rotated key for the overlap, then refuses it', async () => {
      const created = await issue(admin(), ['conversations:read']);

      const rotation = await server.api.post(
        `/api/v1/api-keys/${created.id}/rotate`,
        {},
        {
          token: admin().tokens.accessToken,
        },
      );
      expect(rotation.status).toBe(200);
      const rotated: string = rotation.body.key;
      server.api.remember(rotated);
      issued.push(rotated);

      expect(rotated).toMatch(KEY_SHAPE);
      expect(rotated).not.toBe(created.key);
      expect(rotation.body.prefix).toBe(created.prefix);
      expect(Date.parse(rotation.body.previousSecretValidUntil)).toBeCloseTo(
        clock.nowMs() + 24 * HOUR_MS,
        -4,
      );
      expect((await call(created.key, 'GET', '/api/v1/conversations')).status).toBe(200);
      expect((await call(rotated, 'GET', '/api/v1/conversations')).status).toBe(200);

      clock.advance(23 * HOUR_MS);
      expect((await call(created.key, 'GET', '/api/v1/conversations')).status).toBe(200);

      clock.advance(HOUR_MS + 1000);
      expectProblem(
        await call(created.key, 'GET', '/api/v1/conversations'),
        401,
        'invalid_api_key',
      );
      expect((await call(rotated, 'GET', '/api/v1/conversations')).status).toBe(200);

      await signInAgain(admin());
      expect(await auditActions('api_key.refused')).toEqual(
        expect.arrayContaining([
          expect.objectContaining({ targetId: created.id, metadata: { reason: 'rotated_out' } }),
        ]),
      );
      expect(await auditActions('api_key.rotated')).toEqual(
        expect.arrayContaining([expect.objectContaining({ targetId: created.id })]),
      );
    });

    it('refuses an expired key', async () => {
      const created = await issue(admin(), ['conversations:read'], {
        expiresAt: new Date(clock.nowMs() + 5 * 60_000).toISOString(),
      });
      expect((await call(created.key, 'GET', '/api/v1/conversations')).status).toBe(200);

      clock.advance(5 * 60_000 + 1000);

      expectProblem(
        await call(created.key, 'GET', '/api/v1/conversations'),
        401,
        'invalid_api_key',
      );
      expect(await listedKey(created.id)).toMatchObject({ status: 'expired' });
      const rotate = await server.api.post(
        `/api/v1/api-keys/${created.id}/rotate`,
        {},
        {
          token: admin().tokens.accessToken,
        },
      );
      expectProblem(rotate, 409, 'api_key_inactive');
    });
  });

  it('never writes a key to the logs', () => {
    expect(issued.length).toBeGreaterThan(10);
    expectNoSecretsInLogs(server, issued);
    expect(server.logs.text()).not.toMatch(/psk_[a-z2-7]{8}_[A-Za-z0-9_-]{10,}/);
    expect(server.logs.text()).not.toMatch(/ApiKey\s+psk_/i);
  });
});

describe('API keys on the embedded default (PGlite)', () => {
  let server: TestServer;

  beforeAll(async () => {
    server = await startServer({ embedded: true, env: { API_KEY_ROTATION_OVERLAP_SECONDS: '60' } });
  });

  afterAll(async () => {
    await server?.close();
  });

  it('issues, scopes, rotates with the configured overlap and revokes a key', async () => {
    const organization = await signupOrganization(server.api);
    const clock = server.app.get(Clock);
    const created = await createApiKey(server.api, organization.admin, ['conversations:read']);
    const use = (key: string) => requestWithApiKey(server.api, key, 'GET', '/api/v1/conversations');

    expect((await use(created.key)).status).toBe(200);
    expectProblem(
      await requestWithApiKey(server.api, created.key, 'POST', '/api/v1/conversations', {
        contactId: '00000000-0000-4000-8000-000000000000',
      }),
      403,
      'forbidden',
    );

    const rotation = await server.api.post(
      `/api/v1/api-keys/${created.id}/rotate`,
      {},
      {
        token: organization.admin.tokens.accessToken,
      },
    );
    expect(rotation.status).toBe(200);
    server.api.remember(rotation.body.key);
    expect((await use(created.key)).status).toBe(200);
    clock.advance(61_000);
    expectProblem(await use(created.key), 401, 'invalid_api_key');
    expect((await use(rotation.body.key)).status).toBe(200);

    const revoked = await server.api.delete(`/api/v1/api-keys/${created.id}`, {
      token: organization.admin.tokens.accessToken,
    });
    expect(revoked.status).toBe(204);
    expectProblem(await use(rotation.body.key), 401, 'invalid_api_key');
    expectNoSecretsInLogs(server, [created.key, rotation.body.key]);
  });
});

describe('API_KEY_ROTATION_OVERLAP_SECONDS', () => {
  it('defaults to 24 hours, accepts 0 to 7 days and refuses anything else', () => {
    expect(loadConfig({}).apiKeyRotationOverlapSeconds).toBe(86_400);
    expect(loadConfig({ API_KEY_ROTATION_OVERLAP_SECONDS: '0' }).apiKeyRotationOverlapSeconds).toBe(
      0,
    );
    for (const value of ['-1', '1.5', 'a day', '604801']) {
      expect(() => loadConfig({ API_KEY_ROTATION_OVERLAP_SECONDS: value })).toThrow(ConfigError);
    }
  });
});
