import { types } from 'node:util';

import { sensitiveFieldNames } from '../classification/classification';

/** What a removed value is replaced with. */
export const REDACTED = '[redacted]';

/**
 * Credentials that are no stored field (or not only one), removed wherever they appear beside
 * the confidential and restricted fields the classification marks name. Header names are here
 * too, for a headers object logged or stored anywhere other than `req.headers`.
 */
export const CREDENTIAL_FIELD_NAMES: readonly string[] = [
  'password',
  'currentPassword',
  'newPassword',
  'token',
  'accessToken',
  'refreshToken',
  'visitorToken',
  'widgetKey',
  'secret',
  'mfaCode',
  'otpauthUri',
  'recoveryCodes',
  'csrfToken',
  'apiKey',
  'authorization',
  'cookie',
  'set-cookie',
  'x-api-key',
  'x-csrf-token',
];

/** Deeper than this a subtree is replaced whole: pino prints no more than five levels anyway. */
export const MAX_REDACTION_DEPTH = 12;

const TRUNCATED = '[truncated]';
const CIRCULAR = '[circular]';
const UNREADABLE = '[unreadable]';
const FAILED = '[redaction failed]';
/** What `read` returns for a property whose getter throws; always written as `UNREADABLE`. */
const THREW = Symbol('threw');

/** `createdAt`, `created_at` and `Created-At` name one field. */
function normalize(key: string): string {
  return key.toLowerCase().replace(/[-_]/g, '');
}

interface KeyCache {
  source: ReadonlySet<string>;
  keys: ReadonlySet<string>;
  pattern: RegExp;
}

let keyCache: KeyCache | undefined;

function snakeCase(name: string): string {
  return name.replace(/[A-Z]/g, (letter) => `_${letter.toLowerCase()}`);
}

function escapeRegExp(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

function currentKeys(): KeyCache {
  const source = sensitiveFieldNames();
  if (keyCache?.source !== source) {
    const names = [...source, ...CREDENTIAL_FIELD_NAMES, ...CREDENTIAL_FIELD_NAMES.map(snakeCase)];
    keyCache = {
      source,
      keys: new Set(names.map(normalize)),
      pattern: new RegExp(
        `"(?:${[...new Set(names)].map(escapeRegExp).join('|')})":(?!"\\[redacted\\]"|null)`,
        'i',
      ),
    };
  }

  return keyCache;
}

/** The normalized names to redact; rebuilt only when the classification marks change. */
export function redactedKeys(): ReadonlySet<string> {
  return currentKeys().keys;
}

/**
 * Finds, in a JSON text, a key that `redactClassified` removes with a value that is not
 * already `[redacted]` (or null): a cheap test before parsing a finished log line.
 */
export function unredactedKeyPattern(): RegExp {
  return currentKeys().pattern;
}

/** True when a value under this key is removed by `redactClassified`. */
export function isRedactedKey(key: string): boolean {
  return redactedKeys().has(normalize(key));
}

/** Objects whose own keys are not what gets printed or stored: left as they are. */
function isOpaque(value: object): boolean {
  return (
    value instanceof Date ||
    value instanceof RegExp ||
    value instanceof Map ||
    value instanceof Set ||
    value instanceof WeakMap ||
    value instanceof WeakSet ||
    value instanceof Promise ||
    value instanceof ArrayBuffer ||
    ArrayBuffer.isView(value)
  );
}

/** Streams, sockets, requests and servers: never walked, never printed. */
function isEmitter(value: object): boolean {
  const candidate = value as { on?: unknown; emit?: unknown };

  return typeof candidate.on === 'function' && typeof candidate.emit === 'function';
}

function constructorName(value: object): string {
  const name = (value as { constructor?: { name?: unknown } }).constructor?.name;

  return typeof name === 'string' && name !== '' ? name : 'object';
}

function read(value: object, key: PropertyKey): unknown {
  try {
    return (value as Record<PropertyKey, unknown>)[key];
  } catch {
    return THREW;
  }
}

/** One redaction: remembers what each object became, so shared subtrees are redacted alike. */
class Walk {
  private readonly done = new Map<object, unknown>();
  private readonly active = new Set<object>();

  constructor(private readonly keys: ReadonlySet<string>) {}

  visit(value: unknown, depth: number): unknown {
    if (value === THREW) {
      return UNREADABLE;
    }
    if (value === null || typeof value !== 'object') {
      return value;
    }
    if (this.done.has(value)) {
      return this.done.get(value);
    }
    if (this.active.has(value)) {
      // Pointing back at the original would print what the copy above it removed.
      return CIRCULAR;
    }
    if (depth >= MAX_REDACTION_DEPTH) {
      return TRUNCATED;
    }
    this.active.add(value);
    let result: unknown;
    try {
      result = this.children(value, depth);
    } catch {
      // A revoked proxy, say: what cannot be read is not printed either.
      result = UNREADABLE;
    } finally {
      this.active.delete(value);
    }
    this.done.set(value, result);

    return result;
  }

  private children(value: object, depth: number): unknown {
    if (isOpaque(value)) {
      return value;
    }
    if (isEmitter(value)) {
      return `[${constructorName(value)}]`;
    }
    if (Array.isArray(value)) {
      return this.array(value, depth);
    }
    if (value instanceof Error || types.isNativeError(value)) {
      return this.error(value as Error, depth);
    }
    const toJSON = read(value, 'toJSON');
    if (typeof toJSON === 'function') {
      // What JSON.stringify (and so pino and the jsonb column) would write is what is checked.
      let json: unknown;
      try {
        json = (toJSON as () => unknown).call(value);
      } catch {
        return UNREADABLE;
      }
      if (json !== value) {
        const redacted = this.visit(json, depth);

        return redacted === json ? value : redacted;
      }
    }

    return this.object(value, depth);
  }

  private array(value: unknown[], depth: number): unknown[] {
    let copy: unknown[] | undefined;
    for (let index = 0; index < value.length; index += 1) {
      const item = read(value, index);
      const next = this.visit(item, depth + 1);
      if (next !== item) {
        copy ??= value.slice();
        copy[index] = next;
      }
    }

    return copy ?? value;
  }

  /** What each own enumerable key becomes, and whether any of them changed. */
  private entries(
    value: object,
    depth: number,
  ): { entries: [string, unknown][]; changed: boolean } {
    let changed = false;
    const entries: [string, unknown][] = [];
    for (const key of Object.keys(value)) {
      const item = read(value, key);
      const next =
        item !== null && item !== undefined && this.keys.has(normalize(key))
          ? REDACTED
          : this.visit(item, depth + 1);
      changed ||= next !== item;
      entries.push([key, next]);
    }

    return { entries, changed };
  }

  private object(value: object, depth: number): object {
    const { entries, changed } = this.entries(value, depth);

    return changed ? Object.fromEntries(entries) : value;
  }

  /**
   * An error stays an error of its class, with its message and stack, so pino's serializer still
   * writes `type`, `message` and `stack`; its own fields and its cause are redacted like any.
   */
  private error(value: Error, depth: number): Error {
    const own = this.entries(value, depth);
    const hidden: [string, unknown][] = [];
    let changed = own.changed;
    for (const key of ['cause', 'errors']) {
      if (Object.prototype.hasOwnProperty.call(value, key)) {
        const item = read(value, key);
        const next = this.visit(item, depth + 1);
        changed ||= next !== item;
        hidden.push([key, next]);
      }
    }
    if (!changed) {
      return value;
    }
    const copy = Object.create(Object.getPrototypeOf(value) as object) as Error;
    const define = (key: string, item: unknown): void => {
      Object.defineProperty(copy, key, {
        value: item,
        enumerable: Object.prototype.propertyIsEnumerable.call(value, key),
        writable: true,
        configurable: true,
      });
    };
    for (const key of ['message', 'stack']) {
      const item = read(value, key);
      if (typeof item === 'string') {
        define(key, item);
      }
    }
    for (const [key, item] of [...own.entries, ...hidden]) {
      define(key, item);
    }

    return copy;
  }
}

/**
 * Removes every confidential and restricted value, and every credential, from a value about to
 * be logged, sent in an error or stored in an audit entry: the value under any key that
 * `sensitiveFieldNames()` or `CREDENTIAL_FIELD_NAMES` names (in any case, camel or snake) becomes
 * `[redacted]`, at any depth of objects, arrays and errors. The input is never modified: what
 * changed is copied, everything else is shared, and a value with nothing to remove comes back
 * as the same reference. Cycles become `[circular]`, subtrees deeper than
 * `MAX_REDACTION_DEPTH` become `[truncated]`, streams and sockets their class name; it never
 * throws.
 */
export function redactClassified<T>(value: T): T {
  if (value === null || typeof value !== 'object') {
    return value;
  }
  try {
    return new Walk(redactedKeys()).visit(value, 0) as T;
  } catch {
    return FAILED as T;
  }
}
