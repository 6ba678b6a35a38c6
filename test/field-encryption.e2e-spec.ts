import { execFile } from 'node:child_process';
import { randomBytes, randomInt, randomUUID } from 'node:crypto';
import { promisify } from 'node:util';

import { generate } from 'otplib';
import { Client } from 'pg';
import { Socket } from 'socket.io-client';

import { Clock } from '@parley/core';
import { FieldCipher, KeyMaintenance, SealBinding, SealedValueError } from '@parley/crypto';
import { ContactEntity } from '@parley/conversations';
import { TenantTransactions } from '@parley/database';

import {
  Member,
  SignedUpOrganization,
  login,
  signupOrganization,
  uniquePassword,
} from './factories';
import {
  ApiResponse,
  TestServer,
  connectSocket,
  expectProblem,
  startServer,
  testDatabaseUrl,
} from './support';

const runFile = promisify(execFile);

const PG_DUMP = '/usr/bin/pg_dump';
const WIDGET_ORIGIN = 'https://shop.example.test';
const ACK_TIMEOUT_MS = 5_000;
const TOTP_STEP_MS = 30_000;

/** Every sealed column, as the migration lists them (each has a `<table>_<column>_sealed` CHECK). */
const SEALED_COLUMNS: [table: string, column: string][] = [
  ['contacts', 'email'],
  ['contacts', 'name'],
  ['contacts', 'phone'],
  ['conversations', 'subject'],
  ['messages', 'body'],
  ['users', 'email'],
  ['users', 'name'],
  ['mfa_totp_factors', 'secret'],
];

interface Ack {
  ok: boolean;
  error?: { code: string; message: string };
  message?: { id: string; body: string };
}

interface StoredValue {
  table: string;
  column: string;
  id: string;
  value: string;
  keyId: string;
  version: number;
}

/** A marker no other suite or run will send, so finding it in the database means it came from here. */
function marker(): string {
  return randomBytes(6).toString('hex');
}

function randomDigits(count: number): string {
  return Array.from({ length: count }, () => String(randomInt(10))).join('');
}

/** The parts of an envelope `pv1.<key id>.<version>.<nonce>.<ciphertext+tag>`. */
function envelopeParts(sealed: string) {
  const [prefix, keyId, version, nonce, body] = sealed.split('.');

  return { prefix, keyId, version: Number(version), nonce, body };
}

function withParts(
  sealed: string,
  change: Partial<{ prefix: string; keyId: string; version: string; nonce: string; body: string }>,
): string {
  const parts = envelopeParts(sealed);

  return [
    change.prefix ?? parts.prefix,
    change.keyId ?? parts.keyId,
    change.version ?? String(parts.version),
    change.nonce ?? parts.nonce,
    change.body ?? parts.body,
  ].join('.');
}

/** The envelope with its ciphertext-and-tag bytes replaced by `change(bytes)`. */
function withSealedBytes(sealed: string, change: (bytes: Buffer) => Buffer): string {
  const bytes = Buffer.from(envelopeParts(sealed).body, 'base64url');

  return withParts(sealed, { body: change(Buffer.from(bytes)).toString('base64url') });
}

/**
 * The code a sealed value is refused with; `opened: <clear>` when it opened instead, so an
 * assertion on the code shows what came out.
 */
async function refusalOf(work: Promise<string>): Promise<string> {
  let opened: string;
  try {
    opened = await work;
  } catch (error) {
    if (error instanceof SealedValueError) {
      return error.code;
    }
    throw error;
  }

  return `opened: ${opened}`;
}

/** The rows of one table in a plain-format pg_dump, from its COPY block. */
function copyRows(dump: string, table: string): Record<string, string | null>[] {
  const lines = dump.split('\n');
  const header = lines.findIndex((line) => line.startsWith(`COPY public.${table} (`));
  if (header < 0) {
    throw new Error(`the dump has no COPY block for public.${table}`);
  }
  const columns = lines[header]
    .slice(lines[header].indexOf('(') + 1, lines[header].indexOf(')'))
    .split(', ')
    .map((name) => name.replace(/^"|"$/g, ''));
  const rows: Record<string, string | null>[] = [];
  for (let index = header + 1; lines[index] !== '\\.'; index += 1) {
    if (index >= lines.length) {
      throw new Error(`the COPY block of public.${table} does not end`);
    }
    const fields = lines[index].split('\t');
    rows.push(
      Object.fromEntries(
        columns.map((column, i) => [
          column,
          fields[i] === '\\N'
            ? null
            : fields[i].replace(/\\(.)/g, (_all, char: string) =>
                char === 't' ? '\t' : char === 'n' ? '\n' : char === 'r' ? '\r' : char,
              ),
        ]),
      ),
    );
  }

  return rows;
}

describe('field encryption', () => {
  let server: TestServer;
  let owner: Client;
  let cipher: FieldCipher;
  let maintenance: KeyMaintenance;
  let transactions: TenantTransactions;
  let clock: Clock;
  const sockets: Socket[] = [];

  beforeAll(async () => {
    server = await startServer({ env: { CREDENTIAL_RATE_LIMIT_PER_MINUTE: '1000' } });
    cipher = server.app.get(FieldCipher);
    maintenance = server.app.get(KeyMaintenance);
    transactions = server.app.get(TenantTransactions);
    clock = server.app.get(Clock);
    owner = new Client({ connectionString: testDatabaseUrl() });
    await owner.connect();
  });

  afterAll(async () => {
    for (const socket of sockets) {
      socket.disconnect();
    }
    await owner?.end();
    await server?.close();
  });

  const adminToken = (organization: SignedUpOrganization) => organization.admin.tokens.accessToken;

  function expectCreated(response: ApiResponse, what: string): void {
    expect({ what, status: response.status, text: response.text }).toEqual({
      what,
      status: 201,
      text: response.text,
    });
  }

  async function createContact(
    organization: SignedUpOrganization,
    input: { email: string; name: string; phone?: string },
  ): Promise<string> {
    const response = await server.api.post('/api/v1/contacts', input, {
      token: adminToken(organization),
    });
    expectCreated(response, 'contact');

    return response.body.id;
  }

  async function openConversation(
    organization: SignedUpOrganization,
    contactId: string,
    subject?: string,
  ): Promise<string> {
    const response = await server.api.post(
      '/api/v1/conversations',
      { contactId, subject },
      { token: adminToken(organization) },
    );
    expectCreated(response, 'conversation');

    return response.body.id;
  }

  async function sendMessage(
    organization: SignedUpOrganization,
    conversationId: string,
    body: string,
  ): Promise<string> {
    const response = await server.api.post(
      `/api/v1/conversations/${conversationId}/messages`,
      { body },
      { token: adminToken(organization) },
    );
    expectCreated(response, 'message');

    return response.body.id;
  }

  async function addMember(
    organization: SignedUpOrganization,
    input: { email: string; name: string; role?: string },
  ): Promise<Member> {
    const password = uniquePassword();
    const response = await server.api.post(
      '/api/v1/users',
      { ...input, role: input.role ?? 'agent', password },
      { token: adminToken(organization) },
    );
    expectCreated(response, 'member');

    return {
      id: response.body.id,
      email: input.email,
      name: input.name,
      role: response.body.role,
      password,
      tokens: await login(server.api, organization.slug, input.email, password),
    };
  }

  function messagesOf(organization: SignedUpOrganization, conversationId: string) {
    return server.api.get(`/api/v1/conversations/${conversationId}/messages?limit=500`, {
      token: adminToken(organization),
    });
  }

  async function socketFor(token: string): Promise<Socket> {
    const socket = await connectSocket(server, token);
    sockets.push(socket);

    return socket;
  }

  function ack(socket: Socket, event: string, payload: unknown): Promise<Ack> {
    return socket.timeout(ACK_TIMEOUT_MS).emitWithAck(event, payload) as Promise<Ack>;
  }

  /** Opens a stored value as the server would, inside a tenant transaction of `organizationId`. */
  function openIn(organizationId: string, binding: SealBinding, sealed: string): Promise<string> {
    return transactions.run(organizationId, (manager) => cipher.open(manager, binding, sealed));
  }

  async function ownerQuery<T = Record<string, unknown>>(
    sql: string,
    parameters: unknown[] = [],
  ): Promise<T[]> {
    return (await owner.query(sql, parameters)).rows as T[];
  }

  /** Every sealed value the organization stores, read as the owner, with its key id and version. */
  async function storedValuesOf(organizationId: string): Promise<StoredValue[]> {
    const values: StoredValue[] = [];
    for (const [table, column] of SEALED_COLUMNS) {
      const rows = await ownerQuery<{ id: string; value: string }>(
        `select id, ${column} as value from ${table}
          where organization_id = $1 and ${column} is not null order by id`,
        [organizationId],
      );
      for (const row of rows) {
        const parts = envelopeParts(row.value);
        values.push({ table, column, ...row, keyId: parts.keyId, version: parts.version });
      }
    }

    return values;
  }

  async function ringsOf(organizationId: string) {
    return ownerQuery<{
      id: string;
      purpose: string;
      subject_id: string | null;
      current_version: number;
      min_version: number;
      destroyed_at: Date | null;
    }>(
      `select id, purpose, subject_id, current_version, min_version, destroyed_at
         from keyring.data_keys where organization_id = $1 order by id`,
      [organizationId],
    );
  }

  async function keyVersionsOf(organizationId: string) {
    return ownerQuery<{ key_id: string; version: number }>(
      `select key_id, version from keyring.data_key_versions
        where organization_id = $1 order by key_id, version`,
      [organizationId],
    );
  }

  async function bodyOf(messageId: string): Promise<string> {
    const [row] = await ownerQuery<{ body: string }>('select body from messages where id = $1', [
      messageId,
    ]);

    return row.body;
  }

  const messageBinding = (organizationId: string, rowId: string): SealBinding => ({
    organizationId,
    table: 'messages',
    column: 'body',
    rowId,
  });

  it('stores no clear confidential value anywhere', async () => {
    const tag = marker();
    const clear = {
      adminEmail: `Ada.Admin-${tag}@Example.test`,
      adminName: `Ada Lovelace ${tag}`,
      agentEmail: `Grace.Agent-${tag}@Example.test`,
      agentName: `Grace Hopper ${tag}`,
      contactEmail: `Katherine.Contact-${tag}@Example.test`,
      contactName: `Katherine Johnson ${tag}`,
      contactPhone: `+1 (${randomDigits(3)}) ${randomDigits(3)}-${randomDigits(4)}`,
      subject: `Refund for order ${tag}`,
      restBody: `My parcel never arrived, order ${tag}`,
      socketBody: `Sorry about the parcel, resending ${tag}`,
      widgetSubject: `Widget question ${tag}`,
      visitorBody: `Visitor asks about the pricing ${tag}`,
    };
    const organization = await signupOrganization(server.api, {
      email: clear.adminEmail,
      name: clear.adminName,
    });
    const agent = await addMember(organization, {
      email: clear.agentEmail,
      name: clear.agentName,
    });
    const contactId = await createContact(organization, {
      email: clear.contactEmail,
      name: clear.contactName,
      phone: clear.contactPhone,
    });
    const conversationId = await openConversation(organization, contactId, clear.subject);
    await sendMessage(organization, conversationId, clear.restBody);
    const agentSocket = await socketFor(agent.tokens.accessToken);
    const sent = await ack(agentSocket, 'message:send', {
      conversationId,
      body: clear.socketBody,
      clientMessageId: `socket-${tag}`,
    });
    expect(sent).toEqual(expect.objectContaining({ ok: true }));

    const patched = await server.api.patch(
      '/api/v1/organization',
      { widget: { allowedOrigins: [WIDGET_ORIGIN] } },
      { token: adminToken(organization) },
    );
    expect(patched.status).toBe(200);
    const visit = await server.api.post(
      '/api/v1/widget/sessions',
      { widgetKey: patched.body.widget.key },
      { headers: { origin: WIDGET_ORIGIN } },
    );
    expectCreated(visit, 'widget session');
    const widgetConversation = await server.api.post(
      '/api/v1/widget/conversations',
      { subject: clear.widgetSubject },
      { token: visit.body.visitorToken },
    );
    expectCreated(widgetConversation, 'widget conversation');
    const visitorSocket = await socketFor(visit.body.visitorToken);
    const visitorSent = await ack(visitorSocket, 'message:send', {
      conversationId: widgetConversation.body.id,
      body: clear.visitorBody,
      clientMessageId: `visitor-${tag}`,
    });
    expect(visitorSent).toEqual(expect.objectContaining({ ok: true }));

    // TOTP enrollment of the agent: the secret is shown once and must be stored sealed.
    const agentToken = agent.tokens.accessToken;
    const started = await server.api.post('/api/v1/me/mfa/totp', undefined, { token: agentToken });
    expectCreated(started, 'TOTP enrollment');
    const totpSecret: string = started.body.secret;
    server.api.remember(totpSecret);
    clock.advance(TOTP_STEP_MS - (clock.nowMs() % TOTP_STEP_MS) + 100);
    const confirmed = await server.api.post(
      '/api/v1/me/mfa/totp/confirm',
      { code: await generate({ secret: totpSecret, epoch: clock.nowSeconds() }) },
      { token: agentToken },
    );
    expect(confirmed.status).toBe(200);

    // Every row of every table, as the owner (no row-level security), as JSON text.
    const tables = await ownerQuery<{ schemaname: string; tablename: string }>(
      `select schemaname, tablename from pg_tables
        where schemaname in ('public', 'keyring') order by schemaname, tablename`,
    );
    const scanned: { table: string; row: string }[] = [];
    for (const { schemaname, tablename } of tables) {
      const rows = await ownerQuery<{ row: string }>(
        `select row_to_json(t)::text as row from "${schemaname}"."${tablename}" t`,
      );
      scanned.push(...rows.map(({ row }) => ({ table: `${schemaname}.${tablename}`, row })));
    }
    const needles = new Map<string, string>();
    for (const [what, value] of Object.entries({ ...clear, totpSecret })) {
      needles.set(value, what);
      needles.set(value.toLowerCase(), `${what} (lower case)`);
      needles.set(Buffer.from(value).toString('hex'), `${what} (hex)`);
      needles.set(Buffer.from(value).toString('base64'), `${what} (base64)`);
    }
    needles.set(clear.contactPhone.replace(/[^+0-9]/g, ''), 'contactPhone (digits only)');
    const found = scanned.flatMap(({ table, row }) =>
      [...needles]
        .filter(([needle]) => row.toLowerCase().includes(needle.toLowerCase()))
        .map(([, what]) => `${what} in ${table}`),
    );

    expect(found).toEqual([]);
    // The scan read this organization's rows, and they hold sealed values, not nothing.
    const tableNames = tables.map((table) => `${table.schemaname}.${table.tablename}`);
    expect(tableNames).toEqual(
      expect.arrayContaining([
        'public.contacts',
        'public.messages',
        'public.users',
        'public.mfa_totp_factors',
        'keyring.data_keys',
        'keyring.data_key_versions',
      ]),
    );
    const ours = scanned.filter(({ row }) => row.includes(organization.id));
    const tablesWithOurRows = new Set(ours.map(({ table }) => table));
    expect(
      [
        'public.contacts',
        'public.conversations',
        'public.messages',
        'public.users',
        'public.mfa_totp_factors',
        'keyring.data_keys',
        'keyring.data_key_versions',
      ].filter((table) => !tablesWithOurRows.has(table)),
    ).toEqual([]);
    const stored = await storedValuesOf(organization.id);
    expect(stored.map((value) => `${value.table}.${value.column}`).sort()).toEqual(
      [
        'contacts.email',
        'contacts.name',
        'contacts.phone',
        'conversations.subject',
        'conversations.subject',
        'messages.body',
        'messages.body',
        'messages.body',
        'mfa_totp_factors.secret',
        'users.email',
        'users.email',
        'users.name',
        'users.name',
      ].sort(),
    );
    expect(stored.every((value) => value.value.startsWith('pv1.'))).toBe(true);

    // ...and the server still gives every clear value back to those allowed to read it.
    const contact = await server.api.get(`/api/v1/contacts/${contactId}`, {
      token: adminToken(organization),
    });
    expect(contact.body).toEqual(
      expect.objectContaining({
        email: clear.contactEmail.toLowerCase(),
        name: clear.contactName,
        phone: clear.contactPhone,
      }),
    );
    const conversation = await server.api.get(`/api/v1/conversations/${conversationId}`, {
      token: adminToken(organization),
    });
    expect(conversation.body.subject).toBe(clear.subject);
    const widgetRead = await server.api.get(`/api/v1/conversations/${widgetConversation.body.id}`, {
      token: adminToken(organization),
    });
    expect(widgetRead.body.subject).toBe(clear.widgetSubject);
    const messages = await messagesOf(organization, conversationId);
    expect(messages.body.items.map((message: { body: string }) => message.body)).toEqual([
      clear.restBody,
      clear.socketBody,
    ]);
    const visitorMessages = await messagesOf(organization, widgetConversation.body.id);
    expect(visitorMessages.body.items.map((message: { body: string }) => message.body)).toEqual([
      clear.visitorBody,
    ]);
    const members = await server.api.get('/api/v1/users', { token: adminToken(organization) });
    expect(
      members.body.items.map((member: { email: string; name: string }) => [
        member.email,
        member.name,
      ]),
    ).toEqual(
      expect.arrayContaining([
        [clear.adminEmail.toLowerCase(), clear.adminName],
        [clear.agentEmail.toLowerCase(), clear.agentName],
      ]),
    );
    // The sealed TOTP secret still verifies codes: a login needs one, and the next step's passes.
    const credentials = {
      organizationSlug: organization.slug,
      email: clear.agentEmail,
      password: agent.password,
    };
    const withoutCode = await server.api.post('/api/v1/auth/login', credentials);
    expectProblem(withoutCode, 401, 'mfa_required');
    clock.advance(TOTP_STEP_MS - (clock.nowMs() % TOTP_STEP_MS) + 100);
    const withCode = await server.api.post('/api/v1/auth/login', {
      ...credentials,
      mfaCode: await generate({ secret: totpSecret, epoch: clock.nowSeconds() }),
    });
    expect(withCode.status).toBe(200);
  });

  describe('a sealed value moved or altered', () => {
    let alpha: SignedUpOrganization;
    let beta: SignedUpOrganization;

    beforeAll(async () => {
      [alpha, beta] = await Promise.all([
        signupOrganization(server.api),
        signupOrganization(server.api),
      ]);
    });

    it("refuses a contact's email copied into another contact of the same organization", async () => {
      const tag = marker();
      const source = { email: `source-${tag}@example.test`, name: `Source Person ${tag}` };
      const target = { email: `target-${tag}@example.test`, name: `Target Person ${tag}` };
      const sourceId = await createContact(alpha, source);
      const targetId = await createContact(alpha, target);
      const before = await server.api.get(`/api/v1/contacts/${targetId}`, {
        token: adminToken(alpha),
      });
      expect(before.body.email).toBe(target.email);

      await owner.query(
        'update contacts set email = (select email from contacts where id = $1) where id = $2',
        [sourceId, targetId],
      );
      const moved = await server.api.get(`/api/v1/contacts/${targetId}`, {
        token: adminToken(alpha),
      });
      const sourceStill = await server.api.get(`/api/v1/contacts/${sourceId}`, {
        token: adminToken(alpha),
      });

      expectProblem(moved, 500, 'sealed_value_refused');
      for (const value of [source.email, target.email, source.name, target.name]) {
        expect(moved.text).not.toContain(value);
        expect(server.logs.text()).not.toContain(value);
      }
      const [stored] = await ownerQuery<{ email: string }>(
        'select email from contacts where id = $1',
        [targetId],
      );
      expect(moved.text).not.toContain(stored.email);
      expect(sourceStill.status).toBe(200);
      expect(sourceStill.body.email).toBe(source.email);
    });

    it("refuses a contact's name copied into the phone column of the same row", async () => {
      const tag = marker();
      const contactId = await createContact(alpha, {
        email: `moved-column-${tag}@example.test`,
        name: `Column Mover ${tag}`,
        phone: `+44 20 ${randomDigits(4)} ${randomDigits(4)}`,
      });

      await owner.query('update contacts set phone = name where id = $1', [contactId]);
      const read = await server.api.get(`/api/v1/contacts/${contactId}`, {
        token: adminToken(alpha),
      });
      const [row] = await ownerQuery<{ name: string; phone: string }>(
        'select name, phone from contacts where id = $1',
        [contactId],
      );

      expectProblem(read, 500, 'sealed_value_refused');
      expect(read.text).not.toContain(`Column Mover ${tag}`);
      expect(row.phone).toBe(row.name);
      expect(
        await refusalOf(
          openIn(
            alpha.id,
            { organizationId: alpha.id, table: 'contacts', column: 'phone', rowId: contactId },
            row.phone,
          ),
        ),
      ).toBe('authentication_failed');
      // The value is intact where it belongs.
      expect(
        await openIn(
          alpha.id,
          { organizationId: alpha.id, table: 'contacts', column: 'name', rowId: contactId },
          row.name,
        ),
      ).toBe(`Column Mover ${tag}`);
    });

    it("refuses a message body copied into another organization's message", async () => {
      const tag = marker();
      const alphaConversation = await openConversation(
        alpha,
        await createContact(alpha, { email: `a-${tag}@example.test`, name: 'Alpha Contact' }),
      );
      const betaConversation = await openConversation(
        beta,
        await createContact(beta, { email: `b-${tag}@example.test`, name: 'Beta Contact' }),
      );
      const alphaMessage = await sendMessage(alpha, alphaConversation, `Alpha secret ${tag}`);
      const betaMessage = await sendMessage(beta, betaConversation, `Beta words ${tag}`);
      const alphaBody = await bodyOf(alphaMessage);

      await owner.query('update messages set body = $1 where id = $2', [alphaBody, betaMessage]);
      const inBeta = await refusalOf(
        openIn(beta.id, messageBinding(beta.id, betaMessage), alphaBody),
      );
      const read = await messagesOf(beta, betaConversation);

      expect(['authentication_failed', 'key_unavailable']).toContain(inBeta);
      expectProblem(read, 500, 'sealed_value_refused');
      expect(read.text).not.toContain(`Alpha secret ${tag}`);
      const alphaRead = await messagesOf(alpha, alphaConversation);
      expect(alphaRead.body.items.map((message: { body: string }) => message.body)).toEqual([
        `Alpha secret ${tag}`,
      ]);
    });

    it("opens no other organization's value inside a tenant transaction, even with its key cached", async () => {
      const tag = marker();
      const alphaConversation = await openConversation(
        alpha,
        await createContact(alpha, { email: `cached-${tag}@example.test`, name: 'Cached Key' }),
      );
      // Sealing the message has just put alpha's contact key in the server's key cache.
      const alphaMessage = await sendMessage(alpha, alphaConversation, `Cached secret ${tag}`);
      const alphaBody = await bodyOf(alphaMessage);
      const binding = messageBinding(alpha.id, alphaMessage);

      // Row-level security hides alpha's keys from beta's transaction; the binding names alpha.
      const inBeta = await refusalOf(openIn(beta.id, binding, alphaBody));

      expect(inBeta).toBe('key_unavailable');
      expect(await openIn(alpha.id, binding, alphaBody)).toBe(`Cached secret ${tag}`);
    });

    it('refuses a tampered envelope with the code of what is wrong', async () => {
      const tag = marker();
      const conversationId = await openConversation(
        alpha,
        await createContact(alpha, { email: `tamper-${tag}@example.test`, name: 'Tampered' }),
      );
      const clear = `Tamper target, long enough to cut ${tag}`;
      const messageId = await sendMessage(alpha, conversationId, clear);
      const sealed = await bodyOf(messageId);
      const binding = messageBinding(alpha.id, messageId);
      const [organizationRing] = await ownerQuery<{ id: string }>(
        `select id from keyring.data_keys where organization_id = $1 and purpose = 'organization'`,
        [alpha.id],
      );
      const [betaRing] = await ownerQuery<{ id: string }>(
        `select id from keyring.data_keys where organization_id = $1 limit 1`,
        [beta.id],
      );
      const { version } = envelopeParts(sealed);
      expect(organizationRing?.id).toEqual(expect.any(String));
      expect(betaRing?.id).toEqual(expect.any(String));
      expect(organizationRing.id).not.toBe(envelopeParts(sealed).keyId);

      const cases: [what: string, value: string, code: string][] = [
        [
          'a shorter tag',
          withSealedBytes(sealed, (bytes) => bytes.subarray(0, -4)),
          'authentication_failed',
        ],
        [
          'no full tag left',
          withSealedBytes(sealed, (bytes) => bytes.subarray(0, 12)),
          'wrong_size',
        ],
        [
          'a flipped ciphertext bit',
          withSealedBytes(sealed, (bytes) => {
            bytes[0] ^= 0x01;

            return bytes;
          }),
          'authentication_failed',
        ],
        [
          'a flipped tag bit',
          withSealedBytes(sealed, (bytes) => {
            bytes[bytes.length - 1] ^= 0x80;

            return bytes;
          }),
          'authentication_failed',
        ],
        [
          'a version the key does not have',
          withParts(sealed, { version: String(version + 1) }),
          'key_unavailable',
        ],
        [
          'the organization key id',
          withParts(sealed, { keyId: organizationRing.id }),
          'authentication_failed',
        ],
        ['an unknown key id', withParts(sealed, { keyId: randomUUID() }), 'key_unavailable'],
        [
          "another organization's key id",
          withParts(sealed, { keyId: betaRing.id }),
          'key_unavailable',
        ],
        ['the pv2 prefix', withParts(sealed, { prefix: 'pv2' }), 'unsupported_version'],
        ['no prefix', sealed.slice(4), 'unsupported_version'],
        ['a missing part', sealed.split('.').slice(0, 4).join('.'), 'malformed'],
        [
          'a short nonce',
          withParts(sealed, { nonce: envelopeParts(sealed).nonce.slice(0, 12) }),
          'wrong_size',
        ],
      ];
      const refused: Record<string, string> = {};
      for (const [what, value] of cases) {
        refused[what] = await refusalOf(openIn(alpha.id, binding, value));
      }

      expect(refused).toEqual(Object.fromEntries(cases.map(([what, , code]) => [what, code])));
      // The untouched value still opens, so each refusal is the change's doing.
      expect(await openIn(alpha.id, binding, sealed)).toBe(clear);
      // A well-formed but altered value passes the CHECK constraint; the server refuses it on read.
      await owner.query('update messages set body = $1 where id = $2', [cases[2][1], messageId]);
      const read = await messagesOf(alpha, conversationId);
      expectProblem(read, 500, 'sealed_value_refused');
      expect(read.text).not.toContain(clear);
    });
  });

  describe('the CHECK constraint on every sealed column', () => {
    let organization: SignedUpOrganization;
    const rowOf: Record<string, string> = {};

    beforeAll(async () => {
      organization = await signupOrganization(server.api);
      const tag = marker();
      rowOf.contacts = await createContact(organization, {
        email: `checked-${tag}@example.test`,
        name: 'Checked Contact',
        phone: '+1 555 0100',
      });
      rowOf.conversations = await openConversation(organization, rowOf.contacts, 'Checked');
      rowOf.messages = await sendMessage(organization, rowOf.conversations, 'Checked body');
      rowOf.users = organization.admin.id;
      // A pending TOTP factor is enough for a row with a sealed secret.
      const started = await server.api.post('/api/v1/me/mfa/totp', undefined, {
        token: adminToken(organization),
      });
      expectCreated(started, 'TOTP enrollment');
      server.api.remember(started.body.secret);
      const [factor] = await ownerQuery<{ id: string }>(
        'select id from mfa_totp_factors where user_id = $1',
        [organization.admin.id],
      );
      rowOf.mfa_totp_factors = factor.id;
    });

    async function rowJson(table: string, id: string): Promise<string> {
      const [row] = await ownerQuery<{ row: string }>(
        `select row_to_json(t)::text as row from ${table} t where id = $1`,
        [id],
      );

      return row.row;
    }

    it('refuses a clear value written by raw SQL into every sealed column', async () => {
      const outcomes: Record<string, unknown> = {};
      const unchanged: Record<string, boolean> = {};
      for (const [table, column] of SEALED_COLUMNS) {
        const id = rowOf[table];
        const before = await rowJson(table, id);
        const attempt = await owner
          .query(`update ${table} set ${column} = $1 where id = $2`, [
            `clear ${column} ${marker()}`,
            id,
          ])
          .then(
            () => 'accepted',
            (error: { code?: string; constraint?: string }) => `${error.code} ${error.constraint}`,
          );
        outcomes[`${table}.${column}`] = attempt;
        unchanged[`${table}.${column}`] = (await rowJson(table, id)) === before;
      }

      expect(outcomes).toEqual(
        Object.fromEntries(
          SEALED_COLUMNS.map(([table, column]) => [
            `${table}.${column}`,
            `23514 ${table}_${column}_sealed`,
          ]),
        ),
      );
      expect(Object.values(unchanged).every(Boolean)).toBe(true);
      // The rows still open through the API.
      const read = await server.api.get(`/api/v1/contacts/${rowOf.contacts}`, {
        token: adminToken(organization),
      });
      expect(read.body.name).toBe('Checked Contact');
    });

    it('refuses a clear value inserted by raw SQL, and stores no row', async () => {
      const index = randomBytes(32);
      const count = async () =>
        (
          await ownerQuery<{ count: number }>(
            `select (select count(*) from contacts where organization_id = $1)
                  + (select count(*) from conversations where organization_id = $1)
                  + (select count(*) from messages where organization_id = $1) as count`,
            [organization.id],
          )
        )[0].count;
      const before = await count();
      const inserts: [constraint: string, sql: string, parameters: unknown[]][] = [
        [
          'contacts_email_sealed',
          `insert into contacts (organization_id, email, email_index) values ($1, $2, $3)`,
          [organization.id, 'planted@example.test', index],
        ],
        [
          'contacts_name_sealed',
          `insert into contacts (organization_id, name) values ($1, $2)`,
          [organization.id, 'Planted Name'],
        ],
        [
          'conversations_subject_sealed',
          `insert into conversations (organization_id, contact_id, subject, status) values ($1, $2, $3, 'open')`,
          [organization.id, rowOf.contacts, 'Planted subject'],
        ],
        [
          'messages_body_sealed',
          `insert into messages (organization_id, conversation_id, author_type, body, created_at)
           values ($1, $2, 'agent', $3, now())`,
          [organization.id, rowOf.conversations, 'Planted body'],
        ],
      ];
      const outcomes: Record<string, string> = {};
      for (const [constraint, sql, parameters] of inserts) {
        outcomes[constraint] = await owner.query(sql, parameters).then(
          () => 'accepted',
          (error: { code?: string; constraint?: string }) => `${error.code} ${error.constraint}`,
        );
      }

      expect(outcomes).toEqual(
        Object.fromEntries(inserts.map(([constraint]) => [constraint, `23514 ${constraint}`])),
      );
      expect(await count()).toBe(before);
    });

    it('refuses a query-builder update of a sealed column, which the subscriber cannot bind to a row', async () => {
      const before = await rowJson('contacts', rowOf.contacts);
      const viaManager = transactions.run(organization.id, (manager) =>
        manager.update(ContactEntity, { id: rowOf.contacts }, { name: 'Overwritten Name' }),
      );
      const viaBuilder = transactions.run(organization.id, (manager) =>
        manager
          .createQueryBuilder()
          .update(ContactEntity)
          .set({ phone: '+1 555 0199' })
          .where('id = :id', { id: rowOf.contacts })
          .execute(),
      );

      await expect(viaManager).rejects.toThrow(/contacts\.name is sealed/);
      await expect(viaBuilder).rejects.toThrow(/contacts\.phone is sealed/);
      expect(await rowJson('contacts', rowOf.contacts)).toBe(before);
    });

    it('seals a change saved through a loaded entity, and leaves unchanged fields as stored', async () => {
      const [before] = await ownerQuery<{ name: string; phone: string }>(
        'select name, phone from contacts where id = $1',
        [rowOf.contacts],
      );
      await transactions.run(organization.id, async (manager) => {
        const contact = await manager.findOneByOrFail(ContactEntity, { id: rowOf.contacts });
        expect(contact.name).toBe('Checked Contact');
        contact.phone = '+1 555 0142';
        await manager.save(contact);
        expect(contact.phone).toBe('+1 555 0142');
      });
      const [after] = await ownerQuery<{ name: string; phone: string }>(
        'select name, phone from contacts where id = $1',
        [rowOf.contacts],
      );

      expect(after.name).toBe(before.name);
      expect(after.phone).not.toBe(before.phone);
      expect(after.phone).toMatch(/^pv1\./);
      expect(after.phone).not.toContain('0142');
      const read = await server.api.get(`/api/v1/contacts/${rowOf.contacts}`, {
        token: adminToken(organization),
      });
      expect(read.body).toMatchObject({ name: 'Checked Contact', phone: '+1 555 0142' });
    });

    it('refuses a malformed envelope with the right prefix', async () => {
      const [row] = await ownerQuery<{ name: string }>('select name from contacts where id = $1', [
        rowOf.contacts,
      ]);
      const good = row.name;
      const parts = envelopeParts(good);
      const malformed: Record<string, string> = {
        'padded base64': withParts(good, { body: `${parts.body}==` }),
        'standard base64 characters': withParts(good, { body: `+/${parts.body.slice(2)}` }),
        'a short tag': withParts(good, { body: parts.body.slice(0, 20) }),
        'a short nonce': withParts(good, { nonce: parts.nonce.slice(0, 12) }),
        'a missing part': [parts.prefix, parts.keyId, parts.version, parts.body].join('.'),
        'version 0': withParts(good, { version: '0' }),
        'an upper-case key id': withParts(good, { keyId: parts.keyId.toUpperCase() }),
        'clear text after a newline': `${good}\nclear text`,
        'clear text after a space': `${good} clear text`,
        'the empty string': '',
      };
      const accepted: string[] = [];
      for (const [what, value] of Object.entries(malformed)) {
        const outcome = await owner
          .query('update contacts set name = $1 where id = $2', [value, rowOf.contacts])
          .then(
            () => 'accepted',
            (error: { code?: string; constraint?: string }) => `${error.code} ${error.constraint}`,
          );
        if (outcome !== '23514 contacts_name_sealed') {
          accepted.push(`${what}: ${outcome}`);
        }
      }
      const [after] = await ownerQuery<{ name: string }>(
        'select name from contacts where id = $1',
        [rowOf.contacts],
      );

      expect(accepted).toEqual([]);
      expect(after.name).toBe(good);
    });
  });

  it('rotates, re-seals and retires data keys of one organization only', async () => {
    const organization = await signupOrganization(server.api);
    const bystander = await signupOrganization(server.api);
    const tag = marker();
    const contact = { email: `rotated-${tag}@example.test`, name: `Rotated Person ${tag}` };
    const contactId = await createContact(organization, contact);
    const conversationId = await openConversation(organization, contactId, `Rotated ${tag}`);
    const firstMessage = await sendMessage(organization, conversationId, `Before rotation ${tag}`);
    await sendMessage(organization, conversationId, `Also before ${tag}`);
    await openConversation(bystander, await createContact(bystander, contact), 'Bystander');
    const bystanderRings = await ringsOf(bystander.id);
    const bystanderVersions = await keyVersionsOf(bystander.id);
    const oldFirstBody = await bodyOf(firstMessage);
    const ringsBefore = await ringsOf(organization.id);
    const before = await storedValuesOf(organization.id);
    expect(before.map((value) => value.version)).toEqual(before.map(() => 1));

    const rotated = await maintenance.rotateAll([organization.id]);

    const ringsAfter = await ringsOf(organization.id);
    expect(rotated).toBe(ringsBefore.filter((ring) => ring.purpose !== 'blind-index').length);
    expect(rotated).toBeGreaterThanOrEqual(2);
    expect(ringsAfter.map((ring) => [ring.purpose, ring.current_version])).toEqual(
      ringsBefore.map((ring) => [
        ring.purpose,
        ring.purpose === 'blind-index' ? ring.current_version : ring.current_version + 1,
      ]),
    );
    expect(await ringsOf(bystander.id)).toEqual(bystanderRings);
    expect(await keyVersionsOf(bystander.id)).toEqual(bystanderVersions);
    // Old values still read.
    const contactRead = await server.api.get(`/api/v1/contacts/${contactId}`, {
      token: adminToken(organization),
    });
    expect(contactRead.body).toEqual(expect.objectContaining(contact));
    const bodies = async () =>
      (await messagesOf(organization, conversationId)).body.items.map(
        (message: { body: string }) => message.body,
      );
    expect(await bodies()).toEqual([`Before rotation ${tag}`, `Also before ${tag}`]);
    // New writes use the new version.
    const newMessage = await sendMessage(organization, conversationId, `After rotation ${tag}`);
    const member = await addMember(organization, {
      email: `rotated-member-${tag}@example.test`,
      name: `Rotated Member ${tag}`,
    });
    const version = (ring: string) => ringsAfter.find((r) => r.id === ring)?.current_version;
    const newBody = envelopeParts(await bodyOf(newMessage));
    expect(newBody.version).toBe(2);
    expect(newBody.version).toBe(version(newBody.keyId));
    const [memberRow] = await ownerQuery<{ email: string; name: string }>(
      'select email, name from users where id = $1',
      [member.id],
    );
    expect([envelopeParts(memberRow.email).version, envelopeParts(memberRow.name).version]).toEqual(
      [2, 2],
    );
    // An old value relabelled with the new version is refused: the version is authenticated.
    expect(
      await refusalOf(
        openIn(
          organization.id,
          messageBinding(organization.id, firstMessage),
          withParts(oldFirstBody, { version: '2' }),
        ),
      ),
    ).toBe('authentication_failed');
    const outdated = (await storedValuesOf(organization.id)).filter(
      (value) => value.version < (version(value.keyId) ?? 0),
    );
    expect(outdated.length).toBe(before.length);
    expect(await maintenance.countOutdated(organization.id)).toBe(outdated.length);

    const report = await maintenance.rewrap({ organizationIds: [organization.id] });

    expect(report).toEqual(
      expect.objectContaining({
        organizations: 1,
        resealed: outdated.length,
        remaining: 0,
        retired: false,
      }),
    );
    expect(await maintenance.countOutdated(organization.id)).toBe(0);
    const resealed = await storedValuesOf(organization.id);
    expect(resealed.filter((value) => value.version !== version(value.keyId))).toEqual([]);
    expect(resealed.filter((value) => before.some((old) => old.value === value.value))).toEqual([]);
    expect(await bodies()).toEqual([
      `Before rotation ${tag}`,
      `Also before ${tag}`,
      `After rotation ${tag}`,
    ]);
    // Until retired, the old version still opens a value captured before the rewrap.
    expect(
      await openIn(organization.id, messageBinding(organization.id, firstMessage), oldFirstBody),
    ).toBe(`Before rotation ${tag}`);

    // Right after the rotation a running instance may still seal with the previous version
    // (its cached ring is up to DATA_KEY_CACHE_SECONDS old): retiring it now would lose those
    // values, so the rewrap refuses, and keeps the old version opening.
    const tooSoon = await maintenance.rewrap({ organizationIds: [organization.id], retire: true });
    expect(tooSoon).toEqual(expect.objectContaining({ remaining: 0, retired: false }));
    expect(tooSoon.waiting).toBeGreaterThan(0);
    expect(
      await openIn(organization.id, messageBinding(organization.id, firstMessage), oldFirstBody),
    ).toBe(`Before rotation ${tag}`);

    clock.advance((server.config.dataKeyCacheSeconds + 6) * 1000);
    const retiring = await maintenance.rewrap({ organizationIds: [organization.id], retire: true });

    expect(retiring).toEqual(expect.objectContaining({ remaining: 0, retired: true, waiting: 0 }));
    const ringsRetired = await ringsOf(organization.id);
    expect(ringsRetired.filter((ring) => ring.min_version !== ring.current_version)).toEqual([]);
    expect(await keyVersionsOf(organization.id)).toEqual(
      ringsRetired
        .map((ring) => ({ key_id: ring.id, version: ring.current_version }))
        .sort((a, b) => (a.key_id < b.key_id ? -1 : a.key_id > b.key_id ? 1 : 0)),
    );
    expect(await ringsOf(bystander.id)).toEqual(bystanderRings);
    expect(await keyVersionsOf(bystander.id)).toEqual(bystanderVersions);
    expect(await bodies()).toEqual([
      `Before rotation ${tag}`,
      `Also before ${tag}`,
      `After rotation ${tag}`,
    ]);
    const afterRetire = await server.api.get(`/api/v1/contacts/${contactId}`, {
      token: adminToken(organization),
    });
    expect(afterRetire.body).toEqual(expect.objectContaining(contact));
    await login(server.api, organization.slug, member.email, member.password);
    // The value captured before the rewrap no longer opens, and written back it is refused.
    expect(
      await refusalOf(
        openIn(organization.id, messageBinding(organization.id, firstMessage), oldFirstBody),
      ),
    ).toMatch(/^(key_version_retired|key_unavailable)$/);
    await owner.query('update messages set body = $1 where id = $2', [oldFirstBody, firstMessage]);
    const refused = await messagesOf(organization, conversationId);
    expectProblem(refused, 500, 'sealed_value_refused');
    expect(refused.text).not.toContain(`Before rotation ${tag}`);
  });

  it('erases a contact so that no backup taken before can open their data', async () => {
    const organization = await signupOrganization(server.api);
    const manager = await addMember(organization, {
      email: `erase-manager-${marker()}@example.test`,
      name: 'Erase Manager',
      role: 'manager',
    });
    const tag = marker();
    const erased = {
      email: `erased-${tag}@example.test`,
      name: `Erased Person ${tag}`,
      phone: '+1 555 0199',
    };
    const kept = { email: `kept-${tag}@example.test`, name: `Kept Person ${tag}` };
    const erasedId = await createContact(organization, erased);
    const keptId = await createContact(organization, kept);
    const erasedConversations = [
      await openConversation(organization, erasedId, `Erased subject one ${tag}`),
      await openConversation(organization, erasedId, `Erased subject two ${tag}`),
    ];
    const keptConversation = await openConversation(organization, keptId, `Kept subject ${tag}`);
    const erasedBodies = [
      `Erased body one ${tag}`,
      `Erased body two ${tag}`,
      `Erased body three ${tag}`,
    ];
    const keptBodies = [`Kept body one ${tag}`, `Kept body two ${tag}`];
    await sendMessage(organization, erasedConversations[0], erasedBodies[0]);
    await sendMessage(organization, erasedConversations[0], erasedBodies[1]);
    await sendMessage(organization, erasedConversations[1], erasedBodies[2]);
    for (const body of keptBodies) {
      await sendMessage(organization, keptConversation, body);
    }

    const { stdout: dump } = await runFile(
      PG_DUMP,
      ['--data-only', '--schema=public', `--dbname=${testDatabaseUrl()}`],
      { maxBuffer: 512 * 1024 * 1024 },
    );
    const refusedByManager = await server.api.delete(`/api/v1/contacts/${erasedId}`, {
      token: manager.tokens.accessToken,
    });
    expectProblem(refusedByManager, 403);
    const stillThere = await server.api.get(`/api/v1/contacts/${erasedId}`, {
      token: adminToken(organization),
    });
    expect(stillThere.body).toEqual(expect.objectContaining(erased));

    const erasure = await server.api.delete(`/api/v1/contacts/${erasedId}`, {
      token: adminToken(organization),
    });

    expect(erasure.status).toBe(204);
    const gone = await Promise.all([
      server.api.get(`/api/v1/contacts/${erasedId}`, { token: adminToken(organization) }),
      ...erasedConversations.map((id) => messagesOf(organization, id)),
    ]);
    for (const response of gone) {
      expectProblem(response, 404, 'not_found');
    }
    const [left] = await ownerQuery<{ contacts: number; conversations: number; messages: number }>(
      `select (select count(*) from contacts where id = $1)::int as contacts,
              (select count(*) from conversations where contact_id = $1)::int as conversations,
              (select count(*) from messages where conversation_id = any($2::uuid[]))::int as messages`,
      [erasedId, erasedConversations],
    );
    expect(left).toEqual({ contacts: 0, conversations: 0, messages: 0 });
    const [ring] = await ownerQuery<{ id: string; destroyed_at: Date | null; versions: number }>(
      `select k.id, k.destroyed_at,
              (select count(*) from keyring.data_key_versions v where v.key_id = k.id)::int as versions
         from keyring.data_keys k where k.organization_id = $1 and k.subject_id = $2`,
      [organization.id, erasedId],
    );
    expect(ring).toEqual({ id: expect.any(String), destroyed_at: expect.any(Date), versions: 0 });

    // The dump still holds the sealed rows; none of them opens any more.
    const dumpedMessages = copyRows(dump, 'messages');
    const dumpedErased = dumpedMessages.filter((row) =>
      erasedConversations.includes(row.conversation_id as string),
    );
    const dumpedKept = dumpedMessages.filter((row) => row.conversation_id === keptConversation);
    expect(dumpedErased).toHaveLength(3);
    expect(dumpedKept).toHaveLength(2);
    const erasedRefusals: string[] = [];
    for (const row of dumpedErased) {
      erasedRefusals.push(
        await refusalOf(
          openIn(
            organization.id,
            messageBinding(organization.id, row.id as string),
            row.body as string,
          ),
        ),
      );
    }
    expect(erasedRefusals).toEqual(['key_destroyed', 'key_destroyed', 'key_destroyed']);
    const [dumpedContact] = copyRows(dump, 'contacts').filter((row) => row.id === erasedId);
    const dumpedSubjects = copyRows(dump, 'conversations').filter((row) =>
      erasedConversations.includes(row.id as string),
    );
    const fieldRefusals: string[] = [];
    for (const column of ['email', 'name', 'phone']) {
      fieldRefusals.push(
        await refusalOf(
          openIn(
            organization.id,
            { organizationId: organization.id, table: 'contacts', column, rowId: erasedId },
            dumpedContact[column] as string,
          ),
        ),
      );
    }
    for (const row of dumpedSubjects) {
      fieldRefusals.push(
        await refusalOf(
          openIn(
            organization.id,
            {
              organizationId: organization.id,
              table: 'conversations',
              column: 'subject',
              rowId: row.id as string,
            },
            row.subject as string,
          ),
        ),
      );
    }
    expect(fieldRefusals).toEqual(Array.from({ length: 5 }, () => 'key_destroyed'));
    // The control: another contact's dumped messages still open, and they are still served.
    const keptOpened: string[] = [];
    for (const row of dumpedKept) {
      keptOpened.push(
        await openIn(
          organization.id,
          messageBinding(organization.id, row.id as string),
          row.body as string,
        ),
      );
    }
    expect(keptOpened.sort()).toEqual([...keptBodies].sort());
    const keptRead = await messagesOf(organization, keptConversation);
    expect(keptRead.body.items.map((message: { body: string }) => message.body)).toEqual(
      keptBodies,
    );
    for (const value of [
      ...erasedBodies,
      ...keptBodies,
      erased.email,
      erased.name,
      kept.name,
      tag,
    ]) {
      expect(dump).not.toContain(value);
    }
    const audit = await server.api.get('/api/v1/audit/events?action=contact.erased', {
      token: adminToken(organization),
    });
    expect(audit.body.items).toEqual([
      expect.objectContaining({ targetId: erasedId, metadata: { keyDestroyed: true } }),
    ]);
  });

  it('keeps emails unique per organization through a blind index that differs per organization', async () => {
    const [alpha, beta] = await Promise.all([
      signupOrganization(server.api),
      signupOrganization(server.api),
    ]);
    const email = `shared.person-${marker()}@example.test`;
    const alphaId = await createContact(alpha, { email, name: 'Shared in Alpha' });
    const counts = async (organizationId: string) =>
      (
        await ownerQuery<{ contacts: number; rings: number }>(
          `select (select count(*) from contacts where organization_id = $1)::int as contacts,
                  (select count(*) from keyring.data_keys where organization_id = $1)::int as rings`,
          [organizationId],
        )
      )[0];
    const before = await counts(alpha.id);

    const duplicate = await server.api.post(
      '/api/v1/contacts',
      { email: `  ${email.toUpperCase()}`, name: 'Shared Again' },
      { token: adminToken(alpha) },
    );
    const elsewhere = await server.api.post(
      '/api/v1/contacts',
      { email, name: 'Shared in Beta' },
      { token: adminToken(beta) },
    );

    expectProblem(duplicate, 409, 'contact_email_taken');
    expect(await counts(alpha.id)).toEqual(before);
    expectCreated(elsewhere, 'contact in another organization');
    const [alphaRow, betaRow] = await Promise.all(
      [alphaId, elsewhere.body.id as string].map(
        async (id) =>
          (
            await ownerQuery<{ email_index: Buffer; email: string }>(
              'select email_index, email from contacts where id = $1',
              [id],
            )
          )[0],
      ),
    );
    expect(alphaRow.email_index).toHaveLength(32);
    expect(betaRow.email_index).toHaveLength(32);
    expect(alphaRow.email_index.equals(betaRow.email_index)).toBe(false);
    // The index is the organization's keyed HMAC of the normalized email: a lookup finds the row.
    const lookedUp = await transactions.run(alpha.id, async (manager) => {
      const index = await cipher.blindIndex(manager, alpha.id, 'email', email.toUpperCase());

      return manager.query('select id from contacts where email_index = $1', [index]);
    });
    expect(lookedUp).toEqual([{ id: alphaId }]);
    // Members are found by email the same way at sign-in, whatever its case.
    await login(server.api, alpha.slug, alpha.admin.email.toUpperCase(), alpha.admin.password);
  });
});
