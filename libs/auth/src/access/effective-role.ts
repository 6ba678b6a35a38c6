import { Actor, Role, isHigherRole } from '@parley/core';

import { ActiveSession } from '../sessions.service';

export type MemberActor = Extract<Actor, { type: 'user' }>;

/**
 * A session's member as an actor: with the role of their running elevation when it is higher
 * than their own, with their own role otherwise. The end time is compared with `now` on every
 * use, so a session read shortly before stops lending the role the moment the elevation ends.
 */
export function effectiveMemberActor(
  userId: string,
  session: Pick<ActiveSession, 'id' | 'elevation'>,
  baseRole: Role,
  now: number,
): MemberActor {
  const elevation = session.elevation;
  if (elevation && elevation.endsAt > now && isHigherRole(elevation.role, baseRole)) {
    return {
      type: 'user',
      id: userId,
      role: elevation.role,
      sessionId: session.id,
      elevation: { id: elevation.id, baseRole },
    };
  }

  return { type: 'user', id: userId, role: baseRole, sessionId: session.id };
}
