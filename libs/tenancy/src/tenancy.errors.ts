import { HttpStatus } from '@nestjs/common';

import { ProblemException } from '@parley/core';

export enum TenancyErrorCode {
  SlugTaken = 'organization_slug_taken',
  EmailTaken = 'user_email_taken',
  LastAdmin = 'last_admin',
  PolicyRefused = 'security_policy_refused',
}

export class TenancyProblem extends ProblemException {
  constructor(code: TenancyErrorCode, detail: string, status = HttpStatus.CONFLICT) {
    super(status, code, { detail });
  }
}

/** True when a query failed on the named unique index or constraint. */
export function isUniqueViolation(error: unknown, constraint?: string): boolean {
  const driverError =
    (error as { driverError?: { code?: string; constraint?: string } }).driverError ?? error;
  const { code, constraint: name } = driverError as { code?: string; constraint?: string };

  return code === '23505' && (constraint === undefined || name === constraint);
}
