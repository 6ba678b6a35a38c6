import { HttpStatus, Injectable } from '@nestjs/common';
import { ZxcvbnFactory } from '@zxcvbn-ts/core';
import { adjacencyGraphs, dictionary } from '@zxcvbn-ts/language-common';

import { CommonErrorCode, ProblemException } from '@parley/core';

/**
 * Password lengths in characters (Unicode code points after NFKC), per NIST SP 800-63B-4: no
 * composition rules, a long minimum, and a maximum that is refused, never silently cut.
 */
export const PASSWORD_LENGTH = {
  /** The lowest minimum an organization may set, and only when every role must use MFA. */
  floor: 8,
  /** The minimum of an organization that has not changed its policy. */
  standard: 15,
  max: 256,
} as const;

export enum PasswordErrorCode {
  TooCommon = 'password_too_common',
  Guessable = 'password_guessable',
}

export type PasswordRefusalReason = 'too_short' | 'too_long' | 'too_common' | 'guessable';

export interface PasswordRefusal {
  reason: PasswordRefusalReason;
  message: string;
}

export interface PasswordRules {
  /** The organization's minimum, between PASSWORD_LENGTH.floor and 64. */
  minLength: number;
  /** Words tied to the account (the email's local part, the organization slug). */
  context: string[];
}

/** zxcvbn estimates below a million guesses are patterns (repeats, sequences, keyboard walks). */
const MINIMUM_GUESSES_LOG10 = 6;
/** zxcvbn's matching grows quickly with length; a guessable password shows it within 64. */
const ESTIMATE_LENGTH = 64;
/** Shorter context words (an email like "jo@...") would refuse half of all passwords. */
const CONTEXT_WORD_MIN_LENGTH = 4;
const SERVICE_WORDS = ['parley'];

/** The same normalization the hasher applies, so length and list checks see what is hashed. */
export function normalizePassword(password: string): string {
  return password.normalize('NFKC');
}

export function passwordLength(password: string): number {
  return [...normalizePassword(password)].length;
}

let commonPasswords: Set<string> | undefined;
let estimator: ZxcvbnFactory | undefined;

/** About 49,000 common and breached passwords from @zxcvbn-ts/language-common, lower-cased. */
function commonPasswordList(): Set<string> {
  commonPasswords ??= new Set(
    dictionary['passwords-common'].map((password) => password.toLowerCase()),
  );

  return commonPasswords;
}

function guessEstimator(): ZxcvbnFactory {
  estimator ??= new ZxcvbnFactory({
    dictionary: { ...dictionary },
    graphs: adjacencyGraphs,
    maxLength: ESTIMATE_LENGTH,
  });

  return estimator;
}

export class PasswordProblem extends ProblemException {
  constructor(refusal: PasswordRefusal, field: string) {
    const code =
      refusal.reason === 'too_common'
        ? PasswordErrorCode.TooCommon
        : refusal.reason === 'guessable'
          ? PasswordErrorCode.Guessable
          : CommonErrorCode.ValidationFailed;
    const message = `${field} ${refusal.message}`;
    super(HttpStatus.BAD_REQUEST, code, {
      detail: `Invalid input: ${message}`,
      errors: [{ field, message }],
    });
  }
}

/**
 * Screens a new password: the organization's length bounds, then the common-password list
 * (case-insensitively), then words of the account and patterns zxcvbn finds cheap to guess.
 */
@Injectable()
export class PasswordPolicy {
  screen(password: string, rules: PasswordRules): PasswordRefusal | undefined {
    const normalized = normalizePassword(password);
    const length = [...normalized].length;
    const minLength = Math.max(rules.minLength, PASSWORD_LENGTH.floor);
    if (length < minLength) {
      return { reason: 'too_short', message: `must be at least ${minLength} characters` };
    }
    if (length > PASSWORD_LENGTH.max) {
      return {
        reason: 'too_long',
        message: `must be at most ${PASSWORD_LENGTH.max} characters; it is never shortened`,
      };
    }

    const lower = normalized.toLowerCase();
    if (commonPasswordList().has(lower)) {
      return {
        reason: 'too_common',
        message: 'is on a list of common or breached passwords; choose another',
      };
    }

    const context = [...rules.context, ...SERVICE_WORDS]
      .map((word) => normalizePassword(word).toLowerCase())
      .filter((word) => [...word].length >= CONTEXT_WORD_MIN_LENGTH);
    if (context.some((word) => lower.includes(word))) {
      return {
        reason: 'guessable',
        message: 'must not contain your email name, the organization slug or the service name',
      };
    }

    const estimate = guessEstimator().check(normalized, context);
    if (estimate.guessesLog10 < MINIMUM_GUESSES_LOG10) {
      return {
        reason: 'guessable',
        message:
          'is too easy to guess (a repeated, sequential or keyboard pattern, or common words); ' +
          'a few unrelated words make a strong one',
      };
    }

    return undefined;
  }

  /** Throws a 400 problem naming `field` when the password is refused. */
  assertAcceptable(password: string, rules: PasswordRules, field = 'password'): void {
    const refusal = this.screen(password, rules);
    if (refusal) {
      throw new PasswordProblem(refusal, field);
    }
  }
}

/** The context words of an account: the email's local part and the organization slug. */
export function passwordContext(email: string, organizationSlug?: string): string[] {
  const localPart = email.split('@')[0] ?? '';

  return organizationSlug ? [localPart, organizationSlug] : [localPart];
}
