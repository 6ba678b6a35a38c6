import { CanActivate, ExecutionContext, Injectable } from '@nestjs/common';
import { Reflector } from '@nestjs/core';

import { Actor, ForbiddenProblem, ProblemException, UnauthenticatedProblem } from '@parley/core';

import { AbilityFactory } from './ability.factory';
import { apiKeyMayReach } from './api-key-scopes';
import { POLICY_KEY, RoutePolicy } from './policy.decorator';

export enum AuthzErrorCode {
  PolicyMissing = 'policy_missing',
  WrongAudience = 'token_not_accepted_here',
}

/** Reads the caller resolved by authentication from the request or the socket. */
export function actorOf(context: ExecutionContext): Actor | undefined {
  if (context.getType() === 'ws') {
    return context.switchToWs().getClient<{ data?: { actor?: Actor } }>().data?.actor;
  }

  return context.switchToHttp().getRequest<{ actor?: Actor }>().actor;
}

/** Deny by default: a handler with no @Policy is refused, and so is a caller outside its audience. */
@Injectable()
export class PolicyGuard implements CanActivate {
  constructor(
    private readonly reflector: Reflector,
    private readonly abilities: AbilityFactory,
  ) {}

  canActivate(context: ExecutionContext): boolean {
    const policy = this.reflector.getAllAndOverride<RoutePolicy | undefined>(POLICY_KEY, [
      context.getHandler(),
      context.getClass(),
    ]);
    if (!policy) {
      throw new ProblemException(403, AuthzErrorCode.PolicyMissing, {
        detail: 'This endpoint has no access policy and is refused.',
      });
    }
    if (policy.audience.includes('public')) {
      return true;
    }
    const actor = actorOf(context);
    if (!actor || actor.type === 'system') {
      throw new UnauthenticatedProblem();
    }
    // An API key reaches only REST routes that name a subject one of its scopes can grant.
    const accepted =
      actor.type === 'apiKey'
        ? context.getType() === 'http' && apiKeyMayReach(policy)
        : policy.audience.includes(actor.type);
    if (!accepted) {
      throw new UnauthenticatedProblem(
        AuthzErrorCode.WrongAudience,
        'This token is not accepted here.',
      );
    }
    if (
      policy.action &&
      policy.subject &&
      !this.abilities.forActor(actor).can(policy.action, policy.subject)
    ) {
      throw new ForbiddenProblem(
        actor.type === 'apiKey'
          ? "The API key's scopes, or its creator's current role, do not allow this action."
          : undefined,
      );
    }

    return true;
  }
}
