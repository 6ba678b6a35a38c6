import { randomBytes } from 'node:crypto';
import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  readdirSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { Logger } from '@nestjs/common';

import { addMember, login, signupOrganization } from './factories';
import { describeLeaks, scanRunFolder } from './jest/leak-scan';
import { TestServer, expectNoSecretsInLogs, startServer } from './support';
import { RUN_DIR_VARIABLE } from './support/run-folder';

/**
 * Drives every credential-carrying flow at the most verbose log level, then reads everything
 * the server wrote: no password, token, Authorization value or member detail may be in it.
 */
describe('logs', () => {
  let server: TestServer;
  const confidential: string[] = [];

  beforeAll(async () => {
    server = await startServer({ env: { LOG_LEVEL: 'trace' } });

    const organization = await signupOrganization(server.api, {
      name: `Ada ${randomBytes(4).toString('hex')}`,
    });
    const agent = await addMember(server.api, organization, 'agent', {
      name: `Grace ${randomBytes(4).toString('hex')}`,
    });
    confidential.push(organization.admin.email, organization.admin.name, agent.email, agent.name);

    const api = server.api;
    const token = organization.admin.tokens.accessToken;
    await api.post('/api/v1/auth/login', {
      organizationSlug: organization.slug,
      email: agent.email,
      password: `${agent.password}x`,
    });
    await api.post('/api/v1/auth/login', {
      organizationSlug: organization.slug,
      email: `nobody-${agent.email}`,
      password: agent.password,
    });
    const pair = await login(api, organization.slug, agent.email, agent.password);
    const rotated = await api.post('/api/v1/auth/refresh', { refreshToken: pair.refreshToken });
    await api.post('/api/v1/auth/refresh', { refreshToken: pair.refreshToken });
    await api.get('/api/v1/me', { token: rotated.body.accessToken });
    await api.get(`/api/v1/me?token=${token}`, { token });
    await api.get('/api/v1/me', {
      headers: {
        authorization: `Basic ${Buffer.from(`admin:${agent.password}`).toString('base64')}`,
      },
    });
    await api.get('/api/v1/me', { headers: { authorization: `Bearer ${token}x` } });
    await api.get('/api/v1/me', { headers: { cookie: `session=${token}` }, token });
    await api.post(
      '/api/v1/users',
      { email: agent.email, name: agent.name, role: 'agent', password: agent.password },
      { token },
    );
    await api.request('POST', '/api/v1/users', {
      token,
      rawBody: `{"password":"${agent.password}",`,
    });
    await api.post('/api/v1/auth/logout', undefined, { token });
    server.api.remember(Buffer.from(`admin:${agent.password}`).toString('base64'));
    new Logger('LogsSpec').warn(
      {
        import: { rows: [{ contact: { profile: { email: agent.email } } }] },
        session: { tokens: { refreshToken: pair.refreshToken } },
      },
      'nested values',
    );
  });

  afterAll(async () => {
    await server?.close();
  });

  it('writes one JSON object per line', () => {
    const entries = server.logs.entries();

    expect(entries.length).toBeGreaterThan(20);
    expect(entries.filter((entry) => 'raw' in entry)).toEqual([]);
  });

  it('logs each request with its request id and status, and without headers', () => {
    const completed = server.logs
      .entries()
      .filter((entry) => entry.message === 'request completed');

    expect(completed.length).toBeGreaterThan(10);
    for (const entry of completed) {
      expect(entry.requestId).toEqual(expect.any(String));
      expect(entry.req).not.toHaveProperty('headers');
      expect(entry.req).toEqual(expect.objectContaining({ url: expect.not.stringContaining('?') }));
      expect(entry.res).toEqual({ statusCode: expect.any(Number) });
    }
  });

  it('contains no password, no token and no Authorization value', () => {
    expectNoSecretsInLogs(server);
  });

  it('contains no member email or name', () => {
    const text = server.logs.text();

    expect(confidential.filter((value) => text.includes(value))).toEqual([]);
  });

  it('redacts marked and credential values nested deep in what the application logs', () => {
    const entry = server.logs.entries().find((line) => line.message === 'nested values');

    expect(entry).toEqual(
      expect.objectContaining({
        context: 'LogsSpec',
        import: { rows: [{ contact: { profile: { email: '[redacted]' } } }] },
        session: { tokens: { refreshToken: '[redacted]' } },
      }),
    );
  });

  it('keeps every line it logged and every value it sent for the whole-run check', () => {
    const runDirectory = process.env[RUN_DIR_VARIABLE] as string;
    const ours = (folder: string) =>
      readdirSync(join(runDirectory, folder))
        .filter((name) => name.startsWith('logs.e2e-spec.ts.'))
        .map((name) => readFileSync(join(runDirectory, folder, name), 'utf8'));

    expect(existsSync(runDirectory)).toBe(true);
    expect(ours('logs').join('')).toBe(server.logs.text());
    const sent = ours('values').join('');
    const [adminEmail, , agentEmail] = confidential;
    expect(sent).toContain(`"field":"email","via":"POST /api/v1/auth/signup"`);
    expect(sent).toContain(JSON.stringify(adminEmail));
    expect(sent).toContain(JSON.stringify(agentEmail));
  });

  it('names the field, sender and log line of a leaked value, and finds short ones as words', () => {
    const run = mkdtempSync(join(tmpdir(), 'parley-leak-scan-'));
    try {
      mkdirSync(join(run, 'values'));
      mkdirSync(join(run, 'logs'));
      const sent = [
        {
          field: 'email',
          via: 'POST /api/v1/contacts',
          file: 'test/a.e2e-spec.ts',
          value: 'ada@example.test',
        },
        {
          field: 'body',
          via: 'socket message:send',
          file: 'test/b.e2e-spec.ts',
          value: 'say "hi"\nthen',
        },
        {
          field: 'name',
          via: 'POST /api/v1/users',
          file: 'test/c.e2e-spec.ts',
          value: 'Never Logged',
        },
        {
          field: 'mfaCode',
          via: 'POST /api/v1/auth/login',
          file: 'test/d.e2e-spec.ts',
          value: '000000',
        },
        {
          field: 'subject',
          via: 'POST /api/v1/conversations',
          file: 'test/e.e2e-spec.ts',
          value: 'member',
        },
        {
          field: 'subject',
          via: 'POST /api/v1/conversations',
          file: 'test/e.e2e-spec.ts',
          value: 'Refund',
        },
      ];
      writeFileSync(join(run, 'values', 'a.jsonl'), sent.map((v) => JSON.stringify(v)).join('\n'));
      writeFileSync(
        join(run, 'logs', 'x.jsonl'),
        [
          JSON.stringify({ message: 'fine' }),
          JSON.stringify({ message: 'welcome ada@example.test' }),
          JSON.stringify({ note: 'say "hi"\nthen' }),
          JSON.stringify({ message: 'again ada@example.test' }),
          JSON.stringify({ time: 1764893000000, code: 'assignee_not_member', note: 'Refunds' }),
          JSON.stringify({ message: 'subject: Refund' }),
        ].join('\n'),
      );

      const result = scanRunFolder(run);
      const message = describeLeaks(run, result) ?? '';

      expect(result).toEqual(expect.objectContaining({ values: 6, logFiles: 1, logLines: 6 }));
      expect(
        result.leaks.map((leak) => [leak.sent.field, leak.logFile, leak.line, leak.lines]),
      ).toEqual([
        ['email', join('logs', 'x.jsonl'), 2, 2],
        ['body', join('logs', 'x.jsonl'), 3, 1],
        ['subject', join('logs', 'x.jsonl'), 6, 1],
      ]);
      expect(message).toContain('email sent by test/a.e2e-spec.ts (POST /api/v1/contacts)');
      expect(message).toContain(`${join('logs', 'x.jsonl')} line 2 (and 1 more lines)`);
      expect(message).not.toContain('ada@example.test');
      expect(message).not.toContain('Never');
    } finally {
      rmSync(run, { recursive: true, force: true });
    }
  });
});
