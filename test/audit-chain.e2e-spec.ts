import { execFile } from 'node:child_process';
import { generateKeyPairSync } from 'node:crypto';
import { join } from 'node:path';
import { promisify } from 'node:util';

import { Client } from 'pg';

import { Checkpoint, verifyExport } from '@parley/audit';
import { TenantTransactions } from '@parley/database';
import { Alerts, SecurityAlert } from '@parley/security';

import {
  MembersByRole,
  SignedUpOrganization,
  addMemberOfEachRole,
  signupOrganization,
} from './factories';
import { TestServer, startServer, testDatabaseUrl } from './support';

const run = promisify(execFile);

interface Verification {
  valid: boolean;
  entries: number;
  head: { seq: number; hash: string } | null;
  broken?: { seq: number; reason: string; detail: string };
  checkpoints: { checked: number };
}

describe('the tamper-evident audit chain', () => {
  let server: TestServer;
  let owner: Client;

  const raised: SecurityAlert[] = [];

  beforeAll(async () => {
    server = await startServer();
    owner = new Client({ connectionString: testDatabaseUrl() });
    await owner.connect();
    server.app.get(Alerts).addListener({
      name: 'test recorder',
      onAlert: async (alert) => {
        raised.push(alert);
      },
    });
  });

  afterAll(async () => {
    await owner?.end();
    await server?.close();
  });

  /** An organization with a few dozen entries of real activity. */
  async function busyOrganization(): Promise<{
    organization: SignedUpOrganization;
    members: MembersByRole;
  }> {
    const organization = await signupOrganization(server.api);
    const members = await addMemberOfEachRole(server.api, organization);
    for (let index = 0; index < 3; index += 1) {
      const contact = await server.api.post(
        '/api/v1/contacts',
        { email: `chain-${index}-${organization.slug}@example.test`, name: 'Chain Contact' },
        { token: organization.admin.tokens.accessToken },
      );
      expect(contact.status).toBe(201);
    }
    // Entries are linked just after they commit; verifying links whatever is still pending, so
    // every test below tampers with a chain that is complete.
    await verify(organization);

    return { organization, members };
  }

  async function verify(organization: SignedUpOrganization): Promise<Verification> {
    const response = await server.api.get('/api/v1/audit/verify', {
      token: organization.admin.tokens.accessToken,
    });
    expect(response.status).toBe(200);

    return response.body as Verification;
  }

  async function entryCount(organizationId: string): Promise<number> {
    const rows = await owner.query<{ count: number }>(
      'select count(*)::int as count from audit_events where organization_id = $1',
      [organizationId],
    );

    return rows.rows[0].count;
  }

  /** Runs SQL as the owner with every ordinary trigger off, the way an attacker with owner rights would. */
  async function asOwnerWithoutTriggers(sql: string, parameters: unknown[] = []): Promise<void> {
    await owner.query('begin');
    try {
      await owner.query('set local session_replication_role = replica');
      await owner.query(sql, parameters);
      await owner.query('commit');
    } catch (error) {
      await owner.query('rollback');
      throw error;
    }
  }

  /** Re-hashes every entry from `fromSeq` on so the chain is consistent again: a careful rewrite. */
  async function rehashFrom(organizationId: string, fromSeq: number): Promise<void> {
    if (!/^[0-9a-f-]{36}$/.test(organizationId) || !Number.isInteger(fromSeq)) {
      throw new Error('unexpected arguments');
    }
    await asOwnerWithoutTriggers(`
      do $$
      declare
        e audit_events;
        previous bytea;
      begin
        select hash into previous from audit_events
         where organization_id = '${organizationId}' and seq = ${fromSeq - 1};
        for e in select * from audit_events
                  where organization_id = '${organizationId}' and seq >= ${fromSeq} order by seq loop
          e.prev_hash := previous;
          e.hash := sha256(previous || convert_to(parley_audit_canonical(e), 'UTF8'));
          update audit_events set prev_hash = e.prev_hash, hash = e.hash where id = e.id;
          previous := e.hash;
        end loop;
        update audit_chain_heads set hash = previous where organization_id = '${organizationId}';
      end
      $$`);
  }

  it('chains every entry of an organization and verifies the whole chain', async () => {
    const { organization } = await busyOrganization();
    const result = await verify(organization);
    const stored = await entryCount(organization.id);

    expect(stored).toBeGreaterThan(8);
    expect(result).toMatchObject({ valid: true, entries: stored, head: { seq: stored } });
    expect(result.broken).toBeUndefined();
    const sequence = await owner.query<{ seq: string }>(
      'select seq from audit_events where organization_id = $1 order by seq',
      [organization.id],
    );
    expect(sequence.rows.map((row) => Number(row.seq))).toEqual(
      Array.from({ length: stored }, (_, index) => index + 1),
    );
  });

  it('finds an entry edited as the owner at exactly its sequence number', async () => {
    const { organization } = await busyOrganization();
    await asOwnerWithoutTriggers(
      `update audit_events set action = 'auth.login_succeeded' where organization_id = $1 and seq = 5`,
      [organization.id],
    );

    const result = await verify(organization);

    expect(result).toMatchObject({
      valid: false,
      entries: 4,
      broken: { seq: 5, reason: 'altered' },
    });
    // The break is an alert of its own, for the organization, at the highest severity.
    const alerts = server.app.get(Alerts);
    await alerts.whenDispatched();
    expect(raised.filter((alert) => alert.organizationId === organization.id)).toEqual([
      expect.objectContaining({
        rule: 'audit_chain_broken',
        severity: 'critical',
        details: { seq: 5, reason: 'altered' },
      }),
    ]);
  });

  it('finds an entry deleted as the owner at exactly its sequence number', async () => {
    const { organization } = await busyOrganization();
    await asOwnerWithoutTriggers(
      'delete from audit_events where organization_id = $1 and seq = 6',
      [organization.id],
    );

    expect(await verify(organization)).toMatchObject({
      valid: false,
      entries: 5,
      broken: { seq: 6, reason: 'missing' },
    });
  });

  it('finds two entries swapped as the owner at the first of them', async () => {
    const { organization } = await busyOrganization();
    // Through numbers no entry has, since (organization, seq) is unique.
    await asOwnerWithoutTriggers(
      `update audit_events set seq = seq + 1000000 where organization_id = $1 and seq in (3, 4)`,
      [organization.id],
    );
    await asOwnerWithoutTriggers(
      `update audit_events set seq = case seq when 1000003 then 4 else 3 end
        where organization_id = $1 and seq in (1000003, 1000004)`,
      [organization.id],
    );

    expect(await verify(organization)).toMatchObject({
      valid: false,
      entries: 2,
      broken: { seq: 3, reason: 'out_of_order' },
    });
  });

  it('finds the last entries cut off as the owner, where the head says the chain went on', async () => {
    const { organization } = await busyOrganization();
    const stored = await entryCount(organization.id);
    await asOwnerWithoutTriggers(
      'delete from audit_events where organization_id = $1 and seq = $2',
      [organization.id, stored],
    );

    expect(await verify(organization)).toMatchObject({
      valid: false,
      entries: stored - 1,
      broken: { seq: stored, reason: 'missing' },
    });
  });

  it("refuses the runtime role's update, delete and truncate, and the owner's too while the triggers are on", async () => {
    const { organization } = await busyOrganization();
    const transactions = server.app.get(TenantTransactions);
    const before = await owner.query(
      'select * from audit_events where organization_id = $1 order by seq',
      [organization.id],
    );

    for (const sql of [
      `update audit_events set action = 'x.y' where organization_id = '${organization.id}'`,
      `delete from audit_events where organization_id = '${organization.id}'`,
    ]) {
      // The runtime role holds no update or delete grant; the trigger would stop it anyway.
      await expect(
        transactions.run(organization.id, (manager) => manager.query(sql)),
      ).rejects.toThrow(/permission denied|append-only/);
      await expect(owner.query(sql)).rejects.toThrow(/append-only/);
    }
    await expect(
      transactions.run(organization.id, (manager) => manager.query('truncate audit_events')),
    ).rejects.toThrow(/permission denied|append-only/);
    await expect(owner.query('truncate audit_events')).rejects.toThrow(/append-only/);
    await expect(
      transactions.run(organization.id, (manager) =>
        manager.query(`update audit_chain_heads set seq = 0 where organization_id = $1`, [
          organization.id,
        ]),
      ),
    ).rejects.toThrow(/permission denied/);

    const after = await owner.query(
      'select * from audit_events where organization_id = $1 order by seq',
      [organization.id],
    );
    expect(after.rows).toEqual(before.rows);
    expect((await verify(organization)).valid).toBe(true);
  });

  it('keeps one unbroken chain of exactly 2,000 entries when 4 processes append at once', async () => {
    const organization = await signupOrganization(server.api);
    const already = await entryCount(organization.id);
    const worker = join(__dirname, 'support', 'workers', 'audit-append.js');

    await Promise.all(
      [1, 2, 3, 4].map((tag) =>
        run(process.execPath, [worker, testDatabaseUrl(), organization.id, '500', String(tag)], {
          timeout: 120_000,
        }),
      ),
    );

    const appended = await owner.query<{ count: number; workers: number }>(
      `select count(*)::int as count, count(distinct metadata->>'worker')::int as workers
         from audit_events where organization_id = $1 and action = 'test.concurrent_append'`,
      [organization.id],
    );
    expect(appended.rows[0]).toEqual({ count: 2000, workers: 4 });
    const result = await verify(organization);
    expect(result).toMatchObject({
      valid: true,
      entries: already + 2000,
      head: { seq: already + 2000 },
    });
  }, 150_000);

  it('catches a chain rewritten consistently after a checkpoint, even with the stored checkpoints deleted', async () => {
    const { organization } = await busyOrganization();
    const signed = await server.api.post('/api/v1/audit/checkpoints', undefined, {
      token: organization.admin.tokens.accessToken,
    });
    expect(signed.status).toBe(201);
    const kept = signed.body as Checkpoint;
    expect(kept).toMatchObject({ organizationId: organization.id, seq: expect.any(Number) });
    expect(server.logs.text()).toContain(kept.signature);

    // The owner edits entry 4 and re-hashes everything after it: the chain alone is consistent.
    await asOwnerWithoutTriggers(
      `update audit_events set actor_id = null where organization_id = $1 and seq = 4`,
      [organization.id],
    );
    await rehashFrom(organization.id, 4);

    const withStored = await verify(organization);
    expect(withStored).toMatchObject({
      valid: false,
      broken: { seq: kept.seq, reason: 'rewritten' },
    });

    // Deleting the stored checkpoints hides the rewrite from the server's own check, but not
    // from a verifier who kept a checkpoint from the log stream.
    await asOwnerWithoutTriggers('delete from audit_checkpoints where organization_id = $1', [
      organization.id,
    ]);
    expect(await verify(organization)).toMatchObject({ valid: true, checkpoints: { checked: 0 } });
    const { AuditCheckpoints } = await import('@parley/audit');
    const check = await server.app.get(AuditCheckpoints).check(organization.id, [kept]);
    expect(check.failed?.reason).toMatch(/no longer holds the entry/);
  });

  it('refuses a forged checkpoint whose signature is not by a published key', async () => {
    const { organization } = await busyOrganization();
    const signed = await server.api.post('/api/v1/audit/checkpoints', undefined, {
      token: organization.admin.tokens.accessToken,
    });
    const forged = { ...(signed.body as Checkpoint), seq: (signed.body as Checkpoint).seq - 1 };
    const { AuditCheckpoints } = await import('@parley/audit');

    const check = await server.app.get(AuditCheckpoints).check(organization.id, [forged]);

    expect(check.failed?.reason).toBe('its signature does not verify');
  });

  it('exports NDJSON that verifies with the published public key alone, and not once altered', async () => {
    const { organization } = await busyOrganization();
    const exported = await server.api.get('/api/v1/audit/export', {
      token: organization.admin.tokens.accessToken,
    });
    expect(exported.status).toBe(200);
    expect(exported.headers.get('content-type')).toMatch(/^application\/x-ndjson/);
    const keys = await server.api.get('/.well-known/parley-audit-keys.json');
    expect(keys.status).toBe(200);

    const result = verifyExport(exported.text, keys.body);
    expect(result).toMatchObject({
      valid: true,
      organizationId: organization.id,
      fromSeq: 1,
      entries: await entryCount(organization.id),
    });

    const lines = exported.text.trim().split('\n');
    const altered = lines.map((line, index) =>
      index === 3 ? line.replace('127.0.0.1', '127.0.0.2') : line,
    );
    expect(altered[3]).not.toBe(lines[3]);
    expect(verifyExport(altered.join('\n'), keys.body)).toMatchObject({
      valid: false,
      problem: { line: 4 },
    });
    const dropped = [...lines.slice(0, 3), ...lines.slice(4)];
    expect(verifyExport(dropped.join('\n'), keys.body).valid).toBe(false);
    // The right format signed by any other key is refused.
    const stranger = generateKeyPairSync('ed25519').publicKey.export({
      type: 'spki',
      format: 'pem',
    });
    const kid = (JSON.parse(lines[lines.length - 1]) as Checkpoint).kid;
    expect(
      verifyExport(exported.text, { keys: [{ kid, publicKeyPem: stranger.toString() }] }),
    ).toMatchObject({ valid: false, problem: { reason: expect.stringMatching(/signature/) } });
  });

  it.each(['manager', 'agent', 'viewer'] as const)(
    'refuses verification, checkpoints and export to a %s',
    async (role) => {
      const { organization, members } = await busyOrganization();
      const token = members[role].tokens.accessToken;

      expect(
        (await server.api.post('/api/v1/audit/checkpoints', undefined, { token })).status,
      ).toBe(403);
      for (const path of [
        '/api/v1/audit/verify',
        '/api/v1/audit/export',
        '/api/v1/audit/checkpoints',
      ]) {
        expect((await server.api.get(path, { token })).status).toBe(403);
      }
      expect((await verify(organization)).checkpoints.checked).toBe(0);
    },
  );
});
