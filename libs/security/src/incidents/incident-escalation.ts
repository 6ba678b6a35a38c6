import {
  Inject,
  Injectable,
  Logger,
  OnApplicationBootstrap,
  OnApplicationShutdown,
} from '@nestjs/common';
import { DataSource, EntityManager } from 'typeorm';

import { AuditService } from '@parley/audit';
import {
  APP_CONFIG,
  Actor,
  AppConfig,
  Clock,
  RequestContext,
  safeError,
  RepeatingJob,
  repeatEvery,
} from '@parley/core';
import { TenantTransactions } from '@parley/database';

import { Alerts } from '../alerts/alerts.service';
import { AlertSeverity } from '../alerts/security-alert';
import { MAX_ESCALATION_LEVEL, escalationLevelAt } from './incident-rules';

export type EscalatedDeadline = 'response' | 'regulator_notification';

export interface Escalation {
  organizationId: string;
  incidentId: string;
  deadline: EscalatedDeadline;
  level: number;
  previousLevel: number;
  dueAt: Date;
}

interface OverdueRow {
  id: string;
  rule: string;
  severity: AlertSeverity;
  due_at: Date;
  level: number;
}

const SYSTEM_ACTOR: Actor = { type: 'system', id: 'incident-escalation' };

/** Each deadline's columns; fixed SQL fragments of this class, never input. */
const DEADLINES: Record<
  EscalatedDeadline,
  { due: string; level: string; at: string; pending: string; what: string }
> = {
  response: {
    due: 'response_due_at',
    level: 'escalation_level',
    at: 'escalated_at',
    pending: `status = 'open'`,
    what: 'response',
  },
  regulator_notification: {
    due: 'regulator_due_at',
    level: 'regulator_escalation_level',
    at: 'regulator_escalated_at',
    pending: 'personal_data_breach and regulator_notified_at is null',
    what: 'regulator notification (GDPR Article 33)',
  },
};

/**
 * Escalates overdue incidents: one still `open` past its response deadline, and a personal-data
 * breach whose regulator notification is past due and not recorded. Each deadline escalates to
 * level 1 when it passes and one level per INCIDENT_ESCALATION_INTERVAL_MINUTES after, up to 3;
 * each new level is written with a conditional update, so of all instances checking at once
 * exactly one escalates it, logs it and raises one `incident_overdue` alert for it. A pass that
 * finds several levels due at once (the check did not run for a while) raises one alert, for the
 * highest. Known shortcoming: each pass opens one transaction per organization on every instance,
 * so its cost grows with the number of organizations, not with the number of overdue incidents.
 */
@Injectable()
export class IncidentEscalation implements OnApplicationBootstrap, OnApplicationShutdown {
  private readonly logger = new Logger(IncidentEscalation.name);
  private job: RepeatingJob | undefined;

  constructor(
    private readonly dataSource: DataSource,
    private readonly transactions: TenantTransactions,
    private readonly context: RequestContext,
    private readonly clock: Clock,
    private readonly alerts: Alerts,
    private readonly audit: AuditService,
    @Inject(APP_CONFIG) private readonly config: AppConfig,
  ) {}

  onApplicationBootstrap(): void {
    const seconds = this.config.incidentEscalationCheckSeconds;
    if (seconds === 0) {
      return;
    }
    this.job = repeatEvery({
      firstDelayMs: seconds * 1000,
      intervalMs: seconds * 1000,
      work: () => this.run(),
      onError: (error) =>
        this.logger.error({ error: safeError(error) }, 'incident escalation check failed'),
    });
  }

  async onApplicationShutdown(): Promise<void> {
    await this.job?.stop();
  }

  /** One pass over the given organizations (every organization by default), at the clock's now. */
  async run(organizationIds?: string[]): Promise<Escalation[]> {
    const escalations: Escalation[] = [];
    for (const organizationId of organizationIds ?? (await this.organizationIds())) {
      const found = await this.context.run({ actor: SYSTEM_ACTOR }, () =>
        this.transactions.run(organizationId, (manager) =>
          this.escalateIn(manager, organizationId),
        ),
      );
      escalations.push(...found);
    }

    return escalations;
  }

  private async organizationIds(): Promise<string[]> {
    const rows: { id: string }[] = await this.dataSource.query(
      'select parley_organization_ids() as id',
    );

    return rows.map((row) => row.id);
  }

  private async escalateIn(manager: EntityManager, organizationId: string): Promise<Escalation[]> {
    const escalations: Escalation[] = [];
    for (const deadline of Object.keys(DEADLINES) as EscalatedDeadline[]) {
      for (const row of await this.overdue(manager, deadline)) {
        const escalation = await this.escalate(manager, organizationId, deadline, row);
        if (escalation) {
          escalations.push(escalation);
        }
      }
    }

    return escalations;
  }

  private overdue(manager: EntityManager, deadline: EscalatedDeadline): Promise<OverdueRow[]> {
    const columns = DEADLINES[deadline];

    return manager.query(
      `select id, rule, severity, ${columns.due} as due_at, ${columns.level} as level
         from incidents
        where ${columns.pending} and ${columns.due} <= $1 and ${columns.level} < $2
        order by ${columns.due}`,
      [this.clock.now(), MAX_ESCALATION_LEVEL],
    );
  }

  private async escalate(
    manager: EntityManager,
    organizationId: string,
    deadline: EscalatedDeadline,
    row: OverdueRow,
  ): Promise<Escalation | undefined> {
    const now = this.clock.now();
    const dueAt = new Date(row.due_at);
    const level = escalationLevelAt(
      dueAt.getTime(),
      now.getTime(),
      this.config.incidentEscalationIntervalMinutes * 60_000,
    );
    if (level <= row.level) {
      return undefined;
    }
    const columns = DEADLINES[deadline];
    const [updated]: [{ id: string }[], number] = await manager.query(
      `update incidents set ${columns.level} = $2, ${columns.at} = $3, updated_at = $3
        where id = $1 and ${columns.level} < $2 and ${columns.pending}
      returning id`,
      [row.id, level, now],
    );
    if (updated.length === 0) {
      return undefined;
    }

    const escalation: Escalation = {
      organizationId,
      incidentId: row.id,
      deadline,
      level,
      previousLevel: row.level,
      dueAt,
    };
    this.logger.warn(
      {
        organizationId,
        incidentId: row.id,
        deadline,
        level,
        previousLevel: row.level,
        dueAt: dueAt.toISOString(),
        incidentRule: row.rule,
        incidentSeverity: row.severity,
      },
      'incident overdue: escalated',
    );
    await this.audit.record(
      organizationId,
      'incident.escalated',
      { deadline, level, dueAt: dueAt.toISOString() },
      { type: 'incident', id: row.id },
    );
    // Raised inside the transaction: listeners and webhooks hear of it only once it commits.
    this.alerts.raise({
      organizationId,
      rule: 'incident_overdue',
      severity: deadline === 'regulator_notification' ? 'critical' : row.severity,
      summary: `Incident ${row.id} is past its ${columns.what} deadline and escalated to level ${level}.`,
      subject: { type: 'incident', id: row.id },
      details: {
        incidentId: row.id,
        deadline,
        level,
        previousLevel: row.level,
        dueAt: dueAt.toISOString(),
        incidentRule: row.rule,
        incidentSeverity: row.severity,
      },
    });

    return escalation;
  }
}
