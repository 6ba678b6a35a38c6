import { createRecoveryCode, isRecoveryCode, recoveryCodeDigest } from './recovery-codes';
import { matchTotpStep, totpUri } from './totp';

/** RFC 6238 appendix B: the SHA-1 seed "12345678901234567890", Base32 encoded. */
const RFC_SECRET = 'GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ';

describe('TOTP', () => {
  it('accepts the RFC 6238 test vectors (last six digits)', async () => {
    await expect(matchTotpStep(RFC_SECRET, '287082', 59, null)).resolves.toBe(1);
    await expect(matchTotpStep(RFC_SECRET, '081804', 1111111109, null)).resolves.toBe(37037036);
    await expect(matchTotpStep(RFC_SECRET, '005924', 1234567890, null)).resolves.toBe(41152263);
  });

  it('accepts a code one step either side and refuses one two steps away', async () => {
    await expect(matchTotpStep(RFC_SECRET, '287082', 59 + 30, null)).resolves.toBe(1);
    await expect(matchTotpStep(RFC_SECRET, '287082', 59 - 30, null)).resolves.toBe(1);
    await expect(matchTotpStep(RFC_SECRET, '287082', 59 + 60, null)).resolves.toBeUndefined();
  });

  it('refuses a code whose step is not later than the last one accepted', async () => {
    await expect(matchTotpStep(RFC_SECRET, '287082', 59, 1)).resolves.toBeUndefined();
    await expect(matchTotpStep(RFC_SECRET, '287082', 59, 5)).resolves.toBeUndefined();
    await expect(matchTotpStep(RFC_SECRET, '287082', 59, 0)).resolves.toBe(1);
  });

  it('refuses anything but six digits', async () => {
    await expect(matchTotpStep(RFC_SECRET, '94287082', 59, null)).resolves.toBeUndefined();
    await expect(matchTotpStep(RFC_SECRET, '28708a', 59, null)).resolves.toBeUndefined();
  });

  it('names the issuer and the account in the otpauth URI', () => {
    const uri = new URL(totpUri(RFC_SECRET, 'acme:ada@example.com'));

    expect(uri.protocol).toBe('otpauth:');
    expect(uri.searchParams.get('secret')).toBe(RFC_SECRET);
    expect(uri.searchParams.get('issuer')).toBe('Parley');
    expect(decodeURIComponent(uri.pathname)).toContain('acme:ada@example.com');
  });
});

describe('recovery codes', () => {
  it('look like four groups of four and carry no repeats across a batch', () => {
    const codes = Array.from({ length: 100 }, createRecoveryCode);

    for (const code of codes) {
      expect(code).toMatch(/^[a-z2-7]{4}(-[a-z2-7]{4}){3}$/);
      expect(isRecoveryCode(code)).toBe(true);
    }
    expect(new Set(codes).size).toBe(codes.length);
  });

  it('hash the same whatever the case and hyphens', () => {
    const code = createRecoveryCode();

    expect(recoveryCodeDigest(code.toUpperCase().replace(/-/g, ''))).toEqual(
      recoveryCodeDigest(code),
    );
  });
});
