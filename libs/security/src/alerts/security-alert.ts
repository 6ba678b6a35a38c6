/**
 * The contract between detection and what acts on it. Detection rules (libs/security/src/
 * detection) raise alerts through `Alerts`; listeners registered with `Alerts.addListener` receive
 * every alert after the transaction that raised it has committed, and never block it: the
 * webhook dispatcher queues a delivery, the incident service opens or joins an incident.
 */
export type AlertSeverity = 'low' | 'medium' | 'high' | 'critical';

export const ALERT_SEVERITIES: readonly AlertSeverity[] = ['low', 'medium', 'high', 'critical'];

export interface SecurityAlert {
  /** Stable id of this alert (a UUID); webhook deliveries and incidents refer to it. */
  id: string;
  /** The organization the alert is about; null for an installation-wide one (an address). */
  organizationId: string | null;
  /** The rule that fired, e.g. `failed_login_burst_account`. */
  rule: string;
  severity: AlertSeverity;
  /** One plain sentence, with no confidential value. */
  summary: string;
  /** What the alert is about, if one thing: a member, an API key, an address digest. */
  subject?: { type: string; id: string };
  occurredAt: Date;
  /** Counts, thresholds, windows, ids; never a confidential value (it is redacted anyway). */
  details: Record<string, unknown>;
}

/** Something that acts on alerts; each is called once per alert and must not throw into the caller. */
export interface AlertListener {
  readonly name: string;
  onAlert(alert: SecurityAlert): Promise<void>;
}
