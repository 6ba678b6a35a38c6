import { HttpStatus, ValidationError, ValidationPipe } from '@nestjs/common';
import { Transform, plainToInstance } from 'class-transformer';
import { validate } from 'class-validator';

import { CommonErrorCode, ProblemException, ProblemFieldError } from '../errors/problem.exception';

export const VALIDATOR_OPTIONS = {
  whitelist: true,
  forbidNonWhitelisted: true,
  forbidUnknownValues: true,
} as const;

/**
 * Writes a UUID in its canonical lower case, so ids that differ only in case name one row and
 * reach rooms, views and audit entries spelled one way. Validation then checks the format.
 */
export function CanonicalUuid(): PropertyDecorator {
  return Transform(({ value }) => (typeof value === 'string' ? value.toLowerCase() : value));
}

/** Deeper JSON than this is refused before anything walks it recursively. */
export const MAX_JSON_DEPTH = 32;

/** Shorter submitted strings are too common to tell apart from the words of a message. */
const ECHO_MIN_LENGTH = 6;

/**
 * A message that repeats what was submitted (a custom message with `$value`, say) becomes a
 * plain one: an error detail never echoes a value, which may be confidential.
 */
function withoutValue(field: string, message: string, value: unknown): string {
  const text = typeof value === 'number' || typeof value === 'bigint' ? String(value) : value;

  return typeof text === 'string' && text.length >= ECHO_MIN_LENGTH && message.includes(text)
    ? `${field} is invalid`
    : message;
}

/**
 * One message per field: a missing field says so plainly, and otherwise the constraint that
 * explains the problem best (its type before its range) is reported.
 */
function flatten(errors: ValidationError[], prefix = ''): ProblemFieldError[] {
  return errors.flatMap((error) => {
    const field = prefix ? `${prefix}.${error.property}` : error.property;
    const constraints = error.constraints ?? {};
    const own: ProblemFieldError[] = [];
    if (constraints.whitelistValidation) {
      own.push({ field, message: `${field} is not a known field` });
    } else if (Object.keys(constraints).length > 0) {
      const message =
        error.value === undefined
          ? `${field} is required`
          : (Object.entries(constraints).find(([name]) => /^is[A-Z]|^matches$/.test(name))?.[1] ??
            Object.values(constraints)[0]);
      own.push({ field, message: withoutValue(field, message, error.value) });
    }

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
  if (jsonDepth(payload) > MAX_JSON_DEPTH) {
    throw new ProblemException(HttpStatus.BAD_REQUEST, CommonErrorCode.InvalidJson, {
      detail: `The payload nests deeper than ${MAX_JSON_DEPTH} levels.`,
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

/** How deeply arrays and objects nest in a parsed JSON value, counted without recursion. */
export function jsonDepth(value: unknown, limit = MAX_JSON_DEPTH): number {
  let deepest = 0;
  const stack: [unknown, number][] = [[value, 1]];
  while (stack.length > 0) {
    const [current, depth] = stack.pop() as [unknown, number];
    if (current === null || typeof current !== 'object') {
      continue;
    }
    deepest = Math.max(deepest, depth);
    if (deepest > limit) {
      return deepest;
    }
    for (const child of Object.values(current)) {
      stack.push([child, depth + 1]);
    }
  }

  return deepest;
}

/** True when an object, at any depth, carries a key that could pollute prototypes. */
export function hasPoisonedKey(value: unknown, depth = 0): boolean {
  if (depth > MAX_JSON_DEPTH || value === null || typeof value !== 'object') {
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
