import { SetMetadata } from '@nestjs/common';

export const MFA_ENROLLMENT_ROUTE = 'parley:mfa-enrollment-route';

/**
 * Marks a route that a session still waiting for MFA enrollment may call (GET /me, the
 * enrollment routes, logout). The authentication guard refuses such a session everywhere else.
 */
export const AllowDuringMfaEnrollment = (): MethodDecorator =>
  SetMetadata(MFA_ENROLLMENT_ROUTE, true);
