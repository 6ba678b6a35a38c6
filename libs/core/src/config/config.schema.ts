import { KeyObject, X509Certificate, createPrivateKey } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { isAbsolute, resolve } from 'node:path';

import { OriginListError, parseOriginList } from './origin-list';

export type NodeEnvironment = 'development' | 'test' | 'production';

export interface AppConfig {
  nodeEnv: NodeEnvironment;
  production: boolean;
  port: number;
  host: string;
  trustProxy: boolean;
  /** PEM certificate chain (the server's certificate first) read from TLS_CERT_FILE at boot. */
  tlsCert: string | undefined;
  /** PEM private key of that certificate, read from TLS_KEY_FILE at boot. */
  tlsKey: string | undefined;
  databaseUrl: string | undefined;
  databaseMigrationUrl: string | undefined;
  databasePoolSize: number;
  redisUrl: string | undefined;
  dataDir: string;
  signupEnabled: boolean;
  demoSeed: boolean;
  openApiEnabled: boolean;
  logLevel: 'fatal' | 'error' | 'warn' | 'info' | 'debug' | 'trace' | 'silent';
  bodyLimitBytes: number;
  jwtIssuer: string;
  jwtAudience: string;
  jwtPrivateKey: string | undefined;
  kek: string | undefined;
  kekPrevious: string[];
  kekFile: string | undefined;
  keyProvider: 'local';
  dataKeyRotationDays: number;
  dataKeyCacheSeconds: number;
  rewrapBatchSize: number;
  benchUnsafeNullCipher: boolean;
  benchUnsafeNoMessageAudit: boolean;
  auditCheckpointMinutes: number;
  signingKeyRotationDays: number;
  accessTokenTtlSeconds: number;
  visitorTokenTtlSeconds: number;
  sessionCacheMs: number;
  apiKeyRotationOverlapSeconds: number;
  webhookSecretOverlapSeconds: number;
  webhookAllowPrivateAddresses: boolean;
  webhookMaxAttempts: number;
  metricsToken: string | undefined;
  rateLimitPerMinute: number;
  socketEventsPerSecond: number;
  socketEventBurst: number;
  sessionSweepSeconds: number;
  credentialRateLimitPerMinute: number;
  dashboardOrigins: string[];
  loginFailuresBeforeLock: number;
  loginFailureWindowSeconds: number;
  loginLockSeconds: number;
  loginLockMaxSeconds: number;
  loginMaxConsecutiveFailures: number;
  loginAddressFailureLimit: number;
  loginAddressBlockSeconds: number;
  detectFailedLoginsAccount: DetectionThreshold | null;
  detectFailedLoginsAddress: DetectionThreshold | null;
  detectRefreshTokenReuse: DetectionThreshold | null;
  detectCrossTenantProbing: DetectionThreshold | null;
  detectApiKeyNewAddress: DetectionThreshold | null;
  detectMassDeletion: DetectionThreshold | null;
  detectMassExport: DetectionThreshold | null;
  detectRateLimitEscalation: DetectionThreshold | null;
  detectAdminPrivilegeChange: DetectionThreshold | null;
  incidentJoinWindowMinutes: number;
  incidentResponseMinutes: Record<'low' | 'medium' | 'high' | 'critical', number>;
  incidentEscalationIntervalMinutes: number;
  incidentEscalationCheckSeconds: number;
}

/** A detection rule fires when `threshold` events fall within one window of `windowSeconds`. */
export interface DetectionThreshold {
  threshold: number;
  windowSeconds: number;
}

export class ConfigError extends Error {
  constructor(
    readonly variable: string,
    reason: string,
  ) {
    super(`Invalid configuration: ${variable} ${reason}`);
    this.name = 'ConfigError';
  }
}

interface Entry<T> {
  variable: string;
  description: string;
  secret?: boolean;
  parse(raw: string | undefined, env: NodeEnvironment): T;
}

const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;

function integer(variable: string, fallback: number, min: number, max: number) {
  return (raw: string | undefined): number => {
    if (raw === undefined || raw === '') {
      return fallback;
    }
    if (!/^\d+$/.test(raw)) {
      throw new ConfigError(variable, `must be a whole number, got "${raw}"`);
    }
    const value = Number(raw);
    if (value < min || value > max) {
      throw new ConfigError(variable, `must be between ${min} and ${max}, got ${value}`);
    }

    return value;
  };
}

function flag(variable: string, fallback: (env: NodeEnvironment) => boolean) {
  return (raw: string | undefined, env: NodeEnvironment): boolean => {
    if (raw === undefined || raw === '') {
      return fallback(env);
    }
    if (['true', '1', 'yes', 'on'].includes(raw.toLowerCase())) {
      return true;
    }
    if (['false', '0', 'no', 'off'].includes(raw.toLowerCase())) {
      return false;
    }
    throw new ConfigError(variable, `must be true or false, got "${raw}"`);
  };
}

function text(fallback?: string) {
  return (raw: string | undefined): string | undefined =>
    raw === undefined || raw === '' ? fallback : raw;
}

function postgresUrl(variable: string) {
  return (raw: string | undefined): string | undefined => {
    if (raw === undefined || raw === '') {
      return undefined;
    }
    let url: URL;
    try {
      url = new URL(raw);
    } catch {
      throw new ConfigError(variable, 'is not a valid URL');
    }
    if (url.protocol !== 'postgres:' && url.protocol !== 'postgresql:') {
      throw new ConfigError(variable, 'must start with postgres:// or postgresql://');
    }

    return raw;
  };
}

const PEM_CERTIFICATE = /-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g;
const PEM_PRIVATE_KEY = /-----BEGIN (?:RSA |EC )?PRIVATE KEY-----/;
const PEM_ENCRYPTED = /-----BEGIN ENCRYPTED PRIVATE KEY-----|Proc-Type: 4,ENCRYPTED/;

/** Reads a file named by a variable at boot, so a bad path stops the start with that name. */
function readNamedFile(variable: string, raw: string): string {
  const path = isAbsolute(raw) ? raw : resolve(process.cwd(), raw);
  try {
    return readFileSync(path, 'utf8');
  } catch (error) {
    const reason = (error as NodeJS.ErrnoException).code ?? (error as Error).message;
    throw new ConfigError(variable, `names a file that cannot be read (${reason}): ${path}`);
  }
}

function certificateFile(variable: string) {
  return (raw: string | undefined): string | undefined => {
    if (raw === undefined || raw === '') {
      return undefined;
    }
    const pem = readNamedFile(variable, raw);
    const certificates = pem.match(PEM_CERTIFICATE) ?? [];
    if (certificates.length === 0) {
      throw new ConfigError(variable, 'must be a PEM file of certificates (BEGIN CERTIFICATE)');
    }
    for (const certificate of certificates) {
      try {
        new X509Certificate(certificate);
      } catch {
        throw new ConfigError(variable, 'holds a PEM certificate that cannot be parsed');
      }
    }

    return pem;
  };
}

function privateKeyFile(variable: string) {
  return (raw: string | undefined): string | undefined => {
    if (raw === undefined || raw === '') {
      return undefined;
    }
    const pem = readNamedFile(variable, raw);
    if (PEM_ENCRYPTED.test(pem)) {
      throw new ConfigError(variable, 'holds an encrypted private key; give it unencrypted');
    }
    if (!PEM_PRIVATE_KEY.test(pem)) {
      throw new ConfigError(variable, 'must be a PEM private key (BEGIN PRIVATE KEY)');
    }
    try {
      createPrivateKey(pem);
    } catch {
      throw new ConfigError(variable, 'holds a PEM private key that cannot be parsed');
    }

    return pem;
  };
}

/** TLS_CERT_FILE and TLS_KEY_FILE come together, and the key must be the certificate's own. */
function assertTlsPair(config: Pick<AppConfig, 'tlsCert' | 'tlsKey'>): void {
  if (config.tlsCert === undefined && config.tlsKey === undefined) {
    return;
  }
  if (config.tlsKey === undefined) {
    throw new ConfigError('TLS_KEY_FILE', 'is required when TLS_CERT_FILE is set');
  }
  if (config.tlsCert === undefined) {
    throw new ConfigError('TLS_CERT_FILE', 'is required when TLS_KEY_FILE is set');
  }
  const certificate = new X509Certificate(config.tlsCert);
  if (!certificate.checkPrivateKey(createPrivateKey(config.tlsKey))) {
    throw new ConfigError(
      'TLS_KEY_FILE',
      'is not the private key of the first certificate in TLS_CERT_FILE',
    );
  }
}

const DETECTION_MAX_WINDOW_SECONDS = 7 * 24 * 3600;

/** `<threshold>/<window seconds>` (`5/300`: five within 300 seconds), or `off`. */
function detectionRule(variable: string, fallback: DetectionThreshold) {
  return (raw: string | undefined): DetectionThreshold | null => {
    if (raw === undefined || raw === '') {
      return fallback;
    }
    if (raw.toLowerCase() === 'off') {
      return null;
    }
    const match = /^(\d+)\/(\d+)$/.exec(raw);
    if (!match) {
      throw new ConfigError(
        variable,
        `must be <threshold>/<window seconds> (for example 5/300) or off, got "${raw}"`,
      );
    }
    const threshold = Number(match[1]);
    const windowSeconds = Number(match[2]);
    if (threshold < 1 || threshold > 1_000_000) {
      throw new ConfigError(variable, `threshold must be between 1 and 1000000, got ${threshold}`);
    }
    if (windowSeconds < 1 || windowSeconds > DETECTION_MAX_WINDOW_SECONDS) {
      throw new ConfigError(
        variable,
        `window must be between 1 and ${DETECTION_MAX_WINDOW_SECONDS} seconds, got ${windowSeconds}`,
      );
    }

    return { threshold, windowSeconds };
  };
}

const INCIDENT_SEVERITIES = ['low', 'medium', 'high', 'critical'] as const;

/** `1440,480,60,0`: minutes for low, medium, high and critical, never later for a higher one. */
function incidentResponseMinutes(raw: string | undefined): AppConfig['incidentResponseMinutes'] {
  const variable = 'INCIDENT_RESPONSE_MINUTES';
  const parts = raw === undefined || raw === '' ? ['1440', '480', '60', '0'] : raw.split(',');
  if (parts.length !== 4 || parts.some((part) => !/^\d{1,6}$/.test(part.trim()))) {
    throw new ConfigError(
      variable,
      `must be four whole numbers of minutes, low,medium,high,critical (for example 1440,480,60,0), got "${raw}"`,
    );
  }
  const minutes = parts.map((part) => Number(part.trim()));
  if (minutes.some((value) => value > 30 * 24 * 60)) {
    throw new ConfigError(variable, 'must give at most 43200 minutes (30 days) per severity');
  }
  if (minutes.some((value, index) => index > 0 && value > minutes[index - 1])) {
    throw new ConfigError(variable, 'must not give a higher severity a later deadline');
  }

  return Object.fromEntries(
    INCIDENT_SEVERITIES.map((severity, index) => [severity, minutes[index]]),
  ) as AppConfig['incidentResponseMinutes'];
}

/** Every variable the server reads, described once; `secret` entries are never logged. */
export const CONFIG_SCHEMA = {
  nodeEnv: {
    variable: 'NODE_ENV',
    description: 'development, test or production; production refuses generated secrets',
    parse: (raw) => {
      const value = raw === undefined || raw === '' ? 'development' : raw;
      if (value !== 'development' && value !== 'test' && value !== 'production') {
        throw new ConfigError('NODE_ENV', `must be development, test or production, got "${raw}"`);
      }

      return value;
    },
  } satisfies Entry<NodeEnvironment>,
  port: {
    variable: 'PORT',
    description: 'HTTP and Socket.IO port',
    parse: integer('PORT', 3000, 0, 65535),
  } satisfies Entry<number>,
  host: {
    variable: 'HOST',
    description: 'address to listen on (0.0.0.0 in containers)',
    parse: (raw) => text('127.0.0.1')(raw) as string,
  } satisfies Entry<string>,
  trustProxy: {
    variable: 'TRUST_PROXY',
    description: 'trust X-Forwarded-For from the ingress',
    parse: flag('TRUST_PROXY', () => false),
  } satisfies Entry<boolean>,
  tlsCert: {
    variable: 'TLS_CERT_FILE',
    description:
      'PEM certificate chain (server certificate first) to serve HTTPS with; needs TLS_KEY_FILE',
    parse: certificateFile('TLS_CERT_FILE'),
  } satisfies Entry<string | undefined>,
  tlsKey: {
    variable: 'TLS_KEY_FILE',
    description:
      "unencrypted PEM private key of TLS_CERT_FILE's first certificate; the file is a secret",
    parse: privateKeyFile('TLS_KEY_FILE'),
  } satisfies Entry<string | undefined>,
  databaseUrl: {
    variable: 'DATABASE_URL',
    description: 'runtime PostgreSQL connection; unset runs embedded PGlite',
    secret: true,
    parse: postgresUrl('DATABASE_URL'),
  } satisfies Entry<string | undefined>,
  databaseMigrationUrl: {
    variable: 'DATABASE_MIGRATION_URL',
    description: 'owner connection that runs migrations (defaults to DATABASE_URL)',
    secret: true,
    parse: postgresUrl('DATABASE_MIGRATION_URL'),
  } satisfies Entry<string | undefined>,
  databasePoolSize: {
    variable: 'DATABASE_POOL_SIZE',
    description: 'connections in the runtime pool',
    parse: integer('DATABASE_POOL_SIZE', 10, 1, 200),
  } satisfies Entry<number>,
  redisUrl: {
    variable: 'REDIS_URL',
    description: 'Redis for shared rate limits and socket fan-out; unset means single instance',
    secret: true,
    parse: (raw) => {
      if (raw === undefined || raw === '') {
        return undefined;
      }
      if (!/^rediss?:\/\//.test(raw)) {
        throw new ConfigError('REDIS_URL', 'must start with redis:// or rediss://');
      }

      return raw;
    },
  } satisfies Entry<string | undefined>,
  dataDir: {
    variable: 'PARLEY_DATA_DIR',
    description: 'folder of the embedded database and generated development secrets',
    parse: (raw) => {
      const value = raw === undefined || raw === '' ? '.data' : raw;

      return isAbsolute(value) ? value : resolve(process.cwd(), value);
    },
  } satisfies Entry<string>,
  signupEnabled: {
    variable: 'SIGNUP_ENABLED',
    description: 'allow POST /api/v1/auth/signup (on by default outside production)',
    parse: flag('SIGNUP_ENABLED', (env) => env !== 'production'),
  } satisfies Entry<boolean>,
  demoSeed: {
    variable: 'DEMO_SEED',
    description: 'create the demo organization on an empty database (never in production)',
    parse: flag('DEMO_SEED', (env) => env === 'development'),
  } satisfies Entry<boolean>,
  openApiEnabled: {
    variable: 'OPENAPI_ENABLED',
    description: 'serve /api/docs and /api/docs-json (off by default in production)',
    parse: flag('OPENAPI_ENABLED', (env) => env !== 'production'),
  } satisfies Entry<boolean>,
  logLevel: {
    variable: 'LOG_LEVEL',
    description: 'pino log level',
    parse: (raw) => {
      const value = raw === undefined || raw === '' ? 'info' : raw;
      if (!(LOG_LEVELS as readonly string[]).includes(value)) {
        throw new ConfigError('LOG_LEVEL', `must be one of ${LOG_LEVELS.join(', ')}`);
      }

      return value as AppConfig['logLevel'];
    },
  } satisfies Entry<AppConfig['logLevel']>,
  bodyLimitBytes: {
    variable: 'BODY_LIMIT_BYTES',
    description: 'largest accepted request body',
    parse: integer('BODY_LIMIT_BYTES', 256 * 1024, 1024, 16 * 1024 * 1024),
  } satisfies Entry<number>,
  jwtIssuer: {
    variable: 'JWT_ISSUER',
    description: 'iss of every token this server signs and accepts',
    parse: (raw) => text('parley')(raw) as string,
  } satisfies Entry<string>,
  jwtAudience: {
    variable: 'JWT_AUDIENCE',
    description: 'aud of access tokens',
    parse: (raw) => text('parley-api')(raw) as string,
  } satisfies Entry<string>,
  jwtPrivateKey: {
    variable: 'JWT_PRIVATE_KEY',
    description:
      'ES256 private key (PKCS#8 PEM) to import as a signing key; otherwise keys are generated',
    secret: true,
    parse: (raw) => {
      if (raw === undefined || raw === '') {
        return undefined;
      }
      let key: KeyObject;
      try {
        key = createPrivateKey(raw);
      } catch {
        throw new ConfigError('JWT_PRIVATE_KEY', 'must be a PKCS#8 PEM private key');
      }
      if (key.asymmetricKeyType !== 'ec' || key.asymmetricKeyDetails?.namedCurve !== 'prime256v1') {
        throw new ConfigError('JWT_PRIVATE_KEY', 'must be a P-256 (ES256) key');
      }

      return raw;
    },
  } satisfies Entry<string | undefined>,
  kek: {
    variable: 'PARLEY_KEK',
    description:
      'key-encryption key (32 random bytes, base64) that wraps stored keys; required in production',
    secret: true,
    parse: (raw) => {
      if (raw === undefined || raw === '') {
        return undefined;
      }
      if (!isKeyText(raw)) {
        throw new ConfigError('PARLEY_KEK', 'must be 32 bytes in base64 (openssl rand -base64 32)');
      }

      return raw;
    },
  } satisfies Entry<string | undefined>,
  kekPrevious: {
    variable: 'PARLEY_KEK_PREVIOUS',
    description:
      'earlier key-encryption keys (comma-separated, base64) that still open keys wrapped before a KEK rotation',
    secret: true,
    parse: (raw) => {
      if (raw === undefined || raw.trim() === '') {
        return [];
      }

      return raw.split(',').map((entry) => {
        const key = entry.trim();
        if (!isKeyText(key)) {
          throw new ConfigError(
            'PARLEY_KEK_PREVIOUS',
            'must list 32-byte keys in base64, separated by commas',
          );
        }

        return key;
      });
    },
  } satisfies Entry<string[]>,
  kekFile: {
    variable: 'PARLEY_KEK_FILE',
    description:
      'file holding the key-encryption key instead of PARLEY_KEK: one base64 key per line, the current one first',
    parse: (raw) =>
      raw === undefined || raw === ''
        ? undefined
        : isAbsolute(raw)
          ? raw
          : resolve(process.cwd(), raw),
  } satisfies Entry<string | undefined>,
  keyProvider: {
    variable: 'KEY_PROVIDER',
    description: 'where the key-encryption key lives: local (PARLEY_KEK or PARLEY_KEK_FILE)',
    parse: (raw) => {
      if (raw === undefined || raw === '' || raw === 'local') {
        return 'local' as const;
      }
      throw new ConfigError('KEY_PROVIDER', `must be local, got "${raw}"`);
    },
  } satisfies Entry<'local'>,
  dataKeyRotationDays: {
    variable: 'DATA_KEY_ROTATION_DAYS',
    description: 'age after which each data key gets a new version for new writes (0: never)',
    parse: integer('DATA_KEY_ROTATION_DAYS', 90, 0, 3650),
  } satisfies Entry<number>,
  dataKeyCacheSeconds: {
    variable: 'DATA_KEY_CACHE_SECONDS',
    description:
      'how long an instance keeps an unwrapped data key and a key ring in memory before reading them again',
    parse: integer('DATA_KEY_CACHE_SECONDS', 60, 0, 3600),
  } satisfies Entry<number>,
  rewrapBatchSize: {
    variable: 'REWRAP_BATCH_SIZE',
    description: 'rows re-sealed per transaction by the background rewrap',
    parse: integer('REWRAP_BATCH_SIZE', 200, 1, 10_000),
  } satisfies Entry<number>,
  benchUnsafeNullCipher: {
    variable: 'BENCH_UNSAFE_NULL_CIPHER',
    description:
      'benchmarks only: seal with a cipher that does not encrypt, to measure what encryption costs; refused in production',
    parse: flag('BENCH_UNSAFE_NULL_CIPHER', () => false),
  } satisfies Entry<boolean>,
  benchUnsafeNoMessageAudit: {
    variable: 'BENCH_UNSAFE_NO_MESSAGE_AUDIT',
    description:
      'benchmarks only: store messages without their audit entries, to measure what the audit chain costs; refused in production',
    parse: flag('BENCH_UNSAFE_NO_MESSAGE_AUDIT', () => false),
  } satisfies Entry<boolean>,
  auditCheckpointMinutes: {
    variable: 'AUDIT_CHECKPOINT_MINUTES',
    description:
      "how often each organization's audit chain head is signed and published (0: only on demand)",
    parse: integer('AUDIT_CHECKPOINT_MINUTES', 60, 0, 7 * 24 * 60),
  } satisfies Entry<number>,
  signingKeyRotationDays: {
    variable: 'SIGNING_KEY_ROTATION_DAYS',
    description: 'age after which the token signing key is replaced by a new one',
    parse: integer('SIGNING_KEY_ROTATION_DAYS', 30, 1, 365),
  } satisfies Entry<number>,
  accessTokenTtlSeconds: {
    variable: 'ACCESS_TOKEN_TTL_SECONDS',
    description: 'lifetime of access tokens',
    parse: integer('ACCESS_TOKEN_TTL_SECONDS', 3600, 60, 3600),
  } satisfies Entry<number>,
  visitorTokenTtlSeconds: {
    variable: 'VISITOR_TOKEN_TTL_SECONDS',
    description: 'lifetime of a widget visitor token',
    parse: integer('VISITOR_TOKEN_TTL_SECONDS', 2 * 3600, 60, 24 * 3600),
  } satisfies Entry<number>,
  sessionCacheMs: {
    variable: 'SESSION_CACHE_MS',
    description: 'how long a checked session or API key is trusted before it is read again',
    parse: integer('SESSION_CACHE_MS', 1000, 0, 1000),
  } satisfies Entry<number>,
  apiKeyRotationOverlapSeconds: {
    variable: 'API_KEY_ROTATION_OVERLAP_SECONDS',
    description:
      "how long a rotated API key's previous secret keeps working (0: refused at once; at most 7 days)",
    parse: integer('API_KEY_ROTATION_OVERLAP_SECONDS', 24 * 3600, 0, 7 * 24 * 3600),
  } satisfies Entry<number>,
  webhookSecretOverlapSeconds: {
    variable: 'WEBHOOK_SECRET_OVERLAP_SECONDS',
    description:
      "how long a rotated webhook secret's predecessor still signs every delivery beside it (0: not at all; at most 7 days)",
    parse: integer('WEBHOOK_SECRET_OVERLAP_SECONDS', 24 * 3600, 0, 7 * 24 * 3600),
  } satisfies Entry<number>,
  webhookAllowPrivateAddresses: {
    variable: 'WEBHOOK_ALLOW_PRIVATE_ADDRESSES',
    description:
      'allow webhook URLs whose host is or resolves to a loopback, private, link-local, unique-local or metadata address',
    parse: flag('WEBHOOK_ALLOW_PRIVATE_ADDRESSES', () => false),
  } satisfies Entry<boolean>,
  webhookMaxAttempts: {
    variable: 'WEBHOOK_MAX_ATTEMPTS',
    description: 'attempts at one webhook delivery, with back-off, before it is marked failed',
    parse: integer('WEBHOOK_MAX_ATTEMPTS', 8, 1, 20),
  } satisfies Entry<number>,
  socketEventsPerSecond: {
    variable: 'SOCKET_EVENTS_PER_SECOND',
    description:
      'events one socket may send per second, sustained; more are refused with rate_limited acks',
    parse: integer('SOCKET_EVENTS_PER_SECOND', 20, 1, 100_000),
  } satisfies Entry<number>,
  socketEventBurst: {
    variable: 'SOCKET_EVENT_BURST',
    description: 'events one socket may send at once before SOCKET_EVENTS_PER_SECOND applies',
    parse: integer('SOCKET_EVENT_BURST', 100, 1, 1_000_000),
  } satisfies Entry<number>,
  sessionSweepSeconds: {
    variable: 'SESSION_SWEEP_SECONDS',
    description:
      'how often open sockets are checked against sessions that ended by idle time or age',
    parse: integer('SESSION_SWEEP_SECONDS', 15, 1, 300),
  } satisfies Entry<number>,
  rateLimitPerMinute: {
    variable: 'RATE_LIMIT_PER_MINUTE',
    description: 'HTTP requests one client address may make per minute',
    parse: integer('RATE_LIMIT_PER_MINUTE', 1200, 1, 1_000_000),
  } satisfies Entry<number>,
  credentialRateLimitPerMinute: {
    variable: 'CREDENTIAL_RATE_LIMIT_PER_MINUTE',
    description: 'login, signup, refresh and widget-session requests per client address per minute',
    parse: integer('CREDENTIAL_RATE_LIMIT_PER_MINUTE', 60, 1, 1_000_000),
  } satisfies Entry<number>,
  dashboardOrigins: {
    variable: 'DASHBOARD_ORIGINS',
    description:
      'comma-separated origins of the dashboard (https://app.example.com) that may use cookie mode (X-Client: dashboard); unset: cookie mode refuses every origin',
    parse: (raw, env) => {
      try {
        return parseOriginList(raw, env === 'production');
      } catch (error) {
        if (error instanceof OriginListError) {
          throw new ConfigError('DASHBOARD_ORIGINS', error.message);
        }
        throw error;
      }
    },
  } satisfies Entry<string[]>,
  loginFailuresBeforeLock: {
    variable: 'LOGIN_FAILURES_BEFORE_LOCK',
    description:
      'failed sign-ins to one account (organization and email, member or not) within ' +
      'LOGIN_FAILURE_WINDOW_SECONDS that lock it; even the right password is then refused',
    parse: integer('LOGIN_FAILURES_BEFORE_LOCK', 5, 1, 100),
  } satisfies Entry<number>,
  loginFailureWindowSeconds: {
    variable: 'LOGIN_FAILURE_WINDOW_SECONDS',
    description: 'window in which failed sign-ins are counted, per account and per client address',
    parse: integer('LOGIN_FAILURE_WINDOW_SECONDS', 15 * 60, 60, 24 * 3600),
  } satisfies Entry<number>,
  loginLockSeconds: {
    variable: 'LOGIN_LOCK_SECONDS',
    description: 'first lock of an account; each further lock without a successful sign-in doubles',
    parse: integer('LOGIN_LOCK_SECONDS', 60, 1, 24 * 3600),
  } satisfies Entry<number>,
  loginLockMaxSeconds: {
    variable: 'LOGIN_LOCK_MAX_SECONDS',
    description: 'longest timed lock of an account (the doubling stops here)',
    parse: integer('LOGIN_LOCK_MAX_SECONDS', 3600, 1, 7 * 24 * 3600),
  } satisfies Entry<number>,
  loginMaxConsecutiveFailures: {
    variable: 'LOGIN_MAX_CONSECUTIVE_FAILURES',
    description:
      'failed sign-ins in a row, across locks, after which an account stays locked until an ' +
      'admin unlocks it (NIST SP 800-63B-4 allows at most 100; 0 turns this off)',
    parse: integer('LOGIN_MAX_CONSECUTIVE_FAILURES', 100, 0, 100),
  } satisfies Entry<number>,
  loginAddressFailureLimit: {
    variable: 'LOGIN_ADDRESS_FAILURE_LIMIT',
    description:
      'failed sign-ins from one client address (IPv6: its /64), across every account and ' +
      'organization, within LOGIN_FAILURE_WINDOW_SECONDS that block it',
    parse: integer('LOGIN_ADDRESS_FAILURE_LIMIT', 100, 1, 1_000_000),
  } satisfies Entry<number>,
  loginAddressBlockSeconds: {
    variable: 'LOGIN_ADDRESS_BLOCK_SECONDS',
    description: 'how long a blocked client address may not sign in at all',
    parse: integer('LOGIN_ADDRESS_BLOCK_SECONDS', 15 * 60, 1, 24 * 3600),
  } satisfies Entry<number>,
  detectFailedLoginsAccount: {
    variable: 'DETECT_FAILED_LOGINS_ACCOUNT',
    description:
      'failed sign-ins to one account (organization and member, or email digest) per window that raise failed_login_burst_account',
    parse: detectionRule('DETECT_FAILED_LOGINS_ACCOUNT', { threshold: 5, windowSeconds: 300 }),
  } satisfies Entry<DetectionThreshold | null>,
  detectFailedLoginsAddress: {
    variable: 'DETECT_FAILED_LOGINS_ADDRESS',
    description:
      'failed sign-ins from one client address, across accounts, per window that raise failed_login_burst_address',
    parse: detectionRule('DETECT_FAILED_LOGINS_ADDRESS', { threshold: 20, windowSeconds: 300 }),
  } satisfies Entry<DetectionThreshold | null>,
  detectRefreshTokenReuse: {
    variable: 'DETECT_REFRESH_TOKEN_REUSE',
    description: 'reused refresh tokens of one session per window that raise refresh_token_reuse',
    parse: detectionRule('DETECT_REFRESH_TOKEN_REUSE', { threshold: 1, windowSeconds: 3600 }),
  } satisfies Entry<DetectionThreshold | null>,
  detectCrossTenantProbing: {
    variable: 'DETECT_CROSS_TENANT_PROBING',
    description:
      '404 answers on routes with an id by one actor per window that raise cross_tenant_probing',
    parse: detectionRule('DETECT_CROSS_TENANT_PROBING', { threshold: 20, windowSeconds: 300 }),
  } satisfies Entry<DetectionThreshold | null>,
  detectApiKeyNewAddress: {
    variable: 'DETECT_API_KEY_NEW_ADDRESS',
    description:
      'addresses new to one API key per window that raise api_key_new_address (its first address is its baseline)',
    parse: detectionRule('DETECT_API_KEY_NEW_ADDRESS', { threshold: 1, windowSeconds: 86400 }),
  } satisfies Entry<DetectionThreshold | null>,
  detectMassDeletion: {
    variable: 'DETECT_MASS_DELETION',
    description: 'successful DELETE requests by one actor per window that raise mass_deletion',
    parse: detectionRule('DETECT_MASS_DELETION', { threshold: 50, windowSeconds: 300 }),
  } satisfies Entry<DetectionThreshold | null>,
  detectMassExport: {
    variable: 'DETECT_MASS_EXPORT',
    description:
      'successful reads of export and audit-listing routes by one actor per window that raise mass_export',
    parse: detectionRule('DETECT_MASS_EXPORT', { threshold: 50, windowSeconds: 300 }),
  } satisfies Entry<DetectionThreshold | null>,
  detectRateLimitEscalation: {
    variable: 'DETECT_RATE_LIMIT_ESCALATION',
    description: '429 answers to one client address per window that raise rate_limit_escalation',
    parse: detectionRule('DETECT_RATE_LIMIT_ESCALATION', { threshold: 20, windowSeconds: 300 }),
  } satisfies Entry<DetectionThreshold | null>,
  detectAdminPrivilegeChange: {
    variable: 'DETECT_ADMIN_PRIVILEGE_CHANGE',
    description:
      "changes to admin rights or an admin's MFA, per member and kind, per window that raise admin_privilege_change",
    parse: detectionRule('DETECT_ADMIN_PRIVILEGE_CHANGE', { threshold: 1, windowSeconds: 60 }),
  } satisfies Entry<DetectionThreshold | null>,
  incidentJoinWindowMinutes: {
    variable: 'INCIDENT_JOIN_WINDOW_MINUTES',
    description:
      'an alert joins the unresolved incident of the same rule and subject whose last alert is at most this old; otherwise it opens a new one',
    parse: integer('INCIDENT_JOIN_WINDOW_MINUTES', 24 * 60, 1, 30 * 24 * 60),
  } satisfies Entry<number>,
  incidentResponseMinutes: {
    variable: 'INCIDENT_RESPONSE_MINUTES',
    description:
      'response deadline per severity, from the opening of an incident: low,medium,high,critical in minutes (0: immediately)',
    parse: incidentResponseMinutes,
  } satisfies Entry<AppConfig['incidentResponseMinutes']>,
  incidentEscalationIntervalMinutes: {
    variable: 'INCIDENT_ESCALATION_INTERVAL_MINUTES',
    description:
      'an overdue deadline escalates to level 1 when it passes and one level higher per further interval, up to level 3',
    parse: integer('INCIDENT_ESCALATION_INTERVAL_MINUTES', 60, 1, 7 * 24 * 60),
  } satisfies Entry<number>,
  incidentEscalationCheckSeconds: {
    variable: 'INCIDENT_ESCALATION_CHECK_SECONDS',
    description:
      'how often each instance looks for overdue incidents (0: this instance never does; keep it on in at least one)',
    parse: integer('INCIDENT_ESCALATION_CHECK_SECONDS', 60, 0, 3600),
  } satisfies Entry<number>,
  metricsToken: {
    variable: 'METRICS_TOKEN',
    description: 'bearer token required by GET /metrics (unset: open, rely on network policy)',
    secret: true,
    parse: text(),
  } satisfies Entry<string | undefined>,
};

type Schema = typeof CONFIG_SCHEMA;

/** A 32-byte key written as standard base64. */
export function isKeyText(raw: string): boolean {
  return /^[A-Za-z0-9+/]{43}=$/.test(raw) && Buffer.from(raw, 'base64').length === 32;
}

/** Reads and validates the environment once; throws ConfigError naming the first bad variable. */
export function loadConfig(env: NodeJS.ProcessEnv = process.env): AppConfig {
  const nodeEnv = CONFIG_SCHEMA.nodeEnv.parse(env.NODE_ENV);
  const values: Record<string, unknown> = {};
  for (const [key, entry] of Object.entries(CONFIG_SCHEMA) as [keyof Schema, Entry<unknown>][]) {
    values[key] = entry.parse(env[entry.variable], nodeEnv);
  }
  const config = values as unknown as AppConfig;
  config.production = nodeEnv === 'production';
  config.databaseMigrationUrl ??= config.databaseUrl;
  assertTlsPair(config);
  if (config.kek !== undefined && config.kekFile !== undefined) {
    throw new ConfigError('PARLEY_KEK_FILE', 'cannot be set together with PARLEY_KEK');
  }
  if (config.production) {
    if (config.databaseUrl === undefined) {
      throw new ConfigError('DATABASE_URL', 'is required in production');
    }
    if (config.kek === undefined && config.kekFile === undefined) {
      throw new ConfigError('PARLEY_KEK', 'is required in production (or PARLEY_KEK_FILE)');
    }
    if (config.benchUnsafeNullCipher) {
      throw new ConfigError('BENCH_UNSAFE_NULL_CIPHER', 'cannot be on in production');
    }
    if (config.benchUnsafeNoMessageAudit) {
      throw new ConfigError('BENCH_UNSAFE_NO_MESSAGE_AUDIT', 'cannot be on in production');
    }
    if (config.demoSeed) {
      throw new ConfigError('DEMO_SEED', 'cannot be on in production');
    }
  }

  return config;
}

/** The names of secret variables, for redaction and documentation. */
export const SECRET_VARIABLES = Object.values(CONFIG_SCHEMA)
  .filter((entry) => 'secret' in entry && entry.secret)
  .map((entry) => entry.variable);
