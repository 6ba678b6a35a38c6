import { ExecutionContext, SetMetadata } from '@nestjs/common';

export const CREDENTIAL_ROUTE = 'parley:credential-route';

/**
 * Marks a route that takes credentials or mints sessions (login, signup, refresh, widget
 * sessions); those share a tighter per-address limit than the rest of the API.
 */
export const CredentialRoute = (): MethodDecorator => SetMetadata(CREDENTIAL_ROUTE, true);

export function isCredentialRoute(context: ExecutionContext): boolean {
  return Reflect.getMetadata(CREDENTIAL_ROUTE, context.getHandler()) === true;
}
