import { Injectable } from '@nestjs/common';
import { ClsService, ClsServiceManager, ClsStore } from 'nestjs-cls';

export type Role = 'admin' | 'manager' | 'agent' | 'viewer';

/** Highest first. */
export const ROLES: readonly Role[] = ['admin', 'manager', 'agent', 'viewer'];

export function isHigherRole(role: Role, than: Role): boolean {
  return ROLES.indexOf(role) < ROLES.indexOf(than);
}

/** A just-in-time elevation the member is acting under; `baseRole` is the member's own role. */
export interface ActorElevation {
  id: string;
  baseRole: Role;
}

export type Actor =
  /**
   * A member. `role` is the role in force: the member's own, or a higher one from an approved
   * elevation while it lasts, named by `elevation`.
   */
  | {
      type: 'user';
      id: string;
      role: Role;
      sessionId: string;
      email?: string;
      elevation?: ActorElevation;
    }
  | { type: 'visitor'; id: string; contactId: string; sessionId: string }
  /**
   * An API key (`id` is the key's id) acting for the member who created it: `role` is that
   * member's own role now (never an elevation), re-read on each use, and the key may do only what
   * both it and `scopes` allow. Keys have no session and are never accepted on the socket.
   */
  | {
      type: 'apiKey';
      id: string;
      userId: string;
      role: Role;
      scopes: readonly string[];
      sessionId?: never;
    }
  | { type: 'system'; id: string };

/** A member's own role, without any elevation: what long-lived grants such as API keys rest on. */
export function baseRoleOf(actor: Extract<Actor, { type: 'user' }>): Role {
  return actor.elevation?.baseRole ?? actor.role;
}

export interface ParleyStore extends ClsStore {
  organizationId?: string;
  actor?: Actor;
  ip?: string;
  userAgent?: string;
  afterCommit?: (() => void)[];
}

/** Typed access to the request's context: request id, organization, actor and client address. */
@Injectable()
export class RequestContext {
  constructor(private readonly cls: ClsService<ParleyStore>) {}

  static current(): RequestContext | undefined {
    const cls = ClsServiceManager.getClsService<ParleyStore>();

    return cls.isActive() ? new RequestContext(cls) : undefined;
  }

  get active(): boolean {
    return this.cls.isActive();
  }

  get requestId(): string | undefined {
    return this.cls.isActive() ? this.cls.getId() : undefined;
  }

  get organizationId(): string | undefined {
    return this.cls.isActive() ? this.cls.get('organizationId') : undefined;
  }

  organizationIdOrThrow(): string {
    const organizationId = this.organizationId;
    if (!organizationId) {
      throw new Error('No organization in the request context');
    }

    return organizationId;
  }

  get actor(): Actor | undefined {
    return this.cls.isActive() ? this.cls.get('actor') : undefined;
  }

  get ip(): string | undefined {
    return this.cls.isActive() ? this.cls.get('ip') : undefined;
  }

  get userAgent(): string | undefined {
    return this.cls.isActive() ? this.cls.get('userAgent') : undefined;
  }

  setOrganization(organizationId: string): void {
    this.cls.set('organizationId', organizationId);
  }

  setActor(actor: Actor): void {
    this.cls.set('actor', actor);
  }

  setClient(ip: string | undefined, userAgent: string | undefined): void {
    this.cls.set('ip', ip);
    this.cls.set('userAgent', userAgent);
  }

  /** Runs work in a fresh context (jobs, start-up) with its own organization and actor. */
  async run<T>(store: Partial<ParleyStore>, work: () => Promise<T>): Promise<T> {
    return this.cls.run(async () => {
      for (const [key, value] of Object.entries(store)) {
        this.cls.set(key as keyof ParleyStore, value as never);
      }

      return work();
    });
  }
}
