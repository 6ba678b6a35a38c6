import { HttpStatus } from '@nestjs/common';

import { ProblemException } from '@parley/core';

export enum PasswordChangeErrorCode {
  InvalidCurrentPassword = 'invalid_current_password',
  NotAMember = 'password_change_needs_member_session',
}

/** 403, not 401: the caller's token is fine, and a client must not sign the member out for it. */
export class PasswordChangeProblem extends ProblemException {
  constructor(code: PasswordChangeErrorCode, detail: string) {
    super(HttpStatus.FORBIDDEN, code, { detail });
  }
}
