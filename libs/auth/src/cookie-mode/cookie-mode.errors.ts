import { HttpStatus } from '@nestjs/common';

import { ProblemException } from '@parley/core';

export enum CookieModeErrorCode {
  OriginNotAllowed = 'origin_not_allowed',
  CsrfTokenInvalid = 'csrf_token_invalid',
}

/** A cookie-mode call refused before its credential is used: always 403, nothing consumed. */
export class CookieModeProblem extends ProblemException {
  constructor(code: CookieModeErrorCode, detail: string) {
    super(HttpStatus.FORBIDDEN, code, { detail });
  }
}
