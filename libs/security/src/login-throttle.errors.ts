import { HttpStatus } from '@nestjs/common';

import { ProblemException } from '@parley/core';

export enum LoginThrottleErrorCode {
  AccountLocked = 'account_locked',
  TooManyAttempts = 'too_many_attempts',
}

/** 429 with Retry-After (in whole seconds) when the refusal has an end. */
export class LoginThrottleProblem extends ProblemException {
  constructor(
    code: LoginThrottleErrorCode,
    detail: string,
    readonly retryAfterSeconds: number | null,
  ) {
    super(HttpStatus.TOO_MANY_REQUESTS, code, {
      detail,
      headers:
        retryAfterSeconds === null ? undefined : { 'retry-after': String(retryAfterSeconds) },
    });
  }

  static accountLocked(retryAfterSeconds: number | null): LoginThrottleProblem {
    return new LoginThrottleProblem(
      LoginThrottleErrorCode.AccountLocked,
      retryAfterSeconds === null
        ? 'This account is locked after too many failed sign-ins; an admin must unlock it.'
        : 'This account is locked for a while after too many failed sign-ins; try again later.',
      retryAfterSeconds,
    );
  }

  static tooManyAttempts(retryAfterSeconds: number): LoginThrottleProblem {
    return new LoginThrottleProblem(
      LoginThrottleErrorCode.TooManyAttempts,
      'Too many failed sign-ins from this address; try again later.',
      retryAfterSeconds,
    );
  }
}
