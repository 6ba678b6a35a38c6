import { createServer } from 'node:http';
import { AddressInfo } from 'node:net';

import { Logger as PinoInstance } from 'pino';
import pinoHttp, { Options } from 'pino-http';

import { Classified } from '../classification/classification';
import { AppConfig } from '../config/config.schema';

import { loggerParams } from './logging';
import { safeError } from './safe-error';

class Customer {
  @Classified('confidential')
  email!: string;

  @Classified('confidential')
  phone!: string;
}

const EMAIL = 'ada.lovelace@example.com';
const PHONE = '+44 20 7946 0958';

/** Every line a logger writes, as text and parsed. */
class Lines {
  readonly lines: string[] = [];

  write(line: string): void {
    this.lines.push(line);
  }

  entries(): Record<string, unknown>[] {
    return this.lines.map((line) => JSON.parse(line) as Record<string, unknown>);
  }

  text(): string {
    return this.lines.join('');
  }
}

/** The pino-http instance the server builds, with the options loggerParams gives it. */
function buildLogger(lines: Lines) {
  const [options, destination] = loggerParams({ logLevel: 'trace' } as AppConfig, lines)
    .pinoHttp as [Options, Lines];

  return pinoHttp(options, destination);
}

describe('log redaction through pino', () => {
  let lines: Lines;
  let logger: PinoInstance;

  beforeEach(() => {
    expect(new Customer()).toBeInstanceOf(Customer);
    lines = new Lines();
    logger = buildLogger(lines).logger;
  });

  it('removes a value nested four levels deep under a marked field', () => {
    logger.info({ a: { b: { c: { email: { address: EMAIL } } } } }, 'nested');

    expect(lines.text()).not.toContain(EMAIL);
    expect(lines.entries()[0]).toEqual(
      expect.objectContaining({ a: { b: { c: { email: '[redacted]' } } }, message: 'nested' }),
    );
  });

  it('removes marked values from arrays, child bindings and interpolated objects', () => {
    logger
      .child({ customer: { phone: PHONE } })
      .warn({ batch: [{ contact: { email: EMAIL } }] }, 'imported %j', {
        rows: [{ phone: PHONE }],
      });

    expect(lines.text()).not.toContain(EMAIL);
    expect(lines.text()).not.toContain(PHONE);
    expect(lines.entries()[0]).toEqual(
      expect.objectContaining({
        customer: { phone: '[redacted]' },
        batch: [{ contact: { email: '[redacted]' } }],
        message: 'imported {"rows":[{"phone":"[redacted]"}]}',
      }),
    );
  });

  it('keeps type, message and stack of an error, and redacts its own fields', () => {
    const error = Object.assign(new TypeError('lookup failed'), { query: { email: EMAIL } });

    logger.error({ err: error }, 'failed');
    logger.error({ err: safeError(new RangeError('out of range')) }, 'failed safely');

    const [raw, safe] = lines.entries();
    expect(lines.text()).not.toContain(EMAIL);
    expect(raw.err).toEqual(
      expect.objectContaining({
        type: 'TypeError',
        message: 'lookup failed',
        stack: expect.stringContaining('TypeError: lookup failed'),
        query: { email: '[redacted]' },
      }),
    );
    expect(safe.err).toEqual(
      expect.objectContaining({
        type: 'RangeError',
        message: 'out of range',
        stack: expect.stringContaining('RangeError: out of range'),
      }),
    );
    expect(error.query.email).toBe(EMAIL);
  });

  it('removes credentials at any depth and keeps everything else', () => {
    logger.info({ session: { tokens: { refreshToken: 'prt_secret_value' } }, count: 3 }, 'x');

    expect(lines.text()).not.toContain('prt_secret_value');
    expect(lines.entries()[0]).toEqual(
      expect.objectContaining({ session: { tokens: { refreshToken: '[redacted]' } }, count: 3 }),
    );
  });

  it('redacts what request handlers log and still logs the request without its headers', async () => {
    const http = buildLogger(lines);
    const server = createServer((req, res) => {
      http(req, res);
      req.log.info({ body: { contact: { profile: { email: EMAIL } } } }, 'handled');
      res.end('ok');
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    try {
      const { port } = server.address() as AddressInfo;
      const response = await fetch(`http://127.0.0.1:${port}/api/v1/contacts?email=${EMAIL}`, {
        headers: { authorization: 'Bearer not-a-real-token', 'x-phone': PHONE },
      });
      await response.text();
      await new Promise((resolve) => setImmediate(resolve));
    } finally {
      await new Promise((resolve) => server.close(resolve));
    }

    const handled = lines.entries().find((entry) => entry.message === 'handled');
    const completed = lines.entries().find((entry) => entry.message === 'request completed');
    expect(lines.text()).not.toContain(EMAIL);
    expect(lines.text()).not.toContain(PHONE);
    expect(lines.text()).not.toContain('not-a-real-token');
    expect(handled).toEqual(
      expect.objectContaining({ body: { contact: { profile: { email: '[redacted]' } } } }),
    );
    expect(completed).toEqual(
      expect.objectContaining({
        req: expect.objectContaining({ method: 'GET', url: '/api/v1/contacts' }),
        res: { statusCode: 200 },
      }),
    );
  });
});
