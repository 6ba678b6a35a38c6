import crypto, { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';

import { AES_256_GCM, SealedValueError, aesGcmOpen, aesGcmSeal, freshNonce } from './aead';

/** One vector of Wycheproof's aead_test_schema_v1.json; every byte string is hex. */
interface AeadVector {
  tcId: number;
  comment: string;
  flags: string[];
  key: string;
  iv: string;
  aad: string;
  msg: string;
  ct: string;
  tag: string;
  result: 'valid' | 'invalid' | 'acceptable';
}

interface AeadGroup {
  type: string;
  keySize: number;
  ivSize: number;
  tagSize: number;
  tests: AeadVector[];
}

interface AeadFile {
  algorithm: string;
  numberOfTests: number;
  testGroups: AeadGroup[];
}

const FIXTURE = join(__dirname, '../../../test/fixtures/wycheproof/aes_gcm_test.json');
const wycheproof = JSON.parse(readFileSync(FIXTURE, 'utf8')) as AeadFile;

const hex = (value: string): Buffer => Buffer.from(value, 'hex');

const isStrictShape = (group: AeadGroup): boolean =>
  group.keySize === AES_256_GCM.keyBytes * 8 &&
  group.ivSize === AES_256_GCM.nonceBytes * 8 &&
  group.tagSize === AES_256_GCM.tagBytes * 8;

const shapeOf = (group: AeadGroup): string =>
  `${group.keySize}-bit key, ${group.ivSize}-bit nonce, ${group.tagSize}-bit tag`;

const strictGroups = wycheproof.testGroups.filter(isStrictShape);
const otherGroups = wycheproof.testGroups.filter((group) => !isStrictShape(group));
const strictVectors = strictGroups.flatMap((group) => group.tests);
const otherVectors = otherGroups.flatMap((group) => group.tests);
const countOf = (vectors: AeadVector[], result: AeadVector['result']): number =>
  vectors.filter((vector) => vector.result === result).length;

/** Runs `open` and says how it was refused, or 'opened' when it was not. */
function refusal(open: () => unknown): SealedValueError['code'] | 'opened' | 'other error' {
  try {
    open();

    return 'opened';
  } catch (error) {
    return error instanceof SealedValueError ? error.code : 'other error';
  }
}

/** A copy of `value` with one bit flipped. */
function flipBit(value: Buffer, bit: number): Buffer {
  const copy = Buffer.from(value);
  copy[bit >> 3] ^= 1 << (bit & 7);

  return copy;
}

/**
 * Runs `body` and checks it never got as far as creating a node:crypto cipher or decipher, that is,
 * that everything it tried was refused before any encryption or decryption was attempted.
 */
function expectRefusedBeforeCrypto(body: () => void): void {
  const createCipher = jest.spyOn(crypto, 'createCipheriv');
  const createDecipher = jest.spyOn(crypto, 'createDecipheriv');
  try {
    body();

    expect(createCipher).not.toHaveBeenCalled();
    expect(createDecipher).not.toHaveBeenCalled();

    // The spies must see aead.ts's own calls, or the two lines above would prove nothing.
    const key = randomBytes(AES_256_GCM.keyBytes);
    const control = aesGcmSeal(key, Buffer.from('control'), Buffer.alloc(0));
    aesGcmOpen(key, control.nonce, control.ciphertext, control.tag, Buffer.alloc(0));

    expect(createCipher).toHaveBeenCalledTimes(1);
    expect(createDecipher).toHaveBeenCalledTimes(1);
  } finally {
    createCipher.mockRestore();
    createDecipher.mockRestore();
  }
}

describe('AES-256-GCM against the Wycheproof vectors', () => {
  it('reads the file the counts below were taken from', () => {
    expect(wycheproof.algorithm).toBe('AES-GCM');
    expect(wycheproof.testGroups.every((group) => group.type === 'AeadTest')).toBe(true);
    expect(strictVectors.length + otherVectors.length).toBe(wycheproof.numberOfTests);

    // Pinned so that a truncated or swapped fixture fails here instead of passing vacuously.
    expect(wycheproof.numberOfTests).toBe(316);
    expect(strictGroups).toHaveLength(1);
    expect(countOf(strictVectors, 'valid')).toBe(39);
    expect(countOf(strictVectors, 'invalid')).toBe(27);
    // Wycheproof marks nothing 'acceptable' in the 256/96/128 shape (or anywhere in this file), so
    // there is no borderline case to decide. Were one added, this fails and someone must choose: in
    // that shape AES-GCM has no legitimate "acceptable" encoding, so it should be refused.
    expect(
      countOf(
        wycheproof.testGroups.flatMap((group) => group.tests),
        'acceptable',
      ),
    ).toBe(0);
    expect(otherGroups).toHaveLength(44);
    expect(otherVectors).toHaveLength(250);
    expect(countOf(otherVectors, 'valid')).toBe(190);
    expect(countOf(otherVectors, 'invalid')).toBe(60);
  });

  it('sizes every vector as its group says, so the groups below are sorted on real lengths', () => {
    const misSized = wycheproof.testGroups.flatMap((group) =>
      group.tests
        .filter(
          (vector) =>
            hex(vector.key).length * 8 !== group.keySize ||
            hex(vector.iv).length * 8 !== group.ivSize ||
            hex(vector.tag).length * 8 !== group.tagSize,
        )
        .map((vector) => vector.tcId),
    );

    expect(misSized).toEqual([]);
  });

  describe.each(strictGroups.map((group) => [shapeOf(group), group] as const))(
    '%s',
    (_shape, group) => {
      const valid = group.tests.filter((vector) => vector.result === 'valid');
      const invalid = group.tests.filter((vector) => vector.result === 'invalid');

      it(`opens all ${valid.length} valid vectors to their plaintext`, () => {
        const failures: string[] = [];
        let opened = 0;
        for (const vector of valid) {
          try {
            const plaintext = aesGcmOpen(
              hex(vector.key),
              hex(vector.iv),
              hex(vector.ct),
              hex(vector.tag),
              hex(vector.aad),
            );
            if (plaintext.equals(hex(vector.msg))) {
              opened += 1;
            } else {
              failures.push(`tcId ${vector.tcId}: opened to the wrong plaintext`);
            }
          } catch (error) {
            failures.push(`tcId ${vector.tcId}: ${(error as Error).message}`);
          }
        }

        expect(failures).toEqual([]);
        expect(opened).toBe(valid.length);
        expect(opened).toBeGreaterThan(0);
      });

      it(`seals the plaintext of all ${valid.length} valid vectors to their ciphertext and tag`, () => {
        const failures: number[] = [];
        for (const vector of valid) {
          const sealed = aesGcmSeal(
            hex(vector.key),
            hex(vector.msg),
            hex(vector.aad),
            hex(vector.iv),
          );
          if (
            !sealed.nonce.equals(hex(vector.iv)) ||
            !sealed.ciphertext.equals(hex(vector.ct)) ||
            !sealed.tag.equals(hex(vector.tag))
          ) {
            failures.push(vector.tcId);
          }
        }

        expect(failures).toEqual([]);
        expect(valid.length).toBeGreaterThan(0);
      });

      it(`refuses all ${invalid.length} invalid vectors as authentication_failed`, () => {
        // Every invalid vector here has the right sizes (a modified tag), so the refusal must come
        // from the tag check, not from the size checks.
        const failures = invalid
          .map((vector) => ({
            tcId: vector.tcId,
            outcome: refusal(() =>
              aesGcmOpen(
                hex(vector.key),
                hex(vector.iv),
                hex(vector.ct),
                hex(vector.tag),
                hex(vector.aad),
              ),
            ),
          }))
          .filter(({ outcome }) => outcome !== 'authentication_failed');

        expect(failures).toEqual([]);
        expect(invalid.length).toBeGreaterThan(0);
      });
    },
  );

  describe('every other key, nonce or tag size', () => {
    it.each(otherGroups.map((group) => [shapeOf(group), group] as const))(
      '%s: every vector, valid or not, is refused as wrong_size before decrypting',
      (_shape, group) => {
        let failures: string[] = [];
        expectRefusedBeforeCrypto(() => {
          failures = group.tests.flatMap((vector) => {
            const opened = refusal(() =>
              aesGcmOpen(
                hex(vector.key),
                hex(vector.iv),
                hex(vector.ct),
                hex(vector.tag),
                hex(vector.aad),
              ),
            );
            // Sealing checks the key and nonce it is given too (the tag is its output).
            const sealed = refusal(() =>
              aesGcmSeal(hex(vector.key), hex(vector.msg), hex(vector.aad), hex(vector.iv)),
            );

            return opened === 'wrong_size' && sealed === 'wrong_size'
              ? []
              : [`tcId ${vector.tcId} (${vector.result}): open ${opened}, seal ${sealed}`];
          });
        });

        expect(failures).toEqual([]);
        expect(group.tests.length).toBeGreaterThan(0);
      },
    );
  });
});

describe('AES-256-GCM seal and open', () => {
  const key = randomBytes(AES_256_GCM.keyBytes);
  const aad = Buffer.from('org:7f0c/conversation:42/message:body');
  const plaintext = Buffer.from('The customer asked about order 1138.');
  const sealed = aesGcmSeal(key, plaintext, aad);

  const openWith = (
    overrides: Partial<{
      key: Buffer;
      nonce: Buffer;
      ciphertext: Buffer;
      tag: Buffer;
      aad: Buffer;
    }>,
  ) =>
    refusal(() =>
      aesGcmOpen(
        overrides.key ?? key,
        overrides.nonce ?? sealed.nonce,
        overrides.ciphertext ?? sealed.ciphertext,
        overrides.tag ?? sealed.tag,
        overrides.aad ?? aad,
      ),
    );

  it('seals with a 12-byte nonce and a 16-byte tag, and opens what it sealed', () => {
    expect(sealed.nonce).toHaveLength(AES_256_GCM.nonceBytes);
    expect(sealed.tag).toHaveLength(AES_256_GCM.tagBytes);
    expect(sealed.ciphertext).toHaveLength(plaintext.length);
    expect(sealed.ciphertext.equals(plaintext)).toBe(false);
    expect(aesGcmOpen(key, sealed.nonce, sealed.ciphertext, sealed.tag, aad)).toEqual(plaintext);
  });

  it.each([15, 12, 8, 4, 0])(
    'refuses a tag truncated to %d bytes as wrong_size before decrypting',
    (bytes) => {
      expectRefusedBeforeCrypto(() => {
        expect(openWith({ tag: sealed.tag.subarray(0, bytes) })).toBe('wrong_size');
      });
    },
  );

  it('refuses a tag with a byte appended as wrong_size', () => {
    expect(openWith({ tag: Buffer.concat([sealed.tag, Buffer.from([0])]) })).toBe('wrong_size');
  });

  it.each([
    ['key', [0, 16, 24, 31, 33, 64]],
    ['nonce', [0, 1, 8, 11, 13, 16, 32]],
  ] as const)(
    'refuses a %s of any other size as wrong_size, sealing and opening',
    (what, sizes) => {
      for (const bytes of sizes) {
        const other = randomBytes(bytes);
        expect(openWith({ [what]: other })).toBe('wrong_size');
        expect(
          refusal(() =>
            what === 'key'
              ? aesGcmSeal(other, plaintext, aad)
              : aesGcmSeal(key, plaintext, aad, other),
          ),
        ).toBe('wrong_size');
      }
    },
  );

  it.each(['ciphertext', 'tag', 'nonce', 'aad'] as const)(
    'refuses a value with any one bit of its %s flipped as authentication_failed',
    (part) => {
      const original = { ciphertext: sealed.ciphertext, tag: sealed.tag, nonce: sealed.nonce, aad }[
        part
      ];
      const outcomes = new Set<string>();
      for (let bit = 0; bit < original.length * 8; bit += 1) {
        outcomes.add(openWith({ [part]: flipBit(original, bit) }));
      }

      expect(original.length).toBeGreaterThan(0);
      expect([...outcomes]).toEqual(['authentication_failed']);
    },
  );

  it('refuses a ciphertext cut short or lengthened, or the AAD dropped, as authentication_failed', () => {
    expect(openWith({ ciphertext: sealed.ciphertext.subarray(0, -1) })).toBe(
      'authentication_failed',
    );
    expect(openWith({ ciphertext: Buffer.concat([sealed.ciphertext, Buffer.from([0])]) })).toBe(
      'authentication_failed',
    );
    expect(openWith({ aad: Buffer.alloc(0) })).toBe('authentication_failed');
  });

  it('seals and opens an empty plaintext, and still authenticates it', () => {
    const empty = aesGcmSeal(key, Buffer.alloc(0), aad);

    expect(empty.ciphertext).toHaveLength(0);
    expect(empty.tag).toHaveLength(AES_256_GCM.tagBytes);
    expect(aesGcmOpen(key, empty.nonce, empty.ciphertext, empty.tag, aad)).toEqual(Buffer.alloc(0));
    expect(
      refusal(() => aesGcmOpen(key, empty.nonce, empty.ciphertext, flipBit(empty.tag, 0), aad)),
    ).toBe('authentication_failed');
    expect(
      refusal(() => aesGcmOpen(key, empty.nonce, empty.ciphertext, empty.tag, Buffer.from('x'))),
    ).toBe('authentication_failed');
  });

  it('draws a fresh nonce for every seal of the same plaintext', () => {
    const seals = Array.from({ length: 64 }, () => aesGcmSeal(key, plaintext, aad));
    const nonces = new Set(seals.map((seal) => seal.nonce.toString('hex')));

    expect(nonces.size).toBe(seals.length);
    expect(new Set(seals.map((seal) => seal.ciphertext.toString('hex'))).size).toBe(seals.length);
    for (const seal of seals) {
      expect(aesGcmOpen(key, seal.nonce, seal.ciphertext, seal.tag, aad)).toEqual(plaintext);
    }
  });

  it('hands out each pooled nonce once, across refills, and never rewrites one already given', () => {
    // Several refills' worth, so slices from old and new pools are compared with each other.
    const nonces = Array.from({ length: 2_000 }, () => freshNonce());
    const copies = nonces.map((nonce) => Buffer.from(nonce));
    const distinct = new Set(nonces.map((nonce) => nonce.toString('hex')));
    const drawnLater = Array.from({ length: 2_000 }, () => freshNonce());

    expect(nonces.every((nonce) => nonce.length === AES_256_GCM.nonceBytes)).toBe(true);
    expect(distinct.size).toBe(nonces.length);
    expect(drawnLater.some((nonce) => distinct.has(nonce.toString('hex')))).toBe(false);
    expect(nonces.every((nonce, index) => nonce.equals(copies[index]))).toBe(true);
  });

  it('refuses a wrong key as authentication_failed, even one a single bit away', () => {
    expect(openWith({ key: randomBytes(AES_256_GCM.keyBytes) })).toBe('authentication_failed');
    expect(openWith({ key: flipBit(key, 0) })).toBe('authentication_failed');
    expect(openWith({ key: flipBit(key, 255) })).toBe('authentication_failed');
  });

  it('says only that a forgery failed, not what was wrong', () => {
    const forged = () =>
      aesGcmOpen(key, sealed.nonce, sealed.ciphertext, flipBit(sealed.tag, 7), aad);

    expect(forged).toThrow(SealedValueError);
    expect(forged).toThrow(
      /^Sealed value refused: it was altered, moved, or sealed under another key$/,
    );
  });
});
