import { SignedUpOrganization, addMember, signupOrganization } from './factories';
import { TestServer, expectNoSecretsInLogs, expectProblem, startServer } from './support';

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;
const JWT = /^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+$/;
const SHOP = 'https://shop.example.test';
const SUPPORT = 'http://support.example.test:8080';

interface WidgetTenant {
  organization: SignedUpOrganization;
  widgetKey: string;
}

describe('widget visitors', () => {
  let server: TestServer;
  let alpha: WidgetTenant;
  let beta: WidgetTenant;

  const adminToken = (tenant: WidgetTenant) => tenant.organization.admin.tokens.accessToken;

  function startSession(widgetKey: string, origin?: string) {
    return server.api.post(
      '/api/v1/widget/sessions',
      { widgetKey },
      { headers: origin === undefined ? {} : { origin } },
    );
  }

  async function visitorOf(tenant: WidgetTenant) {
    const session = await startSession(tenant.widgetKey, SHOP);
    expect(session.status).toBe(201);

    return session.body as { visitorToken: string; contactId: string; expiresIn: number };
  }

  /** How many widget sessions the organization's audit trail records. */
  async function sessionsRecorded(tenant: WidgetTenant): Promise<number> {
    const response = await server.api.get(
      '/api/v1/audit/events?action=widget.session_created&limit=500',
      { token: adminToken(tenant) },
    );
    expect(response.status).toBe(200);

    return response.body.items.length;
  }

  async function conversationIds(tenant: WidgetTenant): Promise<string[]> {
    const response = await server.api.get('/api/v1/conversations?limit=200', {
      token: adminToken(tenant),
    });
    expect(response.status).toBe(200);

    return response.body.items.map((item: { id: string }) => item.id);
  }

  beforeAll(async () => {
    server = await startServer();
    const tenants: WidgetTenant[] = [];
    for (const origins of [[SHOP, SUPPORT], ['https://beta.example.test']]) {
      const organization = await signupOrganization(server.api);
      const patched = await server.api.patch(
        '/api/v1/organization',
        { widget: { allowedOrigins: origins } },
        { token: organization.admin.tokens.accessToken },
      );
      expect(patched.status).toBe(200);
      tenants.push({ organization, widgetKey: patched.body.widget.key });
    }
    [alpha, beta] = tenants;
  });

  afterAll(async () => {
    await server?.close();
  });

  describe('allowed origins', () => {
    it('lets an admin set the allowed origins and shows them on the organization', async () => {
      const read = await server.api.get('/api/v1/organization', { token: adminToken(alpha) });

      expect(read.status).toBe(200);
      expect(read.body.widget).toEqual({
        key: alpha.widgetKey,
        allowedOrigins: expect.arrayContaining([SHOP, SUPPORT]),
      });
      expect(alpha.widgetKey).toMatch(/^pk_/);
    });

    it('refuses a non-admin changing the allowed origins and keeps them', async () => {
      const manager = await addMember(server.api, alpha.organization, 'manager');

      const response = await server.api.patch(
        '/api/v1/organization',
        { widget: { allowedOrigins: ['https://evil.example.test'] } },
        { token: manager.tokens.accessToken },
      );

      expectProblem(response, 403, 'forbidden');
      const read = await server.api.get('/api/v1/organization', { token: adminToken(alpha) });
      expect(read.body.widget.allowedOrigins).toEqual(expect.arrayContaining([SHOP, SUPPORT]));
      expect(read.body.widget.allowedOrigins).not.toContain('https://evil.example.test');
    });

    it('refuses an allowed origin that is not a bare origin', async () => {
      const response = await server.api.patch(
        '/api/v1/organization',
        { widget: { allowedOrigins: ['https://shop.example.test/path'] } },
        { token: adminToken(alpha) },
      );

      expectProblem(response, 400, 'validation_failed');
    });
  });

  describe('POST /widget/sessions', () => {
    it('opens a visitor session for an allowed origin with the contract shape', async () => {
      const before = await sessionsRecorded(alpha);

      const response = await startSession(alpha.widgetKey, SHOP);
      const other = await startSession(alpha.widgetKey, SUPPORT);

      expect(response.status).toBe(201);
      expect(response.body).toEqual({
        visitorToken: expect.stringMatching(JWT),
        contactId: expect.stringMatching(UUID),
        expiresIn: server.config.visitorTokenTtlSeconds,
      });
      expect(other.status).toBe(201);
      expect(other.body.contactId).not.toBe(response.body.contactId);
      expect(await sessionsRecorded(alpha)).toBe(before + 2);
    });

    it.each([
      ['a disallowed origin', 'https://evil.example.test'],
      ['an origin with a trailing slash', `${SHOP}/`],
      ['the allowed host on another scheme', 'http://shop.example.test'],
      ['the allowed host on another port', 'https://shop.example.test:8443'],
      ['a subdomain of an allowed host', 'https://x.shop.example.test'],
      ['the opaque origin null', 'null'],
      ['no Origin header', undefined],
    ])('refuses %s with 403 origin_not_allowed and opens no session', async (_label, origin) => {
      const before = await sessionsRecorded(alpha);

      const response = await startSession(alpha.widgetKey, origin);

      expectProblem(response, 403, 'origin_not_allowed');
      expect(response.text).not.toMatch(/visitorToken/);
      expect(await sessionsRecorded(alpha)).toBe(before);
    });

    it("refuses one organization's key from another organization's origin", async () => {
      const before = await sessionsRecorded(beta);

      const response = await startSession(beta.widgetKey, SHOP);

      expectProblem(response, 403, 'origin_not_allowed');
      expect(await sessionsRecorded(beta)).toBe(before);
    });

    it('refuses an unknown widget key with 403, the same as a bad origin', async () => {
      const unknown = await startSession(`pk_${'a'.repeat(24)}`, SHOP);
      const malformed = await startSession('not-a-key', SHOP);
      const missing = await server.api.post(
        '/api/v1/widget/sessions',
        {},
        {
          headers: { origin: SHOP },
        },
      );

      expectProblem(unknown, 403, 'origin_not_allowed');
      expectProblem(malformed, 400, 'validation_failed');
      expectProblem(missing, 400, 'validation_failed');
    });

    it('refuses every origin while the organization allows none', async () => {
      const organization = await signupOrganization(server.api);
      const read = await server.api.get('/api/v1/organization', {
        token: organization.admin.tokens.accessToken,
      });
      expect(read.body.widget.allowedOrigins).toEqual([]);

      const response = await startSession(read.body.widget.key, SHOP);

      expectProblem(response, 403, 'origin_not_allowed');
    });
  });

  describe('POST /widget/conversations', () => {
    it("opens the visitor's own conversation, visible to the organization's members", async () => {
      const visitor = await visitorOf(alpha);

      const response = await server.api.post(
        '/api/v1/widget/conversations',
        { subject: '  Where is my order? ' },
        { token: visitor.visitorToken },
      );

      expect(response.status).toBe(201);
      expect(response.body).toEqual({
        id: expect.stringMatching(UUID),
        contactId: visitor.contactId,
        subject: 'Where is my order?',
        status: 'open',
        assigneeId: null,
        createdAt: expect.any(String),
        updatedAt: expect.any(String),
      });
      expect(await conversationIds(alpha)).toContain(response.body.id);
      expect(await conversationIds(beta)).not.toContain(response.body.id);
      const contact = await server.api.get(`/api/v1/contacts/${visitor.contactId}`, {
        token: adminToken(alpha),
      });
      expect(contact.body).toEqual(
        expect.objectContaining({ id: visitor.contactId, email: null, name: null }),
      );
    });

    it('opens a conversation without a subject', async () => {
      const visitor = await visitorOf(alpha);

      const response = await server.api.post('/api/v1/widget/conversations', undefined, {
        token: visitor.visitorToken,
      });
      const empty = await server.api.post(
        '/api/v1/widget/conversations',
        {},
        {
          token: visitor.visitorToken,
        },
      );

      expect(response.status).toBe(201);
      expect(response.body.subject).toBeNull();
      expect(empty.status).toBe(201);
    });

    it('refuses a visitor naming another contact for its conversation', async () => {
      const visitor = await visitorOf(alpha);
      const victim = await visitorOf(alpha);
      const before = await conversationIds(alpha);

      const response = await server.api.post(
        '/api/v1/widget/conversations',
        { contactId: victim.contactId },
        { token: visitor.visitorToken },
      );

      expectProblem(response, 400, 'validation_failed');
      expect(await conversationIds(alpha)).toEqual(before);
    });

    it('refuses a member token and no token with 401 and opens nothing', async () => {
      const before = await conversationIds(alpha);

      const member = await server.api.post(
        '/api/v1/widget/conversations',
        { subject: 'Sent with a member token' },
        { token: adminToken(alpha) },
      );
      const anonymous = await server.api.post('/api/v1/widget/conversations', { subject: 'anon' });

      expectProblem(member, 401);
      expectProblem(anonymous, 401);
      expect(await conversationIds(alpha)).toEqual(before);
    });
  });

  describe('visitor tokens on member routes', () => {
    it('refuses a visitor token on every member route with 401 and changes nothing', async () => {
      const visitor = await visitorOf(alpha);
      const opened = await server.api.post(
        '/api/v1/widget/conversations',
        {},
        {
          token: visitor.visitorToken,
        },
      );
      const conversationId = opened.body.id;
      const token = visitor.visitorToken;
      const conversationsBefore = await conversationIds(alpha);

      const responses = await Promise.all([
        server.api.get('/api/v1/conversations', { token }),
        server.api.get(`/api/v1/conversations/${conversationId}`, { token }),
        server.api.patch(
          `/api/v1/conversations/${conversationId}`,
          { status: 'closed' },
          { token },
        ),
        server.api.get(`/api/v1/conversations/${conversationId}/messages`, { token }),
        server.api.post(
          `/api/v1/conversations/${conversationId}/messages`,
          { body: 'hi' },
          { token },
        ),
        server.api.post('/api/v1/conversations', { contactId: visitor.contactId }, { token }),
        server.api.get(`/api/v1/contacts/${visitor.contactId}`, { token }),
        server.api.post('/api/v1/contacts', { email: 'v@example.test', name: 'V' }, { token }),
        server.api.get('/api/v1/me', { token }),
        server.api.get('/api/v1/organization', { token }),
        server.api.patch('/api/v1/organization', { name: 'Taken over' }, { token }),
        server.api.get('/api/v1/users', { token }),
        server.api.post('/api/v1/auth/logout', undefined, { token }),
      ]);

      for (const response of responses) {
        expectProblem(response, 401);
      }
      expect(await conversationIds(alpha)).toEqual(conversationsBefore);
      const conversation = await server.api.get(`/api/v1/conversations/${conversationId}`, {
        token: adminToken(alpha),
      });
      expect(conversation.body.status).toBe('open');
      const messages = await server.api.get(`/api/v1/conversations/${conversationId}/messages`, {
        token: adminToken(alpha),
      });
      expect(messages.body.items).toEqual([]);
      const organization = await server.api.get('/api/v1/organization', {
        token: adminToken(alpha),
      });
      expect(organization.body.name).toBe(alpha.organization.name);
      const stillWorks = await server.api.post('/api/v1/widget/conversations', {}, { token });
      expect(stillWorks.status).toBe(201);
    });
  });

  it('logs no tokens', async () => {
    expectNoSecretsInLogs(server);
  });
});
