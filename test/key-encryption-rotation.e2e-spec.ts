import { rmSync } from 'node:fs';

import { AuditCheckpoints } from '@parley/audit';
import { SigningKeys } from '@parley/auth';
import { KeyMaintenance, kekIdOf } from '@parley/crypto';
import { TenantTransactions } from '@parley/database';

import { SignedUpOrganization, signupOrganization } from './factories';
import { TestServer, startServer, temporaryDataDir } from './support';

const KEK_A = Buffer.alloc(32, 0x3a).toString('base64');
const KEK_B = Buffer.alloc(32, 0x4b).toString('base64');

/**
 * Key-encryption-key rotation, on its own embedded database (the shared test database's keys
 * are sealed under the suites' common key): the new key goes in PARLEY_KEK, the old one in
 * PARLEY_KEK_PREVIOUS, `npm run keys:rotate-kek` re-wraps every data key and signing key, and
 * then the old key can go. The data keys, and every value they seal, stay as they are.
 */
describe('key-encryption-key rotation', () => {
  const dataDir = temporaryDataDir();
  let server: TestServer | undefined;
  let organization: SignedUpOrganization;
  let contactId: string;
  let sealedBefore: { body: string }[];

  async function boot(env: Record<string, string | undefined>): Promise<TestServer> {
    await server?.close();
    server = await startServer({
      embedded: true,
      dataDir,
      env: { DATABASE_URL: undefined, PARLEY_KEK_PREVIOUS: undefined, ...env },
    });

    return server;
  }

  /** Raw SQL as the runtime role, inside the organization's tenant transaction. */
  function asTenant<T>(running: TestServer, sql: string, parameters: unknown[] = []): Promise<T[]> {
    return running.app
      .get(TenantTransactions)
      .run(organization.id, (manager) => manager.query(sql, parameters));
  }

  async function wrappedUnder(running: TestServer): Promise<string[]> {
    const rows = await asTenant<{ kek_id: string }>(
      running,
      'select distinct kek_id from keyring.data_key_versions order by 1',
    );

    return rows.map((row) => row.kek_id);
  }

  async function readBack(running: TestServer) {
    const token = (
      await running.api.post('/api/v1/auth/login', {
        organizationSlug: organization.slug,
        email: organization.admin.email,
        password: organization.admin.password,
      })
    ).body.accessToken as string;
    const contact = await running.api.get(`/api/v1/contacts/${contactId}`, { token });

    return { token, contact };
  }

  afterAll(async () => {
    await server?.close();
    rmSync(dataDir, { recursive: true, force: true });
  });

  it('seals data keys under the configured key-encryption key', async () => {
    const running = await boot({ PARLEY_KEK: KEK_A });
    organization = await signupOrganization(running.api);
    const contact = await running.api.post(
      '/api/v1/contacts',
      { email: 'rotating.kek@example.test', name: 'Rotating Kek', phone: '+1 555 0100' },
      { token: organization.admin.tokens.accessToken },
    );
    expect(contact.status).toBe(201);
    contactId = contact.body.id as string;
    sealedBefore = await asTenant(running, 'select email as body from contacts where id = $1', [
      contactId,
    ]);
    expect(sealedBefore[0].body).toMatch(/^pv1\./);

    expect(await wrappedUnder(running)).toEqual([kekIdOf(Buffer.from(KEK_A, 'base64'))]);
    // An audit checkpoint, so its signing key exists, sealed under the same key.
    const checkpoint = await running.api.post('/api/v1/audit/checkpoints', undefined, {
      token: organization.admin.tokens.accessToken,
    });
    expect(checkpoint.status).toBe(201);
  });

  it('refuses to open anything when the old key is simply replaced', async () => {
    const running = await boot({ PARLEY_KEK: KEK_B });
    const login = await running.api.post('/api/v1/auth/login', {
      organizationSlug: organization.slug,
      email: organization.admin.email,
      password: organization.admin.password,
    });

    // The member's email is sealed under a data key the new KEK cannot unwrap.
    expect(login.status).toBe(500);
    expect(login.body).toMatchObject({ code: 'sealed_value_refused' });
    expect(JSON.stringify(login.body)).not.toContain(organization.admin.email);
  });

  it('reads everything with the old key listed as previous, and re-wraps onto the new one', async () => {
    const running = await boot({ PARLEY_KEK: KEK_B, PARLEY_KEK_PREVIOUS: KEK_A });
    const { contact } = await readBack(running);
    expect(contact.status).toBe(200);
    expect(contact.body).toMatchObject({
      name: 'Rotating Kek',
      email: 'rotating.kek@example.test',
    });

    const rewrapped = await running.app.get(KeyMaintenance).rewrapUnderCurrentKek();
    const signingKeys = await running.app.get(SigningKeys).rewrapUnderCurrentKek();

    const checkpointKeys = await running.app.get(AuditCheckpoints).rewrapUnderCurrentKek();

    expect(rewrapped).toBeGreaterThanOrEqual(3);
    expect(signingKeys).toBeGreaterThanOrEqual(1);
    expect(checkpointKeys).toBe(1);
    expect(await running.app.get(AuditCheckpoints).rewrapUnderCurrentKek()).toBe(0);
    expect(await wrappedUnder(running)).toEqual([kekIdOf(Buffer.from(KEK_B, 'base64'))]);
    expect(await running.app.get(KeyMaintenance).rewrapUnderCurrentKek()).toBe(0);
  });

  it('works on the new key alone once re-wrapped, with the sealed values themselves unchanged', async () => {
    const running = await boot({ PARLEY_KEK: KEK_B });
    const { contact } = await readBack(running);

    expect(contact.status).toBe(200);
    expect(contact.body).toMatchObject({ name: 'Rotating Kek', phone: '+1 555 0100' });
    expect((await running.api.get('/.well-known/parley-audit-keys.json')).status).toBe(200);
    const { token } = await readBack(running);
    const signed = await running.api.post('/api/v1/audit/checkpoints', undefined, { token });
    expect(signed.status).toBe(201);
    // The chain and its checkpoints verify on the embedded database too.
    const verified = await running.api.get('/api/v1/audit/verify', { token });
    expect(verified.body).toMatchObject({ valid: true, checkpoints: { checked: 2 } });
    const sealedAfter = await asTenant(
      running,
      'select email as body from contacts where id = $1',
      [contactId],
    );
    expect(sealedAfter).toEqual(sealedBefore);
  });
});
