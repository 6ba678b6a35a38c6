import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { AppConfig, ConfigError, loadConfig } from '@parley/core';

import { SealedValueError } from './aead';
import { KeyEncryptionKey, kekIdOf } from './key-encryption';

const KEY_A = Buffer.alloc(32, 0xa1).toString('base64');
const KEY_B = Buffer.alloc(32, 0xb2).toString('base64');

function provider(config: Partial<AppConfig>): KeyEncryptionKey {
  return new KeyEncryptionKey({ kekPrevious: [], dataDir: '/nonexistent', ...config } as AppConfig);
}

describe('the local key-encryption key provider', () => {
  it('names the key that wrapped a value and opens it only in its context', async () => {
    const kek = provider({ kek: KEY_A });
    const wrapped = await kek.wrap(Buffer.from('data key'), 'data-key|org|id|1');

    expect(wrapped).toMatch(/^kek2\.[0-9a-f]{16}\./);
    expect(kek.wrappedUnder(wrapped)).toBe(kekIdOf(Buffer.from(KEY_A, 'base64')));
    expect((await kek.unwrap(wrapped, 'data-key|org|id|1')).toString()).toBe('data key');
    await expect(kek.unwrap(wrapped, 'data-key|org|id|2')).rejects.toMatchObject({
      code: 'authentication_failed',
    });
  });

  it('opens what a previous key wrapped after a rotation, and wraps new values under the new key', async () => {
    const before = provider({ kek: KEY_A });
    const wrapped = await before.wrap(Buffer.from('old'), 'ctx');
    const after = provider({ kek: KEY_B, kekPrevious: [KEY_A] });

    expect((await after.unwrap(wrapped, 'ctx')).toString()).toBe('old');
    expect(after.wrappedUnder(await after.wrap(Buffer.from('new'), 'ctx'))).toBe(
      after.currentKekId(),
    );
    expect(after.kekIds()).toEqual([
      kekIdOf(Buffer.from(KEY_B, 'base64')),
      kekIdOf(Buffer.from(KEY_A, 'base64')),
    ]);
  });

  it('refuses a value wrapped by a key it does not hold, saying which is missing', async () => {
    const wrapped = await provider({ kek: KEY_A }).wrap(Buffer.from('x'), 'ctx');
    const other = provider({ kek: KEY_B });

    await expect(other.unwrap(wrapped, 'ctx')).rejects.toBeInstanceOf(SealedValueError);
    await expect(other.unwrap(wrapped, 'ctx')).rejects.toMatchObject({ code: 'key_unavailable' });
  });

  it('refuses a value whose key id was swapped for the current one', async () => {
    const kek = provider({ kek: KEY_B, kekPrevious: [KEY_A] });
    const wrapped = await provider({ kek: KEY_A }).wrap(Buffer.from('x'), 'ctx');
    const swapped = wrapped.replace(/^kek2\.[0-9a-f]{16}\./, `kek2.${kek.currentKekId()}.`);

    await expect(kek.unwrap(swapped, 'ctx')).rejects.toMatchObject({
      code: 'authentication_failed',
    });
  });

  it('reads its keys from PARLEY_KEK_FILE, the current one first', async () => {
    const folder = mkdtempSync(join(tmpdir(), 'parley-kek-'));
    try {
      const file = join(folder, 'kek');
      writeFileSync(file, `# rotated today\n${KEY_B}\n${KEY_A}\n`);
      const kek = provider({ kekFile: file });

      expect(kek.currentKekId()).toBe(kekIdOf(Buffer.from(KEY_B, 'base64')));
      const old = await provider({ kek: KEY_A }).wrap(Buffer.from('old'), 'ctx');
      expect((await kek.unwrap(old, 'ctx')).toString()).toBe('old');

      writeFileSync(file, 'not a key\n');
      expect(() => provider({ kekFile: file }).currentKekId()).toThrow(ConfigError);
    } finally {
      rmSync(folder, { recursive: true, force: true });
    }
  });

  it('refuses PARLEY_KEK and PARLEY_KEK_FILE together, and a malformed previous key, naming them', () => {
    expect(() => loadConfig({ PARLEY_KEK: KEY_A, PARLEY_KEK_FILE: '/tmp/k' })).toThrow(
      'PARLEY_KEK_FILE',
    );
    expect(() => loadConfig({ PARLEY_KEK: KEY_A, PARLEY_KEK_PREVIOUS: `${KEY_B},short` })).toThrow(
      'PARLEY_KEK_PREVIOUS',
    );
    expect(() =>
      loadConfig({ NODE_ENV: 'production', DATABASE_URL: 'postgres://x@127.0.0.1/db' }),
    ).toThrow('PARLEY_KEK');
    expect(() =>
      loadConfig({
        NODE_ENV: 'production',
        DATABASE_URL: 'postgres://x@127.0.0.1/db',
        PARLEY_KEK: KEY_A,
        BENCH_UNSAFE_NULL_CIPHER: 'true',
      }),
    ).toThrow('BENCH_UNSAFE_NULL_CIPHER');
  });

  it('still opens signing keys sealed before key ids existed (kek1)', () => {
    const kek = provider({ kek: KEY_A });
    // A kek1 value: nonce and ciphertext+tag, sealed with the bare context as AAD.
    const { createCipheriv, randomBytes } =
      jest.requireActual<typeof import('node:crypto')>('node:crypto');
    const nonce = randomBytes(12);
    const cipher = createCipheriv('aes-256-gcm', Buffer.from(KEY_A, 'base64'), nonce);
    cipher.setAAD(Buffer.from('signing_key:abc'));
    const sealed = Buffer.concat([cipher.update('pem'), cipher.final(), cipher.getAuthTag()]);
    const legacy = `kek1.${nonce.toString('base64url')}.${sealed.toString('base64url')}`;

    expect(kek.open(legacy, 'signing_key:abc').toString()).toBe('pem');
    expect(() => kek.open(legacy, 'signing_key:other')).toThrow(SealedValueError);
    // After a rotation the old key is only a previous one, and still opens it.
    const rotated = provider({ kek: KEY_B, kekPrevious: [KEY_A] });
    expect(rotated.open(legacy, 'signing_key:abc').toString()).toBe('pem');
    expect(rotated.wrappedUnder(legacy)).not.toBe(rotated.currentKekId());
    expect(() => provider({ kek: KEY_B }).open(legacy, 'signing_key:abc')).toThrow(
      SealedValueError,
    );
  });
});
