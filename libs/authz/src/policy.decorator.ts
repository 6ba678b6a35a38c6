import { SetMetadata, applyDecorators } from '@nestjs/common';

export type Action = 'manage' | 'create' | 'read' | 'update' | 'delete';

export type Subject =
  | 'Organization'
  | 'User'
  | 'Session'
  | 'Contact'
  | 'Conversation'
  | 'Message'
  | 'AuditEvent'
  | 'ApiKey'
  | 'DataSubjectRequest'
  | 'DataMap'
  | 'Webhook'
  | 'Incident'
  | 'all';

export type Audience = 'user' | 'visitor' | 'public';

export interface RoutePolicy {
  audience: Audience[];
  action?: Action;
  subject?: Subject;
}

export const POLICY_KEY = 'parley:policy';

/**
 * Declares who may call a route or socket event. Every handler carries exactly one; the policy
 * guard refuses any handler without one, and a test lists every route to prove it.
 */
export const Policy = {
  /** An authenticated member whose role may do `action` on `subject`. */
  can(action: Action, subject: Subject): MethodDecorator & ClassDecorator {
    return SetMetadata(POLICY_KEY, { audience: ['user'], action, subject } satisfies RoutePolicy);
  },

  /** Any authenticated member; the service checks the resource itself. */
  member(): MethodDecorator & ClassDecorator {
    return SetMetadata(POLICY_KEY, { audience: ['user'] } satisfies RoutePolicy);
  },

  /** A widget visitor; the service limits it to the visitor's own contact. */
  visitor(action: Action, subject: Subject): MethodDecorator & ClassDecorator {
    return SetMetadata(POLICY_KEY, {
      audience: ['visitor'],
      action,
      subject,
    } satisfies RoutePolicy);
  },

  /** Members and visitors alike, each limited by its own abilities. */
  participant(action: Action, subject: Subject): MethodDecorator & ClassDecorator {
    return SetMetadata(POLICY_KEY, {
      audience: ['user', 'visitor'],
      action,
      subject,
    } satisfies RoutePolicy);
  },

  /** No credentials: signup, login, refresh, widget sessions, health. */
  public(): MethodDecorator & ClassDecorator {
    return applyDecorators(SetMetadata(POLICY_KEY, { audience: ['public'] } satisfies RoutePolicy));
  },
};
