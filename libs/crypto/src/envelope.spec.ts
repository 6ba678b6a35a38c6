import { randomBytes, randomUUID } from 'node:crypto';

import { SealedValueError } from './aead';
import { formatEnvelope, parseEnvelope } from './envelope';

function refusal(value: string): string {
  try {
    parseEnvelope(value);

    return 'parsed';
  } catch (error) {
    return error instanceof SealedValueError ? error.code : `other: ${String(error)}`;
  }
}

/** The same envelope with its last part replaced. */
function withSealedPart(envelope: string, sealedText: string): string {
  return [...envelope.split('.').slice(0, 4), sealedText].join('.');
}

describe('parseEnvelope', () => {
  // 1 to 40 bytes of ciphertext cover all three remainders of the base64url length.
  const envelopes = Array.from({ length: 40 }, (_, index) =>
    formatEnvelope({
      keyId: randomUUID(),
      version: 1 + index,
      nonce: randomBytes(12),
      ciphertext: randomBytes(index + 1),
      tag: randomBytes(16),
    }),
  );

  it('reads back every envelope it formats, whatever the length of the ciphertext', () => {
    for (const envelope of envelopes) {
      const parsed = parseEnvelope(envelope);

      expect(formatEnvelope(parsed)).toBe(envelope);
    }
  });

  it('refuses base64url whose last character carries bits past the final byte', () => {
    const tampered = envelopes.flatMap((envelope) => {
      const sealedText = envelope.split('.')[4];
      if (sealedText.length % 4 === 0) {
        return [];
      }
      // The next digit differs only in the low bits, which decode to the same bytes.
      const last = sealedText[sealedText.length - 1];
      const next = last === 'A' ? 'B' : last === 'Q' ? 'R' : last === 'g' ? 'h' : 'x';

      return [withSealedPart(envelope, `${sealedText.slice(0, -1)}${next}`)];
    });

    expect(tampered.length).toBeGreaterThan(20);
    expect(tampered.map(refusal)).toEqual(tampered.map(() => 'malformed'));
  });

  it('refuses a length no base64url encoding has, padding, and characters outside base64url', () => {
    const envelope = envelopes[0];
    const sealedText = envelope.split('.')[4];
    // A whole number of four-character groups and one character more.
    const oneOver = `${sealedText.slice(0, sealedText.length - (sealedText.length % 4))}A`;
    const cases = [
      withSealedPart(envelope, oneOver),
      withSealedPart(envelope, `${sealedText}==`),
      withSealedPart(envelope, `+/${sealedText.slice(2)}`),
    ];

    expect(cases.map((value) => value.split('.')[4].length % 4)).toContain(1);
    expect(cases.map(refusal)).toEqual(['malformed', 'malformed', 'malformed']);
  });
});
