import { Classified } from '../classification/classification';

import { MAX_REDACTION_DEPTH, REDACTED, isRedactedKey, redactClassified } from './redaction';

/** A marked entity of the test's own; the real entities carry their own marks. */
class Patient {
  @Classified('confidential')
  email!: string;

  @Classified('restricted', { protection: 'hashed' })
  passwordHash!: string;

  @Classified('internal')
  ward!: string;

  @Classified('public')
  id!: string;
}

describe('redactClassified', () => {
  it('redacts the fields the classification marks name, in code and column spelling', () => {
    expect(new Patient()).toBeInstanceOf(Patient);

    expect(
      redactClassified({ email: 'ada@example.com', password_hash: 'h', ward: 'B', id: '1' }),
    ).toEqual({ email: REDACTED, password_hash: REDACTED, ward: 'B', id: '1' });
    expect(isRedactedKey('passwordHash')).toBe(true);
    expect(isRedactedKey('EMAIL')).toBe(true);
    expect(isRedactedKey('ward')).toBe(false);
  });

  it('redacts credentials whether or not any mark names them', () => {
    expect(
      redactClassified({
        password: 'p',
        refreshToken: 'prt_x',
        recoveryCodes: ['a', 'b'],
        headers: { authorization: 'Bearer x', 'x-api-key': 'psk_x', accept: '*/*' },
      }),
    ).toEqual({
      password: REDACTED,
      refreshToken: REDACTED,
      recoveryCodes: REDACTED,
      headers: { authorization: REDACTED, 'x-api-key': REDACTED, accept: '*/*' },
    });
  });

  it('follows a mark given after it first ran', () => {
    expect(redactClassified({ bedNumber: '12B' })).toEqual({ bedNumber: '12B' });

    class Bed {
      @Classified('confidential')
      bedNumber!: string;
    }

    expect(new Bed()).toBeInstanceOf(Bed);
    expect(redactClassified({ bedNumber: '12B' })).toEqual({ bedNumber: REDACTED });
  });

  it('redacts values nested at any depth in objects and arrays', () => {
    const value = {
      a: { b: { c: { email: { address: 'ada@example.com' } } } },
      list: [{ contacts: [{ email: 'grace@example.com', ward: 'C' }] }],
    };

    expect(redactClassified(value)).toEqual({
      a: { b: { c: { email: REDACTED } } },
      list: [{ contacts: [{ email: REDACTED, ward: 'C' }] }],
    });
  });

  it('leaves the input unmodified and shares what did not change', () => {
    const untouched = { ward: 'B', ids: [1, 2] };
    const value = { patient: { email: 'ada@example.com' }, untouched };
    const before = JSON.stringify(value);

    const result = redactClassified(value);

    expect(JSON.stringify(value)).toBe(before);
    expect(result).not.toBe(value);
    expect(result.untouched).toBe(untouched);
  });

  it('returns the same reference when nothing is sensitive', () => {
    const value = { ward: 'B', nested: [{ id: '1' }, 'x', 3, null], when: new Date(0) };

    expect(redactClassified(value)).toBe(value);
    expect(redactClassified('ada@example.com')).toBe('ada@example.com');
    expect(redactClassified(null)).toBeNull();
  });

  it('keeps null and undefined under a sensitive key, which reveal nothing', () => {
    const value = { email: null, passwordHash: undefined };

    expect(redactClassified(value)).toBe(value);
  });

  it('survives cycles and never points back at the unredacted original', () => {
    const value: Record<string, unknown> = { email: 'ada@example.com' };
    value.self = value;

    const result = redactClassified(value);

    expect(result).toEqual({ email: REDACTED, self: '[circular]' });
    expect(JSON.stringify(result)).not.toContain('ada@example.com');
  });

  it('redacts an object reached twice the same way both times', () => {
    const shared = { email: 'ada@example.com' };

    const result = redactClassified({ first: shared, second: shared });

    expect(result).toEqual({ first: { email: REDACTED }, second: { email: REDACTED } });
  });

  it('cuts what nests deeper than the limit', () => {
    let value: Record<string, unknown> = { email: 'ada@example.com' };
    for (let level = 0; level < MAX_REDACTION_DEPTH + 5; level += 1) {
      value = { next: value };
    }

    expect(JSON.stringify(redactClassified(value))).not.toContain('ada@example.com');
    expect(JSON.stringify(redactClassified(value))).toContain('[truncated]');
  });

  it('never throws, even on getters that throw', () => {
    const value = {
      get broken(): string {
        throw new Error('no');
      },
      email: 'ada@example.com',
    };
    const revoked = Proxy.revocable({}, {});
    revoked.revoke();

    expect(redactClassified(value)).toEqual({ broken: '[unreadable]', email: REDACTED });
    expect(redactClassified({ proxy: revoked.proxy, email: 'x' })).toEqual({
      proxy: '[unreadable]',
      email: REDACTED,
    });
    expect(redactClassified(revoked.proxy)).toBe('[unreadable]');
  });

  it('keeps an error an error of its class, with message and stack', () => {
    class LookupError extends Error {
      constructor(
        message: string,
        readonly query: { email: string },
      ) {
        super(message, { cause: new Error('inner', { cause: { email: 'b@example.com' } }) });
      }
    }
    const error = new LookupError('lookup failed', { email: 'ada@example.com' });

    const result = redactClassified({ err: error }).err;

    expect(result).toBeInstanceOf(LookupError);
    expect(result.message).toBe('lookup failed');
    expect(result.stack).toBe(error.stack);
    expect(result.query).toEqual({ email: REDACTED });
    expect((result.cause as Error).message).toBe('inner');
    expect((result.cause as Error).cause).toEqual({ email: REDACTED });
    expect(error.query.email).toBe('ada@example.com');
  });

  it('returns an error with nothing sensitive as it is', () => {
    const error = new Error('plain');

    expect(redactClassified({ err: error }).err).toBe(error);
  });

  it('checks what toJSON would write, and leaves streams and buffers unwalked', async () => {
    const { PassThrough } = await import('node:stream');
    const withJson = { toJSON: () => ({ email: 'ada@example.com' }) };
    const buffer = Buffer.from('ada@example.com');

    expect(redactClassified({ withJson })).toEqual({ withJson: { email: REDACTED } });
    expect(redactClassified({ buffer }).buffer).toBe(buffer);
    expect(redactClassified({ stream: new PassThrough() })).toEqual({ stream: '[PassThrough]' });
  });
});
