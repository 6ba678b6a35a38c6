/**
 * Every explicit security event, with the metadata it may carry. Metadata holds ids, reasons and
 * field names only, never a Confidential value.
 */
export interface AuditEventTypes {
  'auth.signup': { role: string };
  'auth.login_succeeded': { sessionId: string };
  'auth.login_failed': { reason: 'unknown_account' | 'wrong_password' };
  'auth.logout': { sessionId: string };
  'auth.token_refreshed': { sessionId: string };
  'auth.refresh_token_reused': { sessionId: string };
  'auth.password_changed': { sessionsEnded: number };
  'auth.password_change_failed': { reason: 'wrong_password' };
  /** `from` and `to` name the argon2 parameters (`argon2id v=19 m=19456,t=2,p=1`), never a hash. */
  'auth.password_rehashed': { from: string; to: string };
  /** `until` null: locked until an admin unlocks it. The target is absent for an unknown email. */
  'auth.account_locked': {
    until: string | null;
    lockSeconds: number | null;
    consecutiveFailures: number;
  };
  'auth.account_unlocked': { reason: 'expired' | 'admin'; wasLocked: boolean };
  'auth.mfa_failed': { reason: 'wrong_code' | 'reused_code' };
  'auth.mfa_locked': { until: string; consecutiveFailures: number };
  'mfa.enrollment_started': { method: 'totp' };
  'mfa.enrolled': { method: 'totp' };
  'mfa.removed': { method: 'totp' };
  'mfa.reset': { hadFactor: boolean; sessionsEnded: number };
  'mfa.recovery_code_used': { remaining: number };
  'user.role_changed': { from: string; to: string };
  'session.ended': { reason: string; count: number };
  'widget.session_created': { contactId: string; origin: string };
  /** The contact's data key was destroyed (crypto-shredding) and their records deleted. */
  'contact.erased': { keyDestroyed: boolean };
  'api_key.created': { scopes: string[]; expiresAt: string };
  'api_key.rotated': { previousSecretValidUntil: string | null };
  'api_key.revoked': Record<string, never>;
  'api_key.refused': { reason: 'expired' | 'revoked' | 'rotated_out' | 'creator_removed' };
  /** The target of each is the endpoint; its URL and secret stay out of the trail. */
  'webhook.created': { events: string[] };
  'webhook.updated': { changes: string[]; enabled: boolean };
  'webhook.deleted': Record<string, never>;
  'webhook.secret_rotated': { previousSecretValidUntil: string | null };
  /** The target of each is the elevation; the reason given stays on the elevation, not here. */
  'elevation.requested': { role: string; minutes: number; requesterRole: string };
  'elevation.approved': { role: string; requesterId: string; startsAt: string; endsAt: string };
  'elevation.denied': { role: string; requesterId: string };
  'elevation.revoked': { role: string; requesterId: string; wasActive: boolean };
  /** Written when noticed, so `endedAt` (not the entry's time) says when it stopped applying. */
  'elevation.expired': {
    role: string;
    requesterId: string;
    reason: 'ended' | 'role_changed';
    endedAt: string;
  };
  /** The target of each is the incident; notes, root causes and lessons stay on it, sealed. */
  'incident.opened': { rule: string; severity: string; alertId: string };
  'incident.severity_raised': { from: string; to: string; alertId: string };
  'incident.updated': { fields: string[]; status?: string; severity?: string; noteAdded: boolean };
  'incident.escalated': {
    deadline: 'response' | 'regulator_notification';
    level: number;
    dueAt: string;
  };
  /** `targetId` is the member, API key or address block the containment action acted on. */
  'incident.action_taken': {
    type: 'end_user_sessions' | 'revoke_api_key' | 'block_address';
    targetId: string;
    sessionsEnded?: number;
    expiresAt?: string;
  };
}

export type ExplicitAuditAction = keyof AuditEventTypes;

/** Actions the entity subscriber writes: `<entity>.created|updated|deleted`. */
export type ChangeAuditAction = `${string}.${'created' | 'updated' | 'deleted'}`;

export interface AuditTarget {
  type: string;
  id: string;
}
