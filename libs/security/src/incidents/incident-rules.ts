import { ALERT_SEVERITIES, AlertSeverity } from '../alerts/security-alert';
import { IncidentStatus } from './incident.entity';

const MINUTE_MS = 60_000;

/** GDPR Article 33(1): the supervisory authority is told within 72 hours of awareness. */
export const REGULATOR_NOTIFICATION_MS = 72 * 60 * MINUTE_MS;

/** Level 1 when a deadline passes, one more per escalation interval after it, up to this. */
export const MAX_ESCALATION_LEVEL = 3;

/** Each status may move only to the next one; `resolved` is the end. */
const NEXT_STATUS: Record<IncidentStatus, IncidentStatus | null> = {
  open: 'acknowledged',
  acknowledged: 'contained',
  contained: 'resolved',
  resolved: null,
};

export type Transition = 'unchanged' | 'advance' | 'refused';

export function transitionOf(from: IncidentStatus, to: IncidentStatus): Transition {
  if (from === to) {
    return 'unchanged';
  }

  return NEXT_STATUS[from] === to ? 'advance' : 'refused';
}

export function nextStatusOf(status: IncidentStatus): IncidentStatus | null {
  return NEXT_STATUS[status];
}

export function severityRank(severity: AlertSeverity): number {
  return ALERT_SEVERITIES.indexOf(severity);
}

export function higherSeverity(a: AlertSeverity, b: AlertSeverity): AlertSeverity {
  return severityRank(b) > severityRank(a) ? b : a;
}

/** When an incident opened at `openedAt` with `severity` must be acknowledged. */
export function responseDueAt(
  openedAt: Date,
  severity: AlertSeverity,
  minutes: Record<AlertSeverity, number>,
): Date {
  return new Date(openedAt.getTime() + minutes[severity] * MINUTE_MS);
}

export function regulatorDueAt(awareAt: Date): Date {
  return new Date(awareAt.getTime() + REGULATOR_NOTIFICATION_MS);
}

/**
 * The escalation level a deadline has reached at `nowMs`: 0 before it, 1 from it, and one more
 * for each whole `intervalMs` after it, never above MAX_ESCALATION_LEVEL.
 */
export function escalationLevelAt(dueMs: number, nowMs: number, intervalMs: number): number {
  if (nowMs < dueMs) {
    return 0;
  }

  return Math.min(MAX_ESCALATION_LEVEL, 1 + Math.floor((nowMs - dueMs) / intervalMs));
}
