const LOOPBACK_HOSTS = ['localhost', '127.0.0.1', '[::1]'];

/** Why an origin list was refused; the config schema reports it under the variable's name. */
export class OriginListError extends Error {
  constructor(reason: string) {
    super(reason);
    this.name = 'OriginListError';
  }
}

/**
 * A comma-separated list of web origins (`https://app.example.com`), each reduced to the exact
 * form browsers send in the Origin header. A path, query, user name or wildcard is refused, and so
 * is plain http to anything but a loopback host when `requireHttps` is set: browsers keep Secure
 * cookies only over https or on localhost.
 */
export function parseOriginList(raw: string | undefined, requireHttps: boolean): string[] {
  if (raw === undefined || raw.trim() === '') {
    return [];
  }
  const origins = raw.split(',').map((entry) => parseOrigin(entry.trim(), requireHttps));

  return [...new Set(origins)];
}

function parseOrigin(entry: string, requireHttps: boolean): string {
  if (entry === '' || entry.includes('*')) {
    throw new OriginListError('must list full origins such as https://app.example.com');
  }
  let url: URL;
  try {
    url = new URL(entry);
  } catch {
    throw new OriginListError(`has "${entry}", which is not an origin`);
  }
  if (url.protocol !== 'https:' && url.protocol !== 'http:') {
    throw new OriginListError(`has "${entry}": an origin starts with https:// or http://`);
  }
  if (url.username || url.password || url.search || url.hash || url.pathname !== '/') {
    throw new OriginListError(`has "${entry}": an origin has no path, query or user name`);
  }
  if (requireHttps && url.protocol === 'http:' && !LOOPBACK_HOSTS.includes(url.hostname)) {
    throw new OriginListError(`has "${entry}": production needs https`);
  }

  return url.origin;
}
