import { generateSecret, generateURI, verify } from 'otplib';

/** RFC 6238 with the parameters every authenticator app supports: SHA-1, 6 digits, 30 s. */
export const TOTP_PERIOD_SECONDS = 30;
export const TOTP_ISSUER = 'Parley';

/** Codes of one step before or after the current one are accepted (clock drift, typing time). */
const WINDOW_STEPS = 1;

const TOTP_CODE = /^\d{6}$/;

export function isTotpCode(code: string): boolean {
  return TOTP_CODE.test(code);
}

/** A new 160-bit secret, Base32 encoded (RFC 4226 recommends 160 bits). */
export function createTotpSecret(): string {
  return generateSecret({ length: 20 });
}

export function totpUri(secret: string, label: string): string {
  return generateURI({
    issuer: TOTP_ISSUER,
    label,
    secret,
    algorithm: 'sha1',
    digits: 6,
    period: TOTP_PERIOD_SECONDS,
  });
}

/**
 * The time step `code` was generated for, when it lies within one step of `nowSeconds` and is
 * later than `afterStep` (the last step accepted, so no code works twice); undefined otherwise.
 */
export async function matchTotpStep(
  secret: string,
  code: string,
  nowSeconds: number,
  afterStep: number | null,
): Promise<number | undefined> {
  if (!isTotpCode(code)) {
    return undefined;
  }
  const currentStep = Math.floor(nowSeconds / TOTP_PERIOD_SECONDS);
  // otplib throws when afterTimeStep is past the window; no step in the window could pass then.
  if (afterStep !== null && afterStep >= currentStep + WINDOW_STEPS) {
    return undefined;
  }
  const result = await verify({
    secret,
    token: code,
    epoch: nowSeconds,
    epochTolerance: WINDOW_STEPS * TOTP_PERIOD_SECONDS,
    afterTimeStep: afterStep ?? undefined,
    algorithm: 'sha1',
    digits: 6,
    period: TOTP_PERIOD_SECONDS,
  });

  return result.valid && 'timeStep' in result ? result.timeStep : undefined;
}
