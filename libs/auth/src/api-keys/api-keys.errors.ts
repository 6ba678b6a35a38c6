import { HttpStatus } from '@nestjs/common';

import { ProblemException } from '@parley/core';

export enum ApiKeysErrorCode {
  /** One answer for every refused key: unknown, wrong secret, expired, revoked, rotated out. */
  InvalidApiKey = 'invalid_api_key',
  ScopeNotAllowed = 'scope_not_allowed',
  ApiKeyInactive = 'api_key_inactive',
}

export class ApiKeysProblem extends ProblemException {
  constructor(code: ApiKeysErrorCode, detail: string, status: number) {
    super(status, code, {
      detail,
      headers:
        status === HttpStatus.UNAUTHORIZED
          ? { 'www-authenticate': 'ApiKey realm="parley"' }
          : undefined,
    });
  }
}

export class InvalidApiKeyProblem extends ApiKeysProblem {
  constructor() {
    super(ApiKeysErrorCode.InvalidApiKey, 'The API key is not valid.', HttpStatus.UNAUTHORIZED);
  }
}
