import { ArgumentsHost, Catch, ExceptionFilter, HttpException, Logger } from '@nestjs/common';
import { ClsServiceManager } from 'nestjs-cls';

import { redactClassified } from '../logging/redaction';
import { safeError } from '../logging/safe-error';
import {
  CommonErrorCode,
  ProblemException,
  ProblemFieldError,
  titleForStatus,
} from './problem.exception';

export interface ProblemBody {
  type: string;
  status: number;
  title: string;
  detail: string;
  code: string;
  requestId: string | undefined;
  errors?: ProblemFieldError[];
}

interface FastifyLikeError {
  statusCode?: number;
  code?: string;
  message?: string;
}

const FASTIFY_CODES: Record<string, { status: number; code: string; detail: string }> = {
  FST_ERR_CTP_BODY_TOO_LARGE: {
    status: 413,
    code: CommonErrorCode.PayloadTooLarge,
    detail: 'The request body is larger than this server accepts.',
  },
  FST_ERR_CTP_INVALID_MEDIA_TYPE: {
    status: 415,
    code: CommonErrorCode.UnsupportedMediaType,
    detail: 'Send the request body as application/json.',
  },
  FST_ERR_CTP_EMPTY_JSON_BODY: {
    status: 400,
    code: CommonErrorCode.InvalidJson,
    detail: 'The request declares a JSON body but sends none.',
  },
  FST_ERR_CTP_INVALID_JSON_BODY: {
    status: 400,
    code: CommonErrorCode.InvalidJson,
    detail: 'The request body is not valid JSON.',
  },
  FST_ERR_CTP_INVALID_CONTENT_LENGTH: {
    status: 400,
    code: CommonErrorCode.InvalidJson,
    detail: 'The Content-Length header does not match the body.',
  },
};

/** Turns any error into an RFC 9457 problem; only ProblemException details reach the client. */
export function toProblem(error: unknown, requestId: string | undefined): ProblemBody {
  if (error instanceof ProblemException) {
    return problem(error.getStatus(), error.code, error.detail, requestId, error.errors);
  }
  if (error instanceof HttpException) {
    const status = error.getStatus();

    return problem(status, codeForStatus(status), safeDetail(status), requestId);
  }
  const fastifyError = error as FastifyLikeError;
  if (fastifyError && typeof fastifyError.code === 'string') {
    const known = FASTIFY_CODES[fastifyError.code];
    if (known) {
      return problem(known.status, known.code, known.detail, requestId);
    }
    if (
      /prototype|constructor/i.test(fastifyError.message ?? '') &&
      fastifyError.statusCode === 400
    ) {
      return problem(
        400,
        CommonErrorCode.InvalidJson,
        'The body uses a forbidden key (__proto__ or constructor).',
        requestId,
      );
    }
  }
  if (error instanceof SyntaxError && (error as FastifyLikeError).statusCode === 400) {
    return problem(
      400,
      CommonErrorCode.InvalidJson,
      'The request body is not valid JSON.',
      requestId,
    );
  }
  if (
    fastifyError &&
    typeof fastifyError.statusCode === 'number' &&
    fastifyError.statusCode >= 400 &&
    fastifyError.statusCode < 500
  ) {
    return problem(
      fastifyError.statusCode,
      codeForStatus(fastifyError.statusCode),
      safeDetail(fastifyError.statusCode),
      requestId,
    );
  }

  // A stored value that failed to open (moved, altered, or its key destroyed or retired): the
  // data is unreadable, not the request wrong. The detail names no value and no key.
  if (error instanceof Error && error.name === 'SealedValueError') {
    return problem(
      500,
      CommonErrorCode.SealedValueRefused,
      'A stored value could not be opened: it was altered or moved, or its key is gone. Quote the request id.',
      requestId,
    );
  }

  return problem(
    500,
    CommonErrorCode.Internal,
    'Something went wrong on our side; quote the request id.',
    requestId,
  );
}

function problem(
  status: number,
  code: string,
  detail: string,
  requestId: string | undefined,
  errors?: ProblemFieldError[],
): ProblemBody {
  const body: ProblemBody = {
    type: `https://parley.dev/problems/${code.replace(/_/g, '-')}`,
    status,
    title: titleForStatus(status),
    detail,
    code,
    requestId,
  };
  if (errors && errors.length > 0) {
    // Extension members never carry a confidential value, whoever built them.
    body.errors = redactClassified(errors);
  }

  return body;
}

function codeForStatus(status: number): string {
  switch (status) {
    case 400:
      return CommonErrorCode.ValidationFailed;
    case 401:
      return CommonErrorCode.Unauthenticated;
    case 403:
      return CommonErrorCode.Forbidden;
    case 404:
      return CommonErrorCode.RouteNotFound;
    case 405:
      return CommonErrorCode.MethodNotAllowed;
    case 409:
      return CommonErrorCode.Conflict;
    case 413:
      return CommonErrorCode.PayloadTooLarge;
    case 415:
      return CommonErrorCode.UnsupportedMediaType;
    case 429:
      return CommonErrorCode.RateLimited;
    case 503:
      return CommonErrorCode.Unavailable;
    default:
      return status >= 500 ? CommonErrorCode.Internal : 'request_refused';
  }
}

function safeDetail(status: number): string {
  if (status === 404) {
    return 'No route matches this method and path.';
  }

  return titleForStatus(status);
}

interface ReplyLike {
  status(code: number): ReplyLike;
  header(name: string, value: string): ReplyLike;
  send(body: unknown): void;
  sent?: boolean;
}

@Catch()
export class ProblemFilter implements ExceptionFilter {
  private readonly logger = new Logger('ProblemFilter');

  catch(error: unknown, host: ArgumentsHost): void {
    if (host.getType() !== 'http') {
      throw error;
    }
    const http = host.switchToHttp();
    const reply = http.getResponse<ReplyLike>();
    const request = http.getRequest<{ id?: string }>();
    const requestId = ClsServiceManager.getClsService()?.getId() ?? request?.id;
    const body = toProblem(error, requestId);
    if (body.status >= 500) {
      this.logger.error({ err: safeError(error), requestId }, 'unhandled error');
    } else {
      this.logger.debug({ code: body.code, status: body.status }, 'request refused');
    }
    if (reply.sent) {
      return;
    }
    if (error instanceof ProblemException && error.headers) {
      for (const [name, value] of Object.entries(error.headers)) {
        reply.header(name, value);
      }
    }
    reply
      .status(body.status)
      .header('content-type', 'application/problem+json; charset=utf-8')
      .send(body);
  }
}
