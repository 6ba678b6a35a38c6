import { HttpStatus } from '@nestjs/common';

import { ProblemException } from '@parley/core';

export enum AuthErrorCode {
  InvalidCredentials = 'invalid_credentials',
  InvalidToken = 'invalid_token',
  TokenExpired = 'token_expired',
  SessionEnded = 'session_ended',
  InvalidRefreshToken = 'invalid_refresh_token',
  RefreshTokenReused = 'refresh_token_reused',
  SignupDisabled = 'signup_disabled',
  TokenInQuery = 'token_in_query',
  TokenNotAccepted = 'token_not_accepted_here',
}

export class AuthProblem extends ProblemException {
  constructor(code: AuthErrorCode, detail: string, status: number = HttpStatus.UNAUTHORIZED) {
    super(status, code, {
      detail,
      headers:
        status === HttpStatus.UNAUTHORIZED
          ? { 'www-authenticate': 'Bearer realm="parley"' }
          : undefined,
    });
  }
}
