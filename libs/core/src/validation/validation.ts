import { HttpStatus, ValidationError, ValidationPipe } from '@nestjs/common';
import { plainToInstance } from 'class-transformer';
import { validate } from 'class-validator';

import { CommonErrorCode, ProblemException, ProblemFieldError } from '../errors/problem.exception';

export const VALIDATOR_OPTIONS = {
  whitelist: true,
  forbidNonWhitelisted: true,
  forbidUnknownValues: true,
  stopAtFirstError: true,
} as const;

function flatten(errors: ValidationError[], prefix = ''): ProblemFieldError[] {
  return errors.flatMap((error) => {
    const field = prefix ? `${prefix}.${error.property}` : error.property;
    const own = Object.values(error.constraints ?? {}).map((message) => ({ field, message }));

    return [...own, ...flatten(error.children ?? [], field)];
  });
}

export function validationProblem(errors: ValidationError[]): ProblemException {
  const fields = flatten(errors);

  return new ProblemException(HttpStatus.BAD_REQUEST, CommonErrorCode.ValidationFailed, {
    detail:
      fields.length > 0
        ? `Invalid input: ${fields.map((f) => f.message).join('; ')}`
        : 'Invalid input.',
    errors: fields,
  });
}

/** The one validation pipe for HTTP bodies, params and queries. */
export function createValidationPipe(): ValidationPipe {
  return new ValidationPipe({
    ...VALIDATOR_OPTIONS,
    transform: true,
    transformOptions: { enableImplicitConversion: false },
    exceptionFactory: validationProblem,
  });
}

/** Validates a socket payload with the same DTO rules as HTTP; throws the same problem. */
export async function validatePayload<T extends object>(
  dto: new () => T,
  payload: unknown,
): Promise<T> {
  if (payload === null || typeof payload !== 'object' || Array.isArray(payload)) {
    throw new ProblemException(HttpStatus.BAD_REQUEST, CommonErrorCode.ValidationFailed, {
      detail: 'The payload must be a JSON object.',
    });
  }
  if (hasPoisonedKey(payload)) {
    throw new ProblemException(HttpStatus.BAD_REQUEST, CommonErrorCode.InvalidJson, {
      detail: 'The payload uses a forbidden key (__proto__ or constructor).',
    });
  }
  const instance = plainToInstance(dto, payload);
  const errors = await validate(instance, VALIDATOR_OPTIONS);
  if (errors.length > 0) {
    throw validationProblem(errors);
  }

  return instance;
}

/** True when an object, at any depth, carries a key that could pollute prototypes. */
export function hasPoisonedKey(value: unknown, depth = 0): boolean {
  if (depth > 32 || value === null || typeof value !== 'object') {
    return false;
  }
  for (const key of Object.keys(value)) {
    if (key === '__proto__' || key === 'constructor' || key === 'prototype') {
      return true;
    }
    if (hasPoisonedKey((value as Record<string, unknown>)[key], depth + 1)) {
      return true;
    }
  }

  return false;
}
