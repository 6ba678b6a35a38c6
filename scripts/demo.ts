import { randomInt, randomUUID } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';
import { performance } from 'node:perf_hooks';

import { Socket } from 'socket.io-client';

import {
  callApi,
  callApiOrThrow,
  connectChatSocket,
  DEFAULT_WAIT_MS,
  describeAck,
  describeResponse,
  emitWithAck,
  expectRecord,
  findUpwards,
  generateStrongPassword,
  isRecord,
  JsonRecord,
  preview,
  randomSuffix,
  readIntegerOption,
  readItems,
  readParleyUrl,
  readString,
} from './client-kit';

// Drives a running Parley server through one realistic session over the public contract:
// an organization with agents and a viewer, widget visitors chatting with the agents, the
// viewer being refused, and the audit trail that all of it left behind.

const WIDGET_ORIGIN = 'http://localhost:8080';

const AUDIT_PAGE_LIMIT = 10;

interface CorpusMessage {
  id: string;
  text: string;
  intent: string;
  category: string;
}

interface FaqEntry {
  id: string;
  answer: string;
  intent: string;
}

interface Corpus {
  messages: CorpusMessage[];
  answersByIntent: Map<string, FaqEntry[]>;
  allAnswers: FaqEntry[];
}

interface Member {
  id: string;
  email: string;
  name: string;
  role: string;
  password: string;
  token: string;
}

interface Organization {
  slug: string;
  widgetKey: string;
  admin: Member;
  firstAgent: Member;
  secondAgent: Member;
  viewer: Member;
}

interface Tally {
  conversationsOpened: number;
  visitorMessagesSent: number;
  agentMessagesSent: number;
  expectedDeliveries: number;
  deliveriesReceived: number;
  expectedRefusals: number;
  refusals: number;
  failures: string[];
}

interface ExpectedMessage {
  conversationId: string;
  body: string;
  authorType: string;
}

class MessageInbox {
  private readonly received: JsonRecord[] = [];

  private readonly waiters = new Set<{ messageId: string; deliver: (m: JsonRecord) => void }>();

  constructor(
    readonly owner: string,
    socket: Socket,
  ) {
    socket.on('message:new', (payload: unknown) => this.accept(payload));
  }

  waitForMessage(messageId: string, timeoutMs = DEFAULT_WAIT_MS): Promise<JsonRecord> {
    const already = this.received.find((message) => message.id === messageId);
    if (already) {
      return Promise.resolve(already);
    }

    return new Promise((resolve, reject) => {
      const waiter = {
        messageId,
        deliver: (message: JsonRecord) => {
          clearTimeout(timer);
          resolve(message);
        },
      };
      const timer = setTimeout(() => {
        this.waiters.delete(waiter);
        reject(new Error(`${this.owner} got no message:new for ${messageId} in ${timeoutMs} ms`));
      }, timeoutMs);
      this.waiters.add(waiter);
    });
  }

  private accept(payload: unknown): void {
    // The contract says the event carries "the message"; a {message} wrapper is accepted too.
    const message = isRecord(payload) && isRecord(payload.message) ? payload.message : payload;
    if (!isRecord(message)) {
      return;
    }

    this.received.push(message);

    for (const waiter of this.waiters) {
      if (waiter.messageId === message.id) {
        this.waiters.delete(waiter);
        waiter.deliver(message);
      }
    }
  }
}

class DemoRun {
  readonly tally: Tally = {
    conversationsOpened: 0,
    visitorMessagesSent: 0,
    agentMessagesSent: 0,
    expectedDeliveries: 0,
    deliveriesReceived: 0,
    expectedRefusals: 0,
    refusals: 0,
    failures: [],
  };

  private readonly sockets = new Set<Socket>();

  private messageCursor = 0;

  constructor(
    readonly baseUrl: string,
    readonly corpus: Corpus,
  ) {}

  async setUpOrganization(): Promise<Organization> {
    const suffix = randomSuffix();
    const slug = `demo-run-${suffix}`;
    const adminPassword = generateStrongPassword();
    const adminEmail = `admin.${suffix}@example.com`;

    const signup = expectRecord(
      await callApiOrThrow(this.baseUrl, {
        method: 'POST',
        path: '/api/v1/auth/signup',
        body: {
          organizationName: `Demo Run ${suffix}`,
          organizationSlug: slug,
          email: adminEmail,
          password: adminPassword,
          name: 'Demo Admin',
        },
      }),
      'signup response',
    );
    const signedUpUser = expectRecord(signup.user, 'signup response user');
    const admin: Member = {
      id: readString(signedUpUser, 'id', 'signup response user'),
      email: adminEmail,
      name: 'Demo Admin',
      role: 'admin',
      password: adminPassword,
      token: readString(signup, 'accessToken', 'signup response'),
    };
    recordSent(adminEmail, 'Demo Admin');
    report('ok', `signed up organization ${slug} with admin ${adminEmail}`);

    await callApiOrThrow(this.baseUrl, {
      method: 'PATCH',
      path: '/api/v1/organization',
      token: admin.token,
      body: { widget: { allowedOrigins: [WIDGET_ORIGIN] } },
    });

    const organization = expectRecord(
      await callApiOrThrow(this.baseUrl, {
        method: 'GET',
        path: '/api/v1/organization',
        token: admin.token,
      }),
      'organization',
    );
    const widget = expectRecord(organization.widget, 'organization widget');
    const widgetKey = readString(widget, 'key', 'organization widget');
    report('ok', `widget allows ${WIDGET_ORIGIN}, key ${shortId(widgetKey)}`);

    const firstAgent = await this.addMember(admin.token, slug, suffix, 'agent', 'Agent One');
    const secondAgent = await this.addMember(admin.token, slug, suffix, 'agent', 'Agent Two');
    const viewer = await this.addMember(admin.token, slug, suffix, 'viewer', 'Viewer');

    return { slug, widgetKey, admin, firstAgent, secondAgent, viewer };
  }

  async connectMember(member: Member): Promise<{ socket: Socket; inbox: MessageInbox }> {
    const socket = await connectChatSocket(this.baseUrl, member.token);
    this.sockets.add(socket);
    socket.on('auth:expiring', () => report('note', `${member.name} was told its token expires`));

    return { socket, inbox: new MessageInbox(member.name, socket) };
  }

  async runConversation(
    organization: Organization,
    agents: { socket: Socket; inbox: MessageInbox }[],
    conversationNumber: number,
    messagesPerConversation: number,
  ): Promise<string | undefined> {
    const label = `conversation ${conversationNumber}`;
    const firstMessage = this.peekCorpusMessage();

    let visitorToken: string;
    let conversationId: string;
    try {
      const session = expectRecord(
        await callApiOrThrow(this.baseUrl, {
          method: 'POST',
          path: '/api/v1/widget/sessions',
          origin: WIDGET_ORIGIN,
          body: { widgetKey: organization.widgetKey },
        }),
        'widget session',
      );
      visitorToken = readString(session, 'visitorToken', 'widget session');
      const contactId = readString(session, 'contactId', 'widget session');

      const conversation = expectRecord(
        await callApiOrThrow(this.baseUrl, {
          method: 'POST',
          path: '/api/v1/widget/conversations',
          origin: WIDGET_ORIGIN,
          token: visitorToken,
          body: {
            subject: recordSent(
              `Help with ${firstMessage.category.toLowerCase().replace(/_/g, ' ')}`,
            )[0],
          },
        }),
        'widget conversation',
      );
      conversationId = readString(conversation, 'id', 'widget conversation');
      this.tally.conversationsOpened += 1;
      report('ok', `${label}: visitor ${shortId(contactId)} opened ${conversationId}`);
    } catch (error) {
      this.fail(`${label}: could not open a widget conversation: ${describeError(error)}`);

      return undefined;
    }

    let visitor: { socket: Socket; inbox: MessageInbox };
    try {
      const socket = await connectChatSocket(this.baseUrl, visitorToken);
      this.sockets.add(socket);
      visitor = { socket, inbox: new MessageInbox(`visitor of ${label}`, socket) };
    } catch (error) {
      this.fail(`${label}: visitor socket: ${describeError(error)}`);

      return conversationId;
    }

    const participants = [
      { name: 'visitor', socket: visitor.socket },
      { name: organization.firstAgent.name, socket: agents[0].socket },
      { name: organization.secondAgent.name, socket: agents[1].socket },
    ];
    for (const participant of participants) {
      const joined = await this.joinConversation(participant.socket, conversationId);
      if (!joined.ok) {
        this.fail(`${label}: ${participant.name} could not join: ${joined.reason}`);

        return conversationId;
      }
    }
    report('ok', `${label}: visitor and both agents joined`);

    for (let index = 0; index < messagesPerConversation; index += 1) {
      const question = this.nextCorpusMessage();
      await this.exchangeMessage(label, conversationId, visitor, agents, question);
    }

    visitor.socket.close();
    this.sockets.delete(visitor.socket);

    return conversationId;
  }

  async checkViewerRefusals(viewer: Member, conversationId: string): Promise<void> {
    this.tally.expectedRefusals += 2;

    const restAttempt = await callApi(this.baseUrl, {
      method: 'POST',
      path: `/api/v1/conversations/${conversationId}/messages`,
      token: viewer.token,
      body: { body: 'A viewer should not be able to post this.' },
    });
    const problemCode = isRecord(restAttempt.body) ? restAttempt.body.code : undefined;
    if (
      restAttempt.status === 403 &&
      restAttempt.contentType.startsWith('application/problem+json') &&
      typeof problemCode === 'string'
    ) {
      this.tally.refusals += 1;
      report('ok', `viewer refused over REST: ${describeResponse(restAttempt)}`);
    } else {
      this.fail(
        `viewer REST post: expected 403 application/problem+json with a code, got ` +
          `${restAttempt.contentType || 'no content type'} ${describeResponse(restAttempt)}`,
      );
    }

    let viewerSocket: Socket;
    try {
      viewerSocket = (await this.connectMember(viewer)).socket;
    } catch (error) {
      this.fail(`viewer socket: ${describeError(error)}`);

      return;
    }

    // A viewer may read, so joining may succeed; the refusal that matters is on sending.
    const joined = await this.joinConversation(viewerSocket, conversationId);
    report('note', `viewer join: ${joined.ok ? 'ok' : joined.reason}`);

    try {
      const ack = await emitWithAck(viewerSocket, 'message:send', {
        conversationId,
        body: 'A viewer should not be able to send this either.',
        clientMessageId: randomUUID(),
      });
      if (!ack.ok && ack.code.length > 0) {
        this.tally.refusals += 1;
        report('ok', `viewer refused over the socket: ${describeAck(ack)}`);
      } else if (!ack.ok) {
        this.fail(`viewer socket send was refused without an error code: ${preview(ack.payload)}`);
      } else {
        this.fail('viewer socket send was accepted');
      }
    } catch (error) {
      this.fail(`viewer socket send: ${describeError(error)}`);
    }
  }

  async printAuditTrail(admin: Member): Promise<void> {
    const events: JsonRecord[] = [];
    let cursor: string | undefined;

    try {
      for (let page = 0; page < AUDIT_PAGE_LIMIT; page += 1) {
        const query = cursor ? `?cursor=${encodeURIComponent(cursor)}` : '';
        const body = expectRecord(
          await callApiOrThrow(this.baseUrl, {
            method: 'GET',
            path: `/api/v1/audit/events${query}`,
            token: admin.token,
          }),
          'audit events',
        );
        for (const item of readItems(body, 'audit events')) {
          events.push(expectRecord(item, 'audit event'));
        }

        const nextCursor = typeof body.nextCursor === 'string' ? body.nextCursor : undefined;
        if (!nextCursor || nextCursor === cursor) {
          break;
        }
        cursor = nextCursor;
      }
    } catch (error) {
      this.fail(`audit events: ${describeError(error)}`);
    }

    console.log(`\naudit trail (${events.length} events)`);
    for (const event of events) {
      console.log(`  ${formatAuditEvent(event)}`);
    }

    const verification = await callApi(this.baseUrl, {
      method: 'GET',
      path: '/api/v1/audit/verify',
      token: admin.token,
    });
    if (verification.status !== 200 || !isRecord(verification.body)) {
      report('note', `audit verify unavailable: ${describeResponse(verification)}`);
    } else if (verification.body.valid === false) {
      this.fail(`audit chain reported invalid: ${preview(verification.body)}`);
    } else {
      report('ok', `audit chain verified: ${preview(verification.body)}`);
    }
  }

  closeAllSockets(): void {
    for (const socket of this.sockets) {
      socket.close();
    }
    this.sockets.clear();
  }

  fail(message: string): void {
    this.tally.failures.push(message);
    report('FAIL', message);
  }

  private async addMember(
    adminToken: string,
    slug: string,
    suffix: string,
    role: string,
    name: string,
  ): Promise<Member> {
    const email = `${name.toLowerCase().replace(/\s+/g, '.')}.${suffix}@example.com`;
    const password = generateStrongPassword();

    const created = expectRecord(
      await callApiOrThrow(this.baseUrl, {
        method: 'POST',
        path: '/api/v1/users',
        token: adminToken,
        body: { email, name, role, password },
      }),
      `created ${role}`,
    );

    const login = expectRecord(
      await callApiOrThrow(this.baseUrl, {
        method: 'POST',
        path: '/api/v1/auth/login',
        body: { organizationSlug: slug, email, password },
      }),
      `${role} login`,
    );
    recordSent(email, name);
    report('ok', `added ${role} ${email} and logged in`);

    return {
      id: readString(created, 'id', `created ${role}`),
      email,
      name,
      role,
      password,
      token: readString(login, 'accessToken', `${role} login`),
    };
  }

  private async joinConversation(
    socket: Socket,
    conversationId: string,
  ): Promise<{ ok: true } | { ok: false; reason: string }> {
    try {
      const ack = await emitWithAck(socket, 'conversation:join', { conversationId });

      return ack.ok ? { ok: true } : { ok: false, reason: describeAck(ack) };
    } catch (error) {
      return { ok: false, reason: describeError(error) };
    }
  }

  private async exchangeMessage(
    label: string,
    conversationId: string,
    visitor: { socket: Socket; inbox: MessageInbox },
    agents: { socket: Socket; inbox: MessageInbox }[],
    question: CorpusMessage,
  ): Promise<void> {
    recordSent(question.text);
    const sentQuestion = await this.sendMessage(`${label}: visitor`, visitor.socket, {
      conversationId,
      body: question.text,
      authorType: 'contact',
    });
    if (!sentQuestion) {
      return;
    }
    this.tally.visitorMessagesSent += 1;

    const questionDeliveries = await Promise.all(
      agents.map((agent) =>
        this.expectDelivery(label, agent.inbox, sentQuestion, {
          conversationId,
          body: question.text,
          authorType: 'contact',
        }),
      ),
    );

    const answer = this.pickAnswer(question.intent);
    recordSent(answer.answer);
    const sentAnswer = await this.sendMessage(
      `${label}: ${agents[0].inbox.owner}`,
      agents[0].socket,
      {
        conversationId,
        body: answer.answer,
        authorType: 'agent',
      },
    );
    if (!sentAnswer) {
      return;
    }
    this.tally.agentMessagesSent += 1;

    const answerDelivered = await this.expectDelivery(label, visitor.inbox, sentAnswer, {
      conversationId,
      body: answer.answer,
      authorType: 'agent',
    });

    if (answerDelivered && questionDeliveries.every((delivered) => delivered)) {
      report('ok', `${label}: "${truncate(question.text, 50)}" answered with ${answer.id}`);
    }
  }

  private async sendMessage(
    sender: string,
    socket: Socket,
    expected: ExpectedMessage,
  ): Promise<string | undefined> {
    try {
      const ack = await emitWithAck(socket, 'message:send', {
        conversationId: expected.conversationId,
        body: expected.body,
        clientMessageId: randomUUID(),
      });
      if (!ack.ok) {
        this.fail(`${sender} message:send ${describeAck(ack)}`);

        return undefined;
      }

      const stored = expectRecord(ack.payload.message, `${sender} message:send ack message`);
      const mismatches = compareMessage(stored, expected);
      if (mismatches.length > 0) {
        this.fail(`${sender} ack message differs: ${mismatches.join('; ')}`);
      }

      return readString(stored, 'id', `${sender} message:send ack message`);
    } catch (error) {
      this.fail(`${sender} message:send: ${describeError(error)}`);

      return undefined;
    }
  }

  private async expectDelivery(
    label: string,
    inbox: MessageInbox,
    messageId: string,
    expected: ExpectedMessage,
  ): Promise<boolean> {
    this.tally.expectedDeliveries += 1;

    try {
      const delivered = await inbox.waitForMessage(messageId);
      const mismatches = compareMessage(delivered, expected);
      if (mismatches.length > 0) {
        this.fail(`${label}: message:new to ${inbox.owner} differs: ${mismatches.join('; ')}`);

        return false;
      }
      this.tally.deliveriesReceived += 1;

      return true;
    } catch (error) {
      this.fail(`${label}: ${describeError(error)}`);

      return false;
    }
  }

  private peekCorpusMessage(): CorpusMessage {
    return this.corpus.messages[this.messageCursor % this.corpus.messages.length];
  }

  private nextCorpusMessage(): CorpusMessage {
    const message = this.peekCorpusMessage();
    this.messageCursor += 1;

    return message;
  }

  private pickAnswer(intent: string): FaqEntry {
    const matching = this.corpus.answersByIntent.get(intent);
    const candidates = matching && matching.length > 0 ? matching : this.corpus.allAnswers;

    return candidates[randomInt(candidates.length)];
  }
}

async function main(): Promise<number> {
  const startedAt = performance.now();
  const baseUrl = readParleyUrl();
  const conversationCount = readIntegerOption(process.argv.slice(2), 'conversations', 3);
  const messagesPerConversation = readIntegerOption(process.argv.slice(2), 'messages', 3);
  const corpus = loadCorpus();
  const run = new DemoRun(baseUrl, corpus);

  // Every individual wait is bounded; this guard only catches a bug in that bookkeeping.
  const worstCaseMs = 60_000 + conversationCount * (40_000 + messagesPerConversation * 45_000);
  const watchdog = setTimeout(() => {
    console.error(`demo: still running after ${worstCaseMs} ms, giving up`);
    run.closeAllSockets();
    process.exit(1);
  }, worstCaseMs);
  watchdog.unref();

  console.log(
    `Parley demo against ${baseUrl}: ${conversationCount} conversations x ` +
      `${messagesPerConversation} messages, corpus of ${corpus.messages.length} messages\n`,
  );

  try {
    let organization: Organization;
    let agents: { socket: Socket; inbox: MessageInbox }[];
    try {
      organization = await run.setUpOrganization();
      agents = [
        await run.connectMember(organization.firstAgent),
        await run.connectMember(organization.secondAgent),
      ];
      report('ok', 'both agents connected to /chat');
    } catch (error) {
      console.error(`\ndemo FAILED during setup: ${describeError(error)}`);

      return 1;
    }

    let lastConversationId: string | undefined;
    for (let number = 1; number <= conversationCount; number += 1) {
      const conversationId = await run.runConversation(
        organization,
        agents,
        number,
        messagesPerConversation,
      );
      lastConversationId = conversationId ?? lastConversationId;
    }

    if (lastConversationId) {
      await run.checkViewerRefusals(organization.viewer, lastConversationId);
    } else {
      run.fail('no conversation was opened, so the viewer refusals could not be checked');
    }

    await run.printAuditTrail(organization.admin);
  } finally {
    run.closeAllSockets();
  }

  const recordFile = process.env.DEMO_RECORD_FILE;
  if (recordFile) {
    writeFileSync(recordFile, JSON.stringify([...sentValues]));
  }

  return printSummary(run.tally, conversationCount, performance.now() - startedAt);
}

/**
 * Every confidential value the run sent (names, emails, subjects, message texts). With
 * DEMO_RECORD_FILE set they are written there at the end, so a test can search the database
 * for any of them in clear.
 */
const sentValues = new Set<string>();

function recordSent(...values: string[]): string[] {
  for (const value of values) {
    sentValues.add(value);
  }

  return values;
}

function printSummary(tally: Tally, conversationCount: number, elapsedMs: number): number {
  const sent = tally.visitorMessagesSent + tally.agentMessagesSent;

  console.log('\nsummary');
  console.log(`  conversations      ${tally.conversationsOpened}/${conversationCount}`);
  console.log(
    `  messages sent      ${sent} (${tally.visitorMessagesSent} by visitors, ` +
      `${tally.agentMessagesSent} by agents)`,
  );
  console.log(
    `  messages received  ${tally.deliveriesReceived}/${tally.expectedDeliveries} expected deliveries`,
  );
  console.log(`  refusals           ${tally.refusals}/${tally.expectedRefusals} expected`);
  console.log(`  failures           ${tally.failures.length}`);
  console.log(`  elapsed            ${(elapsedMs / 1000).toFixed(1)} s`);

  const passed =
    tally.failures.length === 0 &&
    tally.conversationsOpened === conversationCount &&
    tally.deliveriesReceived === tally.expectedDeliveries &&
    tally.refusals === tally.expectedRefusals;
  if (passed) {
    console.log('\ndemo passed: every message was delivered and every refusal was refused');

    return 0;
  }

  console.error(`\ndemo FAILED with ${tally.failures.length} failures:`);
  for (const failure of tally.failures) {
    console.error(`  - ${failure}`);
  }

  return 1;
}

function loadCorpus(): Corpus {
  const messagesPath = findUpwards(__dirname, 'data/support-corpus/messages.jsonl');
  const faqPath = `${dirname(messagesPath)}/faq.jsonl`;

  const messages = readJsonLines(messagesPath).map((row, index) => {
    const context = `${messagesPath} line ${index + 1}`;

    return {
      id: readString(row, 'id', context),
      text: readString(row, 'text', context),
      intent: readString(row, 'intent', context),
      category: readString(row, 'category', context),
    };
  });
  const allAnswers = readJsonLines(faqPath).map((row, index) => {
    const context = `${faqPath} line ${index + 1}`;

    return {
      id: readString(row, 'id', context),
      answer: readString(row, 'answer', context),
      intent: readString(row, 'intent', context),
    };
  });
  if (messages.length === 0 || allAnswers.length === 0) {
    throw new Error(`the support corpus next to ${messagesPath} is empty`);
  }

  const answersByIntent = new Map<string, FaqEntry[]>();
  for (const entry of allAnswers) {
    const sameIntent = answersByIntent.get(entry.intent) ?? [];
    sameIntent.push(entry);
    answersByIntent.set(entry.intent, sameIntent);
  }

  return { messages: shuffle(messages), answersByIntent, allAnswers };
}

function readJsonLines(path: string): JsonRecord[] {
  return readFileSync(path, 'utf8')
    .split('\n')
    .filter((line) => line.trim().length > 0)
    .map((line, index) => expectRecord(JSON.parse(line), `${path} line ${index + 1}`));
}

function shuffle<Item>(items: Item[]): Item[] {
  const shuffled = [...items];

  for (let index = shuffled.length - 1; index > 0; index -= 1) {
    const other = randomInt(index + 1);
    [shuffled[index], shuffled[other]] = [shuffled[other], shuffled[index]];
  }

  return shuffled;
}

function compareMessage(message: JsonRecord, expected: ExpectedMessage): string[] {
  const mismatches: string[] = [];

  if (message.conversationId !== expected.conversationId) {
    mismatches.push(`conversationId ${preview(message.conversationId)}`);
  }
  if (message.authorType !== expected.authorType) {
    mismatches.push(`authorType ${preview(message.authorType)}, expected ${expected.authorType}`);
  }
  if (message.body !== expected.body) {
    mismatches.push(`body ${preview(message.body)}`);
  }

  return mismatches;
}

function formatAuditEvent(event: JsonRecord): string {
  const occurredAt = typeof event.occurredAt === 'string' ? event.occurredAt : '?';
  const action = typeof event.action === 'string' ? event.action : '?';
  const actor = `${String(event.actorType ?? '?')}:${shortId(event.actorId)}`;
  const target = `${String(event.targetType ?? '?')}:${shortId(event.targetId)}`;

  return `${occurredAt}  ${action.padEnd(28)} ${actor.padEnd(20)} -> ${target}`;
}

function shortId(value: unknown): string {
  if (typeof value !== 'string' || value.length === 0) {
    return '-';
  }

  return value.length > 8 ? value.slice(0, 8) : value;
}

function truncate(text: string, length: number): string {
  return text.length > length ? `${text.slice(0, length - 3)}...` : text;
}

function describeError(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

function report(status: 'ok' | 'note' | 'FAIL', message: string): void {
  const line = `${status.padEnd(4)} ${message}`;

  if (status === 'FAIL') {
    console.error(line);
  } else {
    console.log(line);
  }
}

// process.exit rather than exitCode: idle keep-alive connections must not hold the process open.
main().then(
  (exitCode) => process.exit(exitCode),
  (error: unknown) => {
    console.error(`demo FAILED: ${describeError(error)}`);
    process.exit(1);
  },
);
