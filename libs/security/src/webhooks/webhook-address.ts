import { LookupAddress, LookupAllOptions, lookup as dnsLookup } from 'node:dns';
import { BlockList, LookupFunction, isIP } from 'node:net';

/** Why a webhook URL or the address it reaches was refused; the message names no secret. */
export class WebhookAddressError extends Error {
  constructor(
    readonly reason: 'scheme' | 'credentials' | 'forbidden_address' | 'unresolvable',
    message: string,
  ) {
    super(message);
    this.name = 'WebhookAddressError';
  }
}

/** dns.lookup with `all: true`, the one form the checks below call. */
export type ResolveAll = (
  hostname: string,
  options: LookupAllOptions,
  callback: (error: NodeJS.ErrnoException | null, addresses: LookupAddress[]) => void,
) => void;

const FORBIDDEN_IPV4: [string, number][] = [
  ['0.0.0.0', 8], // "this network"
  ['10.0.0.0', 8],
  ['100.64.0.0', 10], // carrier-grade NAT, and Alibaba's metadata service at 100.100.100.200
  ['127.0.0.0', 8],
  ['169.254.0.0', 16], // link-local, and the cloud metadata service at 169.254.169.254
  ['172.16.0.0', 12],
  ['192.0.0.0', 24], // IETF protocol assignments, and Oracle's metadata service at 192.0.0.192
  ['192.0.2.0', 24],
  ['192.88.99.0', 24],
  ['192.168.0.0', 16],
  ['198.18.0.0', 15],
  ['198.51.100.0', 24],
  ['203.0.113.0', 24],
  ['224.0.0.0', 4], // multicast
  ['240.0.0.0', 4], // reserved, and the broadcast address
];

const FORBIDDEN_IPV6: [string, number][] = [
  ['::', 128],
  ['::1', 128],
  ['100::', 64], // discard
  ['2001::', 32], // Teredo
  ['2001:db8::', 32], // documentation
  ['fc00::', 7], // unique-local, and AWS's metadata service at fd00:ec2::254
  ['fe80::', 10], // link-local
  ['fec0::', 10], // the former site-local
  ['ff00::', 8], // multicast
];

const forbidden = new BlockList();
for (const [network, prefix] of FORBIDDEN_IPV4) {
  forbidden.addSubnet(network, prefix, 'ipv4');
}
for (const [network, prefix] of FORBIDDEN_IPV6) {
  forbidden.addSubnet(network, prefix, 'ipv6');
}

/** Names that reach the machine itself or a metadata service without any DNS answer. */
const FORBIDDEN_NAMES = new Set([
  'localhost',
  'metadata',
  'metadata.google.internal',
  'metadata.goog',
  'instance-data',
]);

/** The eight 16-bit groups of an IPv6 address (zone removed), or undefined if it is not one. */
function ipv6Groups(address: string): number[] | undefined {
  const text = address.split('%')[0].toLowerCase();
  if (isIP(text) !== 6) {
    return undefined;
  }
  const [head, tail] = text.includes('::') ? text.split('::') : [text, undefined];
  const toGroups = (part: string): number[] =>
    part === ''
      ? []
      : part.split(':').flatMap((group) => {
          if (group.includes('.')) {
            const [a, b, c, d] = group.split('.').map(Number);

            return [(a << 8) | b, (c << 8) | d];
          }

          return [parseInt(group, 16)];
        });
  const first = toGroups(head);
  if (tail === undefined) {
    return first;
  }
  const last = toGroups(tail);

  return [...first, ...new Array<number>(8 - first.length - last.length).fill(0), ...last];
}

function ipv4From(high: number, low: number): string {
  return [high >> 8, high & 0xff, low >> 8, low & 0xff].join('.');
}

/**
 * The IPv4 address an IPv6 address carries and routes to: IPv4-mapped (::ffff:a.b.c.d),
 * IPv4-compatible (::a.b.c.d), NAT64 (64:ff9b::a.b.c.d) and 6to4 (2002:aabb:ccdd::).
 */
function embeddedIpv4(groups: number[]): string | undefined {
  const zeros = (from: number, to: number) => groups.slice(from, to).every((group) => group === 0);
  if (zeros(0, 5) && (groups[5] === 0xffff || groups[5] === 0)) {
    return ipv4From(groups[6], groups[7]);
  }
  if (groups[0] === 0x64 && groups[1] === 0xff9b && zeros(2, 6)) {
    return ipv4From(groups[6], groups[7]);
  }
  if (groups[0] === 0x2002) {
    return ipv4From(groups[1], groups[2]);
  }

  return undefined;
}

/**
 * Whether an address is loopback, private, link-local, unique-local, a metadata service, or
 * any other address a webhook must not reach. Anything that is not an IP address counts too.
 */
export function isForbiddenAddress(address: string): boolean {
  if (isIP(address) === 4) {
    return forbidden.check(address, 'ipv4');
  }
  const groups = ipv6Groups(address);
  if (!groups) {
    return true;
  }
  const ipv4 = embeddedIpv4(groups);
  if (ipv4 !== undefined && forbidden.check(ipv4, 'ipv4')) {
    return true;
  }

  return forbidden.check(groups.map((group) => group.toString(16)).join(':'), 'ipv6');
}

/** The URL's host without IPv6 brackets or a trailing dot, lower-cased. */
export function hostOf(url: URL): string {
  return url.hostname
    .replace(/^\[(.*)\]$/, '$1')
    .replace(/\.$/, '')
    .toLowerCase();
}

function isForbiddenName(host: string): boolean {
  return FORBIDDEN_NAMES.has(host) || host.endsWith('.localhost');
}

/**
 * Parses a webhook URL: http or https (https only in production), no user name or password.
 * Returns the normalized URL; the address check is separate because it may need DNS.
 */
export function parseWebhookUrl(raw: string, options: { production: boolean }): URL {
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    throw new WebhookAddressError('scheme', 'url must be an absolute http or https URL');
  }
  const schemes = options.production ? ['https:'] : ['https:', 'http:'];
  if (!schemes.includes(url.protocol)) {
    throw new WebhookAddressError(
      'scheme',
      options.production ? 'url must use https' : 'url must use https or http',
    );
  }
  if (url.username !== '' || url.password !== '') {
    throw new WebhookAddressError(
      'credentials',
      'url must not carry a user name or password; the signature authenticates each delivery',
    );
  }
  url.hash = '';

  return url;
}

function resolveWithin(resolve: ResolveAll, host: string, timeoutMs: number) {
  return new Promise<LookupAddress[]>((done, fail) => {
    const timer = setTimeout(
      () => fail(new WebhookAddressError('unresolvable', 'the host did not resolve in time')),
      timeoutMs,
    );
    resolve(host, { all: true, verbatim: true }, (error, addresses) => {
      clearTimeout(timer);
      if (error || addresses.length === 0) {
        fail(new WebhookAddressError('unresolvable', 'the host does not resolve'));

        return;
      }
      done(addresses);
    });
  });
}

/**
 * Refuses a URL whose host is, or resolves to, an address a webhook must not reach. Every
 * address the name resolves to must be allowed, not just the first.
 */
export async function assertPublicHost(
  url: URL,
  resolve: ResolveAll = dnsLookup as unknown as ResolveAll,
  timeoutMs = 2000,
): Promise<void> {
  const host = hostOf(url);
  if (isIP(host) !== 0) {
    if (isForbiddenAddress(host)) {
      throw new WebhookAddressError('forbidden_address', 'url points at a non-public address');
    }

    return;
  }
  if (isForbiddenName(host)) {
    throw new WebhookAddressError('forbidden_address', 'url points at a non-public host');
  }
  const addresses = await resolveWithin(resolve, host, timeoutMs);
  if (addresses.some((entry) => isForbiddenAddress(entry.address))) {
    throw new WebhookAddressError('forbidden_address', 'url resolves to a non-public address');
  }
}

/**
 * A `lookup` for http.request that refuses names resolving to a forbidden address. The check
 * runs on the very answer the connection then uses, so a name that changes its answer between
 * a check and the connection (DNS rebinding) cannot slip through.
 */
export function guardedLookup(
  resolve: ResolveAll = dnsLookup as unknown as ResolveAll,
): LookupFunction {
  return (hostname, options, callback) => {
    if (isForbiddenName(hostname.replace(/\.$/, '').toLowerCase())) {
      callback(new WebhookAddressError('forbidden_address', 'the host is not a public one'), '', 0);

      return;
    }
    resolve(hostname, { ...options, all: true, verbatim: true }, (error, addresses) => {
      if (error || addresses.length === 0) {
        callback(
          error ?? new WebhookAddressError('unresolvable', 'the host does not resolve'),
          '',
          0,
        );

        return;
      }
      if (addresses.some((entry) => isForbiddenAddress(entry.address))) {
        callback(
          new WebhookAddressError('forbidden_address', 'the host resolves to a non-public address'),
          '',
          0,
        );

        return;
      }
      if ((options as { all?: boolean }).all) {
        callback(null, addresses);

        return;
      }
      callback(null, addresses[0].address, addresses[0].family);
    });
  };
}
