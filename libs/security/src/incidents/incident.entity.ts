import { Column, Entity, PrimaryGeneratedColumn } from 'typeorm';

import { Classified, ClassifiedTable } from '@parley/core';

import type { AlertSeverity } from '../alerts/security-alert';

export const INCIDENT_STATUSES = ['open', 'acknowledged', 'contained', 'resolved'] as const;

export type IncidentStatus = (typeof INCIDENT_STATUSES)[number];

/**
 * A security incident of one organization, opened by an alert and joined by later alerts of the
 * same rule and subject. Not @Audited: every change is an explicit audit event that names the
 * fields it changed, since root causes and lessons learned are sealed text.
 */
@ClassifiedTable({
  purpose: 'Security incidents: what happened, who handled it, and the deadlines they had.',
  retention: 'Kept with the organization; incidents end by status, never by deletion.',
})
@Entity({ name: 'incidents' })
export class IncidentEntity {
  @Classified('internal')
  @PrimaryGeneratedColumn('uuid')
  id: string;

  @Classified('internal')
  @Column({ name: 'organization_id', type: 'uuid' })
  organizationId: string;

  @Classified('internal', { purpose: 'The detection rule whose alert opened the incident.' })
  @Column({ type: 'text' })
  rule: string;

  @Classified('internal')
  @Column({ name: 'subject_type', type: 'text', nullable: true })
  subjectType: string | null;

  @Classified('internal', {
    purpose: 'What the alerts are about: a member or key id, or a digest of an address.',
  })
  @Column({ name: 'subject_id', type: 'text', nullable: true })
  subjectId: string | null;

  @Classified('internal', {
    purpose: "The opening alert's sentence, which holds no personal data.",
  })
  @Column({ type: 'text' })
  summary: string;

  @Classified('internal')
  @Column({ type: 'text' })
  severity: AlertSeverity;

  @Classified('internal')
  @Column({ type: 'text' })
  status: IncidentStatus;

  @Classified('internal')
  @Column({ name: 'alert_count', type: 'integer' })
  alertCount: number;

  @Classified('internal')
  @Column({ name: 'opened_at', type: 'timestamptz' })
  openedAt: Date;

  @Classified('internal')
  @Column({ name: 'last_alert_at', type: 'timestamptz' })
  lastAlertAt: Date;

  @Classified('internal')
  @Column({ name: 'response_due_at', type: 'timestamptz' })
  responseDueAt: Date;

  @Classified('internal')
  @Column({ name: 'acknowledged_at', type: 'timestamptz', nullable: true })
  acknowledgedAt: Date | null;

  @Classified('internal')
  @Column({ name: 'acknowledged_by', type: 'uuid', nullable: true })
  acknowledgedBy: string | null;

  @Classified('internal')
  @Column({ name: 'contained_at', type: 'timestamptz', nullable: true })
  containedAt: Date | null;

  @Classified('internal')
  @Column({ name: 'contained_by', type: 'uuid', nullable: true })
  containedBy: string | null;

  @Classified('internal')
  @Column({ name: 'resolved_at', type: 'timestamptz', nullable: true })
  resolvedAt: Date | null;

  @Classified('internal')
  @Column({ name: 'resolved_by', type: 'uuid', nullable: true })
  resolvedBy: string | null;

  @Classified('confidential', { purpose: 'Why it happened, as staff wrote it; may name people.' })
  @Column({ name: 'root_cause', type: 'text', nullable: true })
  rootCause: string | null;

  @Classified('confidential', { purpose: 'What to change, as staff wrote it; may name people.' })
  @Column({ name: 'lessons_learned', type: 'text', nullable: true })
  lessonsLearned: string | null;

  @Classified('internal')
  @Column({ name: 'escalation_level', type: 'integer' })
  escalationLevel: number;

  @Classified('internal')
  @Column({ name: 'escalated_at', type: 'timestamptz', nullable: true })
  escalatedAt: Date | null;

  @Classified('internal', { purpose: 'Whether personal data was breached (GDPR Article 33).' })
  @Column({ name: 'personal_data_breach', type: 'boolean' })
  personalDataBreach: boolean;

  @Classified('internal')
  @Column({ name: 'aware_at', type: 'timestamptz', nullable: true })
  awareAt: Date | null;

  @Classified('internal')
  @Column({ name: 'regulator_due_at', type: 'timestamptz', nullable: true })
  regulatorDueAt: Date | null;

  @Classified('internal')
  @Column({ name: 'regulator_notified_at', type: 'timestamptz', nullable: true })
  regulatorNotifiedAt: Date | null;

  @Classified('internal')
  @Column({ name: 'regulator_escalation_level', type: 'integer' })
  regulatorEscalationLevel: number;

  @Classified('internal')
  @Column({ name: 'regulator_escalated_at', type: 'timestamptz', nullable: true })
  regulatorEscalatedAt: Date | null;

  @Classified('internal')
  @Column({ name: 'updated_at', type: 'timestamptz' })
  updatedAt: Date;
}
