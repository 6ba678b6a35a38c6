import { createHash } from 'node:crypto';

import { accountKey, addressIdentity } from './login-throttle';

describe('login throttle keys', () => {
  it('counts IPv4 addresses one by one, and IPv4-mapped IPv6 as the IPv4 address', () => {
    expect(addressIdentity('203.0.113.7')).toBe('203.0.113.7');
    expect(addressIdentity('::ffff:203.0.113.7')).toBe('203.0.113.7');
  });

  it('counts an IPv6 address by its /64, however it is written', () => {
    const forms = [
      '2001:db8:aa:bb:1:2:3:4',
      '2001:0db8:00aa:00bb::9',
      '2001:DB8:AA:BB:ffff:ffff:ffff:ffff',
      '2001:db8:aa:bb::1%eth0',
    ];

    expect(new Set(forms.map(addressIdentity))).toEqual(new Set(['2001:db8:aa:bb::/64']));
    expect(addressIdentity('2001:db8:aa:bc::1')).toBe('2001:db8:aa:bc::/64');
    expect(addressIdentity('::1')).toBe('0:0:0:0::/64');
  });

  it('keys a member by id and any other email by a keyed digest, never the address itself', () => {
    const secret = Buffer.alloc(32, 1);
    expect(
      accountKey({ userId: '6f1c1a52-8a8e-4a5e-9d55-7c1f1f3a0b11', email: 'a@b.c' }, secret),
    ).toBe('user:6f1c1a52-8a8e-4a5e-9d55-7c1f1f3a0b11');
    const key = accountKey({ email: 'Nobody@Example.com' }, secret);

    expect(key).toMatch(/^email:[0-9a-f]{64}$/);
    expect(key).toBe(accountKey({ email: 'nobody@example.com' }, secret));
    expect(key).not.toContain('nobody');
    // An unkeyed SHA-256 of the address would let anyone holding the table test guesses.
    expect(key.slice('email:'.length)).not.toBe(
      createHash('sha256').update('nobody@example.com').digest('hex'),
    );
    expect(accountKey({ email: 'nobody@example.com' }, Buffer.alloc(32, 2))).not.toBe(key);
  });
});
