/**
 * Ends a member's sessions. Features below auth (tenancy's role changes, for one) need this
 * without depending on the auth library, which depends on them; auth provides it.
 */
export abstract class SessionTerminator {
  abstract endAllForUser(userId: string, reason: string, keepSessionId?: string): Promise<string[]>;
}
