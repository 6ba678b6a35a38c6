import { LookupAddress } from 'node:dns';

import {
  ResolveAll,
  WebhookAddressError,
  assertPublicHost,
  guardedLookup,
  isForbiddenAddress,
  parseWebhookUrl,
} from './webhook-address';

/** A resolver that answers from a table and never asks DNS. */
function fakeResolver(answers: Record<string, string[]>): ResolveAll {
  return (hostname, _options, callback) => {
    const addresses = answers[hostname];
    if (!addresses) {
      callback(Object.assign(new Error('not found'), { code: 'ENOTFOUND' }), []);

      return;
    }
    callback(
      null,
      addresses.map((address) => ({ address, family: address.includes(':') ? 6 : 4 })),
    );
  };
}

function lookupResult(
  lookup: ReturnType<typeof guardedLookup>,
  hostname: string,
  all: boolean,
): Promise<{ error: Error | null; address: string | LookupAddress[] }> {
  return new Promise((resolve) => {
    lookup(hostname, { all } as never, (error, address) => resolve({ error, address }));
  });
}

describe('webhook addresses', () => {
  it.each([
    '127.0.0.1',
    '127.255.0.9',
    '10.1.2.3',
    '172.16.0.1',
    '172.31.255.255',
    '192.168.0.10',
    '169.254.169.254',
    '100.100.100.200',
    '192.0.0.192',
    '0.0.0.0',
    '224.0.0.1',
    '255.255.255.255',
    '::',
    '::1',
    'fe80::1',
    'fe80::1%eth0',
    'fc00::1',
    'fd00:ec2::254',
    'ff02::1',
    '::ffff:127.0.0.1',
    '::ffff:7f00:1',
    '::ffff:169.254.169.254',
    '::10.0.0.1',
    '64:ff9b::a9fe:a9fe',
    '2002:a9fe:a9fe::1',
    'not an address',
  ])('refuses %s', (address) => {
    expect(isForbiddenAddress(address)).toBe(true);
  });

  it.each(['93.184.215.14', '8.8.8.8', '172.32.0.1', '2606:4700:4700::1111', '::ffff:8.8.8.8'])(
    'allows the public address %s',
    (address) => {
      expect(isForbiddenAddress(address)).toBe(false);
    },
  );

  it('accepts http and https outside production and only https in production', () => {
    expect(parseWebhookUrl('http://hooks.example.com/a', { production: false }).href).toBe(
      'http://hooks.example.com/a',
    );
    expect(() => parseWebhookUrl('http://hooks.example.com/a', { production: true })).toThrow(
      WebhookAddressError,
    );
    expect(parseWebhookUrl('https://hooks.example.com/a#x', { production: true }).href).toBe(
      'https://hooks.example.com/a',
    );
    expect(() => parseWebhookUrl('ftp://hooks.example.com/', { production: false })).toThrow(
      /https or http/,
    );
  });

  it('refuses a URL carrying a user name or password', () => {
    expect(() =>
      parseWebhookUrl('https://user:pass@hooks.example.com/', { production: false }),
    ).toThrow(expect.objectContaining({ reason: 'credentials' }));
  });

  it('refuses literal private hosts in every spelling the URL parser accepts', async () => {
    for (const raw of [
      'http://127.0.0.1:8080/',
      'http://0x7f.1/',
      'http://2130706433/',
      'http://[::1]/',
      'http://[::ffff:127.0.0.1]/',
      'http://169.254.169.254/latest/meta-data/',
      'http://localhost/',
      'http://LOCALHOST./',
      'http://api.localhost/',
      'http://metadata.google.internal/',
    ]) {
      const url = parseWebhookUrl(raw, { production: false });
      await expect(assertPublicHost(url, fakeResolver({}))).rejects.toMatchObject({
        reason: 'forbidden_address',
      });
    }
  });

  it('refuses a name when any of its addresses is private, and one that does not resolve', async () => {
    const resolve = fakeResolver({
      'public.example': ['93.184.215.14'],
      'mixed.example': ['93.184.215.14', '10.0.0.5'],
    });

    await expect(
      assertPublicHost(new URL('https://public.example/'), resolve),
    ).resolves.toBeUndefined();
    await expect(
      assertPublicHost(new URL('https://mixed.example/'), resolve),
    ).rejects.toMatchObject({ reason: 'forbidden_address' });
    await expect(
      assertPublicHost(new URL('https://missing.example/'), resolve),
    ).rejects.toMatchObject({ reason: 'unresolvable' });
  });

  it('checks the answer the connection uses, so a name that turned private is refused at delivery', async () => {
    const answers: Record<string, string[]> = { 'rebind.example': ['93.184.215.14'] };
    const lookup = guardedLookup(fakeResolver(answers));

    const before = await lookupResult(lookup, 'rebind.example', false);
    expect(before).toEqual({ error: null, address: '93.184.215.14' });

    answers['rebind.example'] = ['169.254.169.254'];
    const after = await lookupResult(lookup, 'rebind.example', true);
    expect(after.error).toBeInstanceOf(WebhookAddressError);
    expect(after.error).toMatchObject({ reason: 'forbidden_address' });
  });

  it('answers every address when the connection asks for all of them', async () => {
    const lookup = guardedLookup(
      fakeResolver({ 'two.example': ['93.184.215.14', '2606:4700:4700::1111'] }),
    );

    const result = await lookupResult(lookup, 'two.example', true);

    expect(result.error).toBeNull();
    expect(result.address).toEqual([
      { address: '93.184.215.14', family: 4 },
      { address: '2606:4700:4700::1111', family: 6 },
    ]);
  });
});
