interface DriverErrorLike {
  code?: string;
  constraint?: string;
  table?: string;
  column?: string;
}

export interface SafeError {
  /** The error class; not `name`, which the log redaction of names would blank. */
  type: string;
  message: string;
  code?: string;
  constraint?: string;
  table?: string;
  stack?: string;
  cause?: SafeError;
}

/**
 * What of an error may be logged. Database errors keep their SQL state, constraint and table
 * but lose their parameters and `detail` (PostgreSQL writes the offending values there), so no
 * value a customer typed reaches the log through an error.
 */
export function safeError(error: unknown, depth = 0): SafeError | undefined {
  if (!(error instanceof Error)) {
    return error === undefined ? undefined : { type: typeof error, message: 'non-error thrown' };
  }
  const driver =
    (error as Error & { driverError?: DriverErrorLike }).driverError ?? (error as DriverErrorLike);
  const isQueryError =
    error.name === 'QueryFailedError' ||
    (typeof driver.code === 'string' && /^[0-9A-Z]{5}$/.test(driver.code));

  return {
    type: error.name,
    message: isQueryError ? `database error ${driver.code ?? ''}`.trim() : error.message,
    code: driver.code,
    constraint: driver.constraint,
    table: driver.table,
    stack: error.stack
      ?.split('\n')
      .slice(isQueryError ? 1 : 0)
      .join('\n'),
    cause: depth < 3 && error.cause !== undefined ? safeError(error.cause, depth + 1) : undefined,
  };
}
