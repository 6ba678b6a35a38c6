import { HttpException, HttpStatus } from '@nestjs/common';

import { redactClassified } from '../logging/redaction';

export interface ProblemFieldError {
  field: string;
  message: string;
}

export interface ProblemOptions {
  detail?: string;
  errors?: ProblemFieldError[];
  cause?: unknown;
  headers?: Record<string, string>;
}

const TITLES: Record<number, string> = {
  400: 'Bad Request',
  401: 'Unauthorized',
  403: 'Forbidden',
  404: 'Not Found',
  405: 'Method Not Allowed',
  409: 'Conflict',
  413: 'Content Too Large',
  415: 'Unsupported Media Type',
  422: 'Unprocessable Content',
  429: 'Too Many Requests',
  500: 'Internal Server Error',
  503: 'Service Unavailable',
};

export function titleForStatus(status: number): string {
  return TITLES[status] ?? 'Error';
}

/**
 * The one exception features throw: a status, a stable machine code and a safe detail.
 * Feature libraries wrap it with their own code enums.
 */
export class ProblemException extends HttpException {
  readonly code: string;
  readonly detail: string;
  readonly errors?: ProblemFieldError[];
  readonly headers?: Record<string, string>;

  constructor(status: HttpStatus | number, code: string, options: ProblemOptions = {}) {
    const detail = options.detail ?? titleForStatus(status);
    super({ code, detail }, status, { cause: options.cause });
    this.code = code;
    this.detail = detail;
    this.errors = options.errors && redactClassified(options.errors);
    this.headers = options.headers;
  }
}

/** Codes shared by every feature; each feature adds its own enum beside these. */
export enum CommonErrorCode {
  ValidationFailed = 'validation_failed',
  InvalidJson = 'invalid_json',
  PayloadTooLarge = 'payload_too_large',
  UnsupportedMediaType = 'unsupported_media_type',
  NotFound = 'not_found',
  RouteNotFound = 'route_not_found',
  UnknownEvent = 'unknown_event',
  MethodNotAllowed = 'method_not_allowed',
  Unauthenticated = 'unauthenticated',
  Forbidden = 'forbidden',
  Conflict = 'conflict',
  RateLimited = 'rate_limited',
  Internal = 'internal_error',
  SealedValueRefused = 'sealed_value_refused',
  Unavailable = 'service_unavailable',
}

export class NotFoundProblem extends ProblemException {
  constructor(what = 'resource') {
    super(HttpStatus.NOT_FOUND, CommonErrorCode.NotFound, {
      detail: `The ${what} does not exist.`,
    });
  }
}

export class ForbiddenProblem extends ProblemException {
  constructor(detail = 'Your role does not allow this action.') {
    super(HttpStatus.FORBIDDEN, CommonErrorCode.Forbidden, { detail });
  }
}

export class UnauthenticatedProblem extends ProblemException {
  constructor(
    code: string = CommonErrorCode.Unauthenticated,
    detail = 'Authentication is required.',
  ) {
    super(HttpStatus.UNAUTHORIZED, code, { detail });
  }
}
