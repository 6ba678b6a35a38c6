import { generateKeyPairSync } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';

import { AppConfig, ConfigError, loadConfig } from './config.schema';

/** The self-signed test certificate and its key, committed for tests only. */
const FIXTURES = join(__dirname, '..', '..', '..', '..', 'test', 'fixtures', 'tls');
const CERT_FILE = join(FIXTURES, 'cert.pem');
const KEY_FILE = join(FIXTURES, 'key.pem');

const BROKEN_CERTIFICATE = '-----BEGIN CERTIFICATE-----\nMIIB!\n-----END CERTIFICATE-----\n';
const BROKEN_KEY = '-----BEGIN PRIVATE KEY-----\nMIIB!\n-----END PRIVATE KEY-----\n';

function load(env: Record<string, string | undefined>): AppConfig {
  return loadConfig({ NODE_ENV: 'test', ...env });
}

/** The ConfigError loadConfig throws for this environment. */
function refusal(env: Record<string, string | undefined>): ConfigError {
  try {
    load(env);
  } catch (error) {
    if (error instanceof ConfigError) {
      return error;
    }
    throw error;
  }
  throw new Error('loadConfig accepted the environment');
}

describe('TLS_CERT_FILE and TLS_KEY_FILE', () => {
  let folder: string;

  beforeAll(() => {
    folder = mkdtempSync(join(tmpdir(), 'parley-tls-config-'));
  });

  afterAll(() => {
    rmSync(folder, { recursive: true, force: true });
  });

  function file(name: string, content: string): string {
    const path = join(folder, name);
    writeFileSync(path, content);

    return path;
  }

  it('leaves TLS off when neither is set, or both are empty', () => {
    for (const config of [load({}), load({ TLS_CERT_FILE: '', TLS_KEY_FILE: '' })]) {
      expect(config.tlsCert).toBeUndefined();
      expect(config.tlsKey).toBeUndefined();
    }
  });

  it('reads both files at boot, relative paths against the working directory', () => {
    const absolute = load({ TLS_CERT_FILE: CERT_FILE, TLS_KEY_FILE: KEY_FILE });
    const relativeToCwd = load({
      TLS_CERT_FILE: relative(process.cwd(), CERT_FILE),
      TLS_KEY_FILE: relative(process.cwd(), KEY_FILE),
    });

    expect(absolute.tlsCert).toBe(readFileSync(CERT_FILE, 'utf8'));
    expect(absolute.tlsKey).toBe(readFileSync(KEY_FILE, 'utf8'));
    expect(relativeToCwd.tlsCert).toBe(absolute.tlsCert);
    expect(relativeToCwd.tlsKey).toBe(absolute.tlsKey);
  });

  it('refuses one without the other, naming the missing variable', () => {
    const certOnly = refusal({ TLS_CERT_FILE: CERT_FILE });
    const keyOnly = refusal({ TLS_KEY_FILE: KEY_FILE });

    expect(certOnly.variable).toBe('TLS_KEY_FILE');
    expect(certOnly.message).toBe(
      'Invalid configuration: TLS_KEY_FILE is required when TLS_CERT_FILE is set',
    );
    expect(keyOnly.variable).toBe('TLS_CERT_FILE');
    expect(keyOnly.message).toBe(
      'Invalid configuration: TLS_CERT_FILE is required when TLS_KEY_FILE is set',
    );
  });

  it('refuses a path that cannot be read, naming its variable and the path', () => {
    const missing = join(folder, 'missing.pem');
    const absentCert = refusal({ TLS_CERT_FILE: missing, TLS_KEY_FILE: KEY_FILE });
    const absentKey = refusal({ TLS_CERT_FILE: CERT_FILE, TLS_KEY_FILE: missing });
    const folderAsKey = refusal({ TLS_CERT_FILE: CERT_FILE, TLS_KEY_FILE: folder });

    expect(absentCert.variable).toBe('TLS_CERT_FILE');
    expect(absentCert.message).toBe(
      `Invalid configuration: TLS_CERT_FILE names a file that cannot be read (ENOENT): ${missing}`,
    );
    expect(absentKey.variable).toBe('TLS_KEY_FILE');
    expect(absentKey.message).toContain(`(ENOENT): ${missing}`);
    expect(folderAsKey.variable).toBe('TLS_KEY_FILE');
    expect(folderAsKey.message).toContain('(EISDIR)');
  });

  it('refuses a certificate file that holds no PEM certificate, or a broken one', () => {
    const cases = [
      file('empty.pem', ''),
      file('text.pem', 'not a certificate\n'),
      KEY_FILE,
      file('broken.pem', BROKEN_CERTIFICATE),
    ];

    for (const path of cases) {
      const error = refusal({ TLS_CERT_FILE: path, TLS_KEY_FILE: KEY_FILE });

      expect(error.variable).toBe('TLS_CERT_FILE');
      expect(error.message).toMatch(/^Invalid configuration: TLS_CERT_FILE (must be|holds) a PEM/);
    }
  });

  it('refuses a key file that holds no PEM private key, a public key or a broken one', () => {
    const { publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    const cases = [
      file('nothing.key', 'not a key\n'),
      CERT_FILE,
      file('public.pem', publicKey.export({ type: 'spki', format: 'pem' }).toString()),
      file('broken.key', BROKEN_KEY),
    ];

    for (const path of cases) {
      const error = refusal({ TLS_CERT_FILE: CERT_FILE, TLS_KEY_FILE: path });

      expect(error.variable).toBe('TLS_KEY_FILE');
      expect(error.message).toMatch(/^Invalid configuration: TLS_KEY_FILE (must be|holds) a PEM/);
    }
  });

  it('refuses an encrypted private key, which the server could not open without a passphrase', () => {
    const { privateKey } = generateKeyPairSync('ec', {
      namedCurve: 'P-256',
      privateKeyEncoding: { type: 'pkcs8', format: 'pem', cipher: 'aes-256-cbc', passphrase: 'x' },
      publicKeyEncoding: { type: 'spki', format: 'pem' },
    });
    const sealed = file('sealed.key', privateKey);
    const error = refusal({ TLS_CERT_FILE: CERT_FILE, TLS_KEY_FILE: sealed });

    expect(error.variable).toBe('TLS_KEY_FILE');
    expect(error.message).toContain('encrypted');
  });

  it("refuses a private key that is not the certificate's own", () => {
    const { privateKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    const other = file('other.key', privateKey.export({ type: 'pkcs8', format: 'pem' }).toString());
    const error = refusal({ TLS_CERT_FILE: CERT_FILE, TLS_KEY_FILE: other });

    expect(error.variable).toBe('TLS_KEY_FILE');
    expect(error.message).toBe(
      'Invalid configuration: TLS_KEY_FILE is not the private key of the first certificate in TLS_CERT_FILE',
    );
  });
});
