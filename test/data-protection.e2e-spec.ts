import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';

import { Client } from 'pg';

import {
  MembersByRole,
  SignedUpOrganization,
  addMemberOfEachRole,
  signupOrganization,
} from './factories';
import { TestServer, startServer, testDatabaseUrl } from './support';

const run = promisify(execFile);

interface DataMapField {
  name: string;
  class: string;
  purpose: string;
  retention: string;
  encrypted: boolean;
  protection: string;
  keyScope: string | null;
}

interface DataMapEntity {
  entity: string;
  purpose: string;
  retention: string;
  fields: DataMapField[];
}

/** Every row of every table in the data schemas, as text, read as the database owner. */
async function everyRowAsText(owner: Client): Promise<string[]> {
  const tables = await owner.query<{ name: string }>(
    `select format('%I.%I', schemaname, tablename) as name from pg_tables
      where schemaname in ('public', 'keyring') order by 1`,
  );
  const rows: string[] = [];
  for (const { name } of tables.rows) {
    const result = await owner.query<{ row: string }>(
      `select row_to_json(t)::text as row from ${name} t`,
    );
    rows.push(...result.rows.map((row) => row.row));
  }

  return rows;
}

describe('data protection: classification, data map and the demo run', () => {
  let server: TestServer;
  let owner: Client;
  let organization: SignedUpOrganization;
  let members: MembersByRole;

  beforeAll(async () => {
    server = await startServer();
    owner = new Client({ connectionString: testDatabaseUrl() });
    await owner.connect();
    organization = await signupOrganization(server.api);
    members = await addMemberOfEachRole(server.api, organization);
  });

  afterAll(async () => {
    await owner?.end();
    await server?.close();
  });

  async function dataMap(): Promise<DataMapEntity[]> {
    const response = await server.api.get('/api/v1/compliance/data-map', {
      token: organization.admin.tokens.accessToken,
    });
    expect(response.status).toBe(200);

    return (response.body as { entities: DataMapEntity[] }).entities;
  }

  it('lists every entity and field with its class, purpose, retention and protection', async () => {
    const entities = await dataMap();
    const byName = new Map(entities.map((entity) => [entity.entity, entity]));

    const contacts = byName.get('public.contacts');
    expect(contacts?.purpose).toEqual(expect.any(String));
    expect(contacts?.fields.find((field) => field.name === 'email')).toEqual({
      name: 'email',
      class: 'confidential',
      purpose: expect.any(String),
      retention: expect.any(String),
      encrypted: true,
      protection: 'sealed',
      keyScope: 'contact',
    });
    expect(
      byName.get('public.messages')?.fields.find((field) => field.name === 'body'),
    ).toMatchObject({ class: 'confidential', encrypted: true, keyScope: 'contact' });
    expect(
      byName.get('public.users')?.fields.find((field) => field.name === 'password_hash'),
    ).toMatchObject({ class: 'restricted', encrypted: false, protection: 'hashed' });
    expect(
      byName.get('public.mfa_totp_factors')?.fields.find((field) => field.name === 'secret'),
    ).toMatchObject({ class: 'restricted', encrypted: true, keyScope: 'organization' });
    for (const entity of entities) {
      expect(entity.purpose.length).toBeGreaterThan(10);
      expect(entity.retention.length).toBeGreaterThan(5);
      for (const field of entity.fields) {
        // A confidential or restricted field is never kept as is.
        if (field.class === 'confidential' || field.class === 'restricted') {
          expect({
            entity: entity.entity,
            field: field.name,
            protection: field.protection,
          }).not.toEqual(expect.objectContaining({ protection: 'none' }));
        }
      }
    }
  });

  it('covers every column of every table in the database, and nothing that is not there', async () => {
    const entities = await dataMap();
    const mapped = new Set(
      entities.flatMap((entity) => entity.fields.map((field) => `${entity.entity}.${field.name}`)),
    );
    const columns = await owner.query<{ name: string }>(
      `select table_schema || '.' || table_name || '.' || column_name as name
         from information_schema.columns
        where table_schema in ('public', 'keyring')
          and table_name in (select tablename from pg_tables where schemaname in ('public', 'keyring'))`,
    );
    const stored = new Set(columns.rows.map((row) => row.name));

    expect([...stored].filter((name) => !mapped.has(name)).sort()).toEqual([]);
    expect([...mapped].filter((name) => !stored.has(name)).sort()).toEqual([]);
    expect(stored.size).toBeGreaterThan(100);
  });

  it('has a database constraint refusing clear values on exactly the sealed fields', async () => {
    const entities = await dataMap();
    const sealed = entities
      .flatMap((entity) =>
        entity.fields
          .filter((field) => field.protection === 'sealed')
          .map((field) => `${entity.entity.split('.')[1]}.${field.name}`),
      )
      .sort();
    const constraints = await owner.query<{ table: string; name: string; definition: string }>(
      `select conrelid::regclass::text as table, conname as name, pg_get_constraintdef(oid) as definition
         from pg_constraint where contype = 'c' and conname like '%\\_sealed'`,
    );
    const constrained = constraints.rows
      .filter((row) =>
        /\(\w+ ~~ 'pv1\.[-_%.]+'::text\) AND \(\w+ !~ '\[\^-\._A-Za-z0-9\]'/.test(row.definition),
      )
      .map((row) => `${row.table}.${row.name.slice(row.table.length + 1, -'_sealed'.length)}`)
      .sort();

    expect(sealed.length).toBeGreaterThanOrEqual(8);
    expect(constrained).toEqual(sealed);
  });

  it('lets the runtime role re-seal every sealed column, so key rotation reaches every table', async () => {
    const entities = await dataMap();
    const sealed = entities.flatMap((entity) =>
      entity.fields
        .filter((field) => field.protection === 'sealed')
        .map((field) => ({ table: entity.entity, column: field.name })),
    );
    const missing: string[] = [];
    for (const { table, column } of sealed) {
      const result = await owner.query<{ allowed: boolean }>(
        `select has_column_privilege('parley_app', $1, $2, 'SELECT')
            and has_column_privilege('parley_app', $1, $2, 'UPDATE') as allowed`,
        [table, column],
      );
      if (!result.rows[0].allowed) {
        missing.push(`${table}.${column}`);
      }
    }

    expect(sealed.length).toBeGreaterThanOrEqual(8);
    expect(missing).toEqual([]);
  });

  it.each(['manager', 'agent', 'viewer'] as const)('refuses the data map to a %s', async (role) => {
    const response = await server.api.get('/api/v1/compliance/data-map', {
      token: members[role].tokens.accessToken,
    });

    expect(response.status).toBe(403);
    expect(response.body).toMatchObject({ code: 'forbidden' });
  });

  it('leaves none of the names, emails, subjects or messages of a demo run in clear in any table', async () => {
    const folder = mkdtempSync(join(tmpdir(), 'parley-demo-'));
    const recordFile = join(folder, 'sent.json');
    try {
      const demo = await run(process.execPath, ['-r', 'ts-node/register', 'scripts/demo.ts'], {
        cwd: join(__dirname, '..'),
        env: {
          ...process.env,
          PARLEY_URL: server.baseUrl,
          DEMO_RECORD_FILE: recordFile,
          TS_NODE_TRANSPILE_ONLY: '1',
        },
        timeout: 120_000,
      });
      expect(demo.stdout).toContain('deliveries');
      // Short generic names ("Viewer") also occur in role columns; they prove nothing either way.
      const sent = (JSON.parse(readFileSync(recordFile, 'utf8')) as string[]).filter(
        (value) => value.length >= 8,
      );
      // Emails, a subject and at least one message per conversation.
      expect(sent.length).toBeGreaterThan(10);

      const rows = (await everyRowAsText(owner)).join('\n').toLowerCase();
      const found = sent.filter((value) =>
        rows.includes(JSON.stringify(value).slice(1, -1).toLowerCase()),
      );

      expect(found).toEqual([]);
      // The scan reads real rows: the demo organization's messages are there, sealed.
      const sealedBodies = await owner.query(
        `select count(*)::int as count from messages where body like 'pv1.%'`,
      );
      expect(sealedBodies.rows[0].count).toBeGreaterThan(5);
    } finally {
      rmSync(folder, { recursive: true, force: true });
    }
  }, 150_000);
});
