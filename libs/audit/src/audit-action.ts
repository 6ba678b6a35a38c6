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
  'user.role_changed': { from: string; to: string };
  'widget.session_created': { contactId: string; origin: string };
}

export type ExplicitAuditAction = keyof AuditEventTypes;

/** Actions the entity subscriber writes: `<entity>.created|updated|deleted`. */
export type ChangeAuditAction = `${string}.${'created' | 'updated' | 'deleted'}`;

export interface AuditTarget {
  type: string;
  id: string;
}
