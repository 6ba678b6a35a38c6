import { randomUUID } from 'node:crypto';

import { Inject, Injectable, Logger, OnModuleInit } from '@nestjs/common';
import { EntityManager } from 'typeorm';

import { AuditService } from '@parley/audit';
import {
  APP_CONFIG,
  Actor,
  AppConfig,
  Clock,
  RequestContext,
  declareTable,
  redactClassified,
  safeError,
} from '@parley/core';
import { TenantTransactions } from '@parley/database';

import { Alerts } from '../alerts/alerts.service';
import { AlertListener, AlertSeverity, SecurityAlert } from '../alerts/security-alert';
import { higherSeverity, responseDueAt, severityRank } from './incident-rules';

declareTable(
  'incident_alerts',
  {
    purpose: 'The alerts that opened or joined each security incident.',
    retention: 'Kept with the incident.',
  },
  {
    organization_id: { class: 'internal' },
    alert_id: { class: 'internal' },
    incident_id: { class: 'internal' },
    rule: { class: 'internal' },
    severity: { class: 'internal' },
    summary: { class: 'internal', purpose: "The alert's sentence, which holds no personal data." },
    details: {
      class: 'internal',
      purpose: 'Counts, thresholds, windows and ids; redacted by classification before storing.',
    },
    occurred_at: { class: 'internal' },
    received_at: { class: 'internal' },
  },
);

/** Alerts the incident machinery raises itself; an incident for one would feed on itself. */
export const INCIDENT_ALERT_RULES: ReadonlySet<string> = new Set(['incident_overdue']);

const SYSTEM_ACTOR: Actor = { type: 'system', id: 'incident-alerts' };

export interface AlertOutcome {
  incidentId: string;
  /** `opened` for a new incident, `joined` for an existing one, `seen` for a repeated alert. */
  outcome: 'opened' | 'joined' | 'seen';
}

interface JoinableRow {
  id: string;
  severity: AlertSeverity;
  opened_at: Date;
  response_due_at: Date;
}

/**
 * Turns alerts into incidents. An alert of an organization joins that organization's unresolved
 * incident of the same rule and subject whose last alert is within INCIDENT_JOIN_WINDOW_MINUTES,
 * raising its severity (and so possibly its response deadline) when the alert's is higher;
 * otherwise it opens a new incident. Installation-wide alerts (no organization) open none.
 * Known shortcoming: `Alerts` hands alerts over from memory after the raising transaction
 * commits, so an alert whose process stops before this listener has run opens no incident.
 */
@Injectable()
export class IncidentAlertListener implements AlertListener, OnModuleInit {
  readonly name = 'incidents';
  private readonly logger = new Logger(IncidentAlertListener.name);
  private readonly handling = new Set<Promise<unknown>>();

  constructor(
    private readonly alerts: Alerts,
    private readonly transactions: TenantTransactions,
    private readonly context: RequestContext,
    private readonly clock: Clock,
    private readonly audit: AuditService,
    @Inject(APP_CONFIG) private readonly config: AppConfig,
  ) {}

  onModuleInit(): void {
    this.alerts.addListener(this);
  }

  async onAlert(alert: SecurityAlert): Promise<void> {
    const work = this.receive(alert);
    this.handling.add(work);
    try {
      await work;
    } catch (error) {
      this.logger.error(
        { alertId: alert.id, rule: alert.rule, error: safeError(error) },
        'an alert could not open or join an incident',
      );
    } finally {
      this.handling.delete(work);
    }
  }

  /** Resolves once every alert handed over so far has opened or joined its incident (tests). */
  async whenIdle(): Promise<void> {
    while (this.handling.size > 0) {
      await Promise.allSettled([...this.handling]);
    }
  }

  /** Opens or joins the alert's incident; undefined for an alert that opens none. */
  async receive(alert: SecurityAlert): Promise<AlertOutcome | undefined> {
    const organizationId = alert.organizationId;
    if (!organizationId || INCIDENT_ALERT_RULES.has(alert.rule)) {
      return undefined;
    }

    return this.context.run({ actor: SYSTEM_ACTOR }, () =>
      this.transactions.run(organizationId, (manager) =>
        this.openOrJoin(manager, organizationId, alert),
      ),
    );
  }

  private async openOrJoin(
    manager: EntityManager,
    organizationId: string,
    alert: SecurityAlert,
  ): Promise<AlertOutcome> {
    const subjectType = alert.subject?.type ?? null;
    const subjectId = alert.subject?.id ?? null;
    // Two alerts of one rule and subject at once, on any instance, must not open two incidents.
    await manager.query(`select pg_advisory_xact_lock(hashtextextended($1, 0))`, [
      `incident|${organizationId}|${alert.rule}|${subjectType ?? ''}|${subjectId ?? ''}`,
    ]);
    const seen: { incident_id: string }[] = await manager.query(
      `select incident_id from incident_alerts where alert_id = $1`,
      [alert.id],
    );
    if (seen[0]) {
      return { incidentId: seen[0].incident_id, outcome: 'seen' };
    }

    const now = this.clock.now();
    const windowStart = new Date(now.getTime() - this.config.incidentJoinWindowMinutes * 60_000);
    const joinable: JoinableRow[] = await manager.query(
      `select id, severity, opened_at, response_due_at from incidents
        where rule = $1 and subject_type is not distinct from $2
          and subject_id is not distinct from $3
          and status <> 'resolved' and last_alert_at >= $4
        order by last_alert_at desc
        limit 1
        for update`,
      [alert.rule, subjectType, subjectId, windowStart],
    );
    const incident = joinable[0];
    const incidentId = incident?.id ?? randomUUID();
    if (incident) {
      await this.join(manager, organizationId, incident, alert, now);
    } else {
      await this.open(manager, organizationId, incidentId, alert, now);
    }
    await manager.query(
      `insert into incident_alerts
         (organization_id, alert_id, incident_id, rule, severity, summary, details, occurred_at, received_at)
       values ($1, $2, $3, $4, $5, $6, $7, $8, $9)`,
      [
        organizationId,
        alert.id,
        incidentId,
        alert.rule,
        alert.severity,
        summaryOf(alert),
        JSON.stringify(redactClassified(alert.details ?? {})),
        alert.occurredAt,
        now,
      ],
    );

    return { incidentId, outcome: incident ? 'joined' : 'opened' };
  }

  private async open(
    manager: EntityManager,
    organizationId: string,
    incidentId: string,
    alert: SecurityAlert,
    now: Date,
  ): Promise<void> {
    const dueAt = responseDueAt(now, alert.severity, this.config.incidentResponseMinutes);
    await manager.query(
      `insert into incidents
         (id, organization_id, rule, subject_type, subject_id, summary, severity, status,
          alert_count, opened_at, last_alert_at, response_due_at, escalation_level,
          personal_data_breach, regulator_escalation_level, updated_at)
       values ($1, $2, $3, $4, $5, $6, $7, 'open', 1, $8, $8, $9, 0, false, 0, $8)`,
      [
        incidentId,
        organizationId,
        alert.rule,
        alert.subject?.type ?? null,
        alert.subject?.id ?? null,
        summaryOf(alert),
        alert.severity,
        now,
        dueAt,
      ],
    );
    await this.audit.record(
      organizationId,
      'incident.opened',
      { rule: alert.rule, severity: alert.severity, alertId: alert.id },
      { type: 'incident', id: incidentId },
    );
    this.logger.log(
      {
        organizationId,
        incidentId,
        alertId: alert.id,
        rule: alert.rule,
        severity: alert.severity,
        responseDueAt: dueAt.toISOString(),
      },
      'incident opened',
    );
  }

  private async join(
    manager: EntityManager,
    organizationId: string,
    incident: JoinableRow,
    alert: SecurityAlert,
    now: Date,
  ): Promise<void> {
    const severity = higherSeverity(incident.severity, alert.severity);
    const raised = severityRank(severity) > severityRank(incident.severity);
    // The deadline counts from the opening; a higher severity may only bring it forward.
    const dueAt = raised
      ? new Date(
          Math.min(
            new Date(incident.response_due_at).getTime(),
            responseDueAt(
              new Date(incident.opened_at),
              severity,
              this.config.incidentResponseMinutes,
            ).getTime(),
          ),
        )
      : new Date(incident.response_due_at);
    await manager.query(
      `update incidents
          set alert_count = alert_count + 1, last_alert_at = greatest(last_alert_at, $2),
              severity = $3, response_due_at = $4, updated_at = $2
        where id = $1`,
      [incident.id, now, severity, dueAt],
    );
    if (raised) {
      await this.audit.record(
        organizationId,
        'incident.severity_raised',
        { from: incident.severity, to: severity, alertId: alert.id },
        { type: 'incident', id: incident.id },
      );
    }
  }
}

function summaryOf(alert: SecurityAlert): string {
  const summary = alert.summary.trim() || alert.rule;

  return summary.length > 500 ? `${summary.slice(0, 499)}…` : summary;
}
