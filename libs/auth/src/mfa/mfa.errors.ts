import { HttpStatus } from '@nestjs/common';

import { ProblemException } from '@parley/core';

export enum MfaErrorCode {
  MfaRequired = 'mfa_required',
  InvalidMfaCode = 'invalid_mfa_code',
  MfaLocked = 'mfa_locked',
  EnrollmentRequired = 'mfa_enrollment_required',
  AlreadyEnrolled = 'mfa_already_enrolled',
  EnrollmentNotStarted = 'mfa_enrollment_not_started',
  NotEnrolled = 'mfa_not_enrolled',
}

export class MfaProblem extends ProblemException {
  constructor(code: MfaErrorCode, detail: string, status: number, retryAfterSeconds?: number) {
    super(status, code, {
      detail,
      headers:
        status === HttpStatus.UNAUTHORIZED
          ? { 'www-authenticate': 'Bearer realm="parley"' }
          : retryAfterSeconds !== undefined
            ? { 'retry-after': String(retryAfterSeconds) }
            : undefined,
    });
  }
}
