import { ProblemException } from '@parley/core';

/**
 * A refusal whose transaction still commits: a wrong current password, say, must answer 403 and
 * yet keep the failed-attempt count and the audit entry it wrote. Thrown inside a tenant
 * transaction, the outermost one commits and then the refusal reaches the client as the problem
 * it wraps. Anywhere else it is an ordinary problem (and the work is rolled back).
 */
export class CommittedRefusal extends ProblemException {
  constructor(readonly refusal: ProblemException) {
    super(refusal.getStatus(), refusal.code, {
      detail: refusal.detail,
      errors: refusal.errors,
      headers: refusal.headers,
      cause: refusal,
    });
  }

  /** Inside the transaction: turns the refusal into a result, so the transaction commits. */
  static keep(error: unknown): CommittedRefusal {
    if (error instanceof CommittedRefusal) {
      return error;
    }
    throw error;
  }

  /** After the commit: throws a kept refusal, or passes the result through. */
  static raise<T>(result: T): T {
    if (result instanceof CommittedRefusal) {
      throw result;
    }

    return result;
  }
}
