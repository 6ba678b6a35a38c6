import { AES_256_GCM, SealedValueError } from './aead';

/**
 * A sealed field value, as stored: `pv1.<key id>.<key version>.<nonce>.<ciphertext+tag>`, the
 * last two in unpadded base64url. The version prefix lets the format change later; the key id
 * and version say which data key opens it; everything but the nonce and ciphertext is also in
 * the additional authenticated data, with the organization, table, column and row it belongs to.
 */
export const ENVELOPE_VERSION = 'pv1';

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;
const KEY_VERSION = /^[1-9][0-9]{0,8}$/;
const BASE64URL = /^[A-Za-z0-9_-]+$/;
const BASE64URL_DIGITS = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_';

/**
 * Whether unpadded base64url text is the one encoding of its bytes: a length that leaves one
 * character over encodes nothing, and the bits the last character carries past the final byte
 * must be zero (Node's decoder drops them, so another text would decode to the same bytes).
 */
function isCanonicalBase64url(text: string): boolean {
  const over = text.length % 4;
  if (over === 1) {
    return false;
  }
  if (over === 0) {
    return true;
  }
  const last = BASE64URL_DIGITS.indexOf(text[text.length - 1]);

  return (last & (over === 2 ? 0b1111 : 0b11)) === 0;
}

export interface Envelope {
  keyId: string;
  version: number;
  nonce: Buffer;
  ciphertext: Buffer;
  tag: Buffer;
}

/** Where a sealed value belongs; a value opened anywhere else fails its authentication. */
export interface SealBinding {
  organizationId: string;
  table: string;
  column: string;
  rowId: string;
}

export function formatEnvelope(envelope: Envelope): string {
  return [
    ENVELOPE_VERSION,
    envelope.keyId,
    String(envelope.version),
    envelope.nonce.toString('base64url'),
    Buffer.concat([envelope.ciphertext, envelope.tag]).toString('base64url'),
  ].join('.');
}

export function parseEnvelope(value: string): Envelope {
  if (typeof value !== 'string') {
    throw new SealedValueError('not a string');
  }
  const parts = value.split('.');
  if (parts[0] !== ENVELOPE_VERSION) {
    throw new SealedValueError('not a sealed value of a known version', 'unsupported_version');
  }
  if (parts.length !== 5) {
    throw new SealedValueError('malformed');
  }
  const [, keyId, version, nonceText, sealedText] = parts;
  if (
    !UUID.test(keyId) ||
    !KEY_VERSION.test(version) ||
    !BASE64URL.test(nonceText) ||
    !BASE64URL.test(sealedText)
  ) {
    throw new SealedValueError('malformed');
  }
  // Base64url that is not the one encoding of its bytes was not written by us.
  if (!isCanonicalBase64url(nonceText) || !isCanonicalBase64url(sealedText)) {
    throw new SealedValueError('malformed');
  }
  const nonce = Buffer.from(nonceText, 'base64url');
  const sealed = Buffer.from(sealedText, 'base64url');
  if (nonce.length !== AES_256_GCM.nonceBytes) {
    throw new SealedValueError(`the nonce must be ${AES_256_GCM.nonceBytes} bytes`, 'wrong_size');
  }
  if (sealed.length < AES_256_GCM.tagBytes) {
    throw new SealedValueError('the tag is missing or truncated', 'wrong_size');
  }

  return {
    keyId,
    version: Number(version),
    nonce,
    ciphertext: sealed.subarray(0, sealed.length - AES_256_GCM.tagBytes),
    tag: sealed.subarray(sealed.length - AES_256_GCM.tagBytes),
  };
}

export function isEnvelope(value: unknown): value is string {
  if (typeof value !== 'string') {
    return false;
  }
  try {
    parseEnvelope(value);

    return true;
  } catch {
    return false;
  }
}

/** The additional authenticated data: the format, the key, and the exact place of the value. */
export function envelopeAad(binding: SealBinding, keyId: string, version: number): Buffer {
  const { organizationId, table, column, rowId } = binding;
  for (const [name, part] of [
    ['organizationId', organizationId],
    ['table', table],
    ['column', column],
    ['rowId', rowId],
  ] as const) {
    if (typeof part !== 'string' || part === '' || part.includes('|')) {
      throw new SealedValueError(`the binding's ${name} is missing or malformed`);
    }
  }

  return Buffer.from(
    `${ENVELOPE_VERSION}|${organizationId}|${table}|${column}|${rowId}|${keyId}|${version}`,
    'utf8',
  );
}
