import { randomUUID } from 'node:crypto';

import { HttpStatus, Inject, Injectable } from '@nestjs/common';

import { AuditService } from '@parley/audit';
import {
  APP_CONFIG,
  Actor,
  AppConfig,
  Clock,
  ForbiddenProblem,
  NotFoundProblem,
  RequestContext,
} from '@parley/core';
import { TenantTransactions, newestFirstPage } from '@parley/database';

import { IncidentNoteEntity } from './incident-note.entity';
import { regulatorDueAt, responseDueAt, transitionOf, nextStatusOf } from './incident-rules';
import { IncidentEntity } from './incident.entity';
import {
  IncidentActionView,
  IncidentAlertView,
  IncidentPage,
  IncidentQueryDto,
  IncidentSummaryView,
  IncidentView,
  UpdateIncidentDto,
} from './incidents.dto';
import { IncidentsErrorCode, IncidentsProblem } from './incidents.errors';

/** A time a member gives may run ahead of the server's clock by this much. */
const CLOCK_SKEW_MS = 60_000;

/** The columns a listing reads: everything but the sealed text, which only the detail opens. */
const SUMMARY_COLUMNS: (keyof IncidentEntity)[] = [
  'id',
  'organizationId',
  'rule',
  'subjectType',
  'subjectId',
  'summary',
  'severity',
  'status',
  'alertCount',
  'openedAt',
  'lastAlertAt',
  'responseDueAt',
  'escalationLevel',
  'escalatedAt',
  'personalDataBreach',
  'awareAt',
  'regulatorDueAt',
  'regulatorNotifiedAt',
  'regulatorEscalationLevel',
  'regulatorEscalatedAt',
];

type MemberActor = Extract<Actor, { type: 'user' }>;

function iso(value: Date | null | undefined): string | null {
  return value ? new Date(value).toISOString() : null;
}

/**
 * Reads incidents and moves them through their lifecycle. Every change is one explicit audit
 * entry naming the fields it changed; notes, root causes and lessons learned are sealed by the
 * entity subscriber and never reach the trail.
 */
@Injectable()
export class IncidentsService {
  constructor(
    private readonly transactions: TenantTransactions,
    private readonly context: RequestContext,
    private readonly clock: Clock,
    private readonly audit: AuditService,
    @Inject(APP_CONFIG) private readonly config: AppConfig,
  ) {}

  /** Newest first, filtered by status and severity, one page at a time. */
  async list(query: IncidentQueryDto): Promise<IncidentPage> {
    const limit = query.limit ?? 50;
    const builder = this.transactions.manager
      .createQueryBuilder(IncidentEntity, 'incident')
      .select(SUMMARY_COLUMNS.map((column) => `incident.${column}`));
    if (query.status) {
      builder.andWhere('incident.status = :status', { status: query.status });
    }
    if (query.severity) {
      builder.andWhere('incident.severity = :severity', { severity: query.severity });
    }
    const page = await newestFirstPage(builder, {
      alias: 'incident',
      timeProperty: 'openedAt',
      limit,
      cursor: query.cursor,
    });

    return {
      items: page.rows.map((incident) => this.summaryOf(incident)),
      nextCursor: page.nextCursor,
    };
  }

  async get(id: string): Promise<IncidentView> {
    return this.viewOf(await this.findOrThrow(id));
  }

  /** Changes status, severity, breach tracking and text, and adds a note, all or nothing. */
  async update(id: string, input: UpdateIncidentDto): Promise<IncidentView> {
    const actor = this.memberOrThrow();
    const incident = await this.findOrThrow(id, true);
    const now = this.clock.now();
    const fields: string[] = [];

    if (input.severity !== undefined && input.severity !== incident.severity) {
      incident.severity = input.severity;
      incident.responseDueAt = responseDueAt(
        incident.openedAt,
        input.severity,
        this.config.incidentResponseMinutes,
      );
      fields.push('severity', 'responseDueAt');
    }
    this.applyBreach(incident, input, now, fields);
    if (input.rootCause !== undefined) {
      incident.rootCause = input.rootCause;
      fields.push('rootCause');
    }
    if (input.lessonsLearned !== undefined) {
      incident.lessonsLearned = input.lessonsLearned;
      fields.push('lessonsLearned');
    }
    const statusChanged =
      input.status !== undefined && this.applyStatus(incident, input, actor, now);
    if (statusChanged) {
      fields.push('status');
    }

    const manager = this.transactions.manager;
    if (fields.length > 0) {
      incident.updatedAt = now;
      await manager.save(incident);
    }
    if (input.note !== undefined) {
      await manager.insert(IncidentNoteEntity, {
        id: randomUUID(),
        organizationId: incident.organizationId,
        incidentId: incident.id,
        authorId: actor.id,
        createdAt: now,
        body: input.note,
      });
    }
    if (fields.length > 0 || input.note !== undefined) {
      await this.audit.record(
        incident.organizationId,
        'incident.updated',
        {
          fields,
          ...(statusChanged ? { status: incident.status } : {}),
          ...(fields.includes('severity') ? { severity: incident.severity } : {}),
          noteAdded: input.note !== undefined,
        },
        { type: 'incident', id: incident.id },
      );
    }

    return this.viewOf(incident);
  }

  /** The incident, locked for the rest of the transaction when `lock`; 404 when not visible. */
  async findOrThrow(id: string, lock = false): Promise<IncidentEntity> {
    const incident = await this.transactions.manager.findOne(IncidentEntity, {
      where: { id },
      ...(lock ? { lock: { mode: 'pessimistic_write' as const } } : {}),
    });
    if (!incident) {
      throw new NotFoundProblem('incident');
    }

    return incident;
  }

  /** Marks a personal-data breach (for good), and sets when the organization became aware. */
  private applyBreach(
    incident: IncidentEntity,
    input: UpdateIncidentDto,
    now: Date,
    fields: string[],
  ): void {
    if (input.personalDataBreach === false && incident.personalDataBreach) {
      throw new IncidentsProblem(
        IncidentsErrorCode.BreachMarkPermanent,
        'An incident marked as a personal-data breach stays one: Article 33(5) asks for every breach to be documented. Record the assessment in a note.',
        HttpStatus.CONFLICT,
      );
    }
    const marking = input.personalDataBreach === true && !incident.personalDataBreach;
    if (
      !marking &&
      !incident.personalDataBreach &&
      (input.awareAt !== undefined || input.regulatorNotifiedAt !== undefined)
    ) {
      throw new IncidentsProblem(
        IncidentsErrorCode.NotABreach,
        'awareAt and regulatorNotifiedAt apply only to a personal-data breach: set personalDataBreach to true.',
        HttpStatus.CONFLICT,
      );
    }
    if (marking || input.awareAt !== undefined) {
      const awareAt = input.awareAt !== undefined ? this.pastTime(input.awareAt, 'awareAt') : now;
      incident.personalDataBreach = true;
      incident.awareAt = awareAt;
      incident.regulatorDueAt = regulatorDueAt(awareAt);
      fields.push(...(marking ? ['personalDataBreach'] : []), 'awareAt', 'regulatorDueAt');
    }
    if (input.regulatorNotifiedAt !== undefined) {
      incident.regulatorNotifiedAt = this.pastTime(
        input.regulatorNotifiedAt,
        'regulatorNotifiedAt',
      );
      fields.push('regulatorNotifiedAt');
    }
    if (
      incident.regulatorNotifiedAt &&
      incident.awareAt &&
      incident.regulatorNotifiedAt.getTime() < incident.awareAt.getTime()
    ) {
      throw new IncidentsProblem(
        IncidentsErrorCode.NotifiedBeforeAware,
        'regulatorNotifiedAt cannot come before awareAt.',
        HttpStatus.BAD_REQUEST,
      );
    }
  }

  /** Moves to the next status and records who and when; false when the status stays. */
  private applyStatus(
    incident: IncidentEntity,
    input: UpdateIncidentDto,
    actor: MemberActor,
    now: Date,
  ): boolean {
    const to = input.status as IncidentEntity['status'];
    const transition = transitionOf(incident.status, to);
    if (transition === 'unchanged') {
      return false;
    }
    if (transition === 'refused') {
      const next = nextStatusOf(incident.status);
      throw new IncidentsProblem(
        IncidentsErrorCode.TransitionRefused,
        next
          ? `An incident that is ${incident.status} can only move to ${next}.`
          : 'A resolved incident does not move again.',
        HttpStatus.CONFLICT,
      );
    }
    if (to === 'resolved' && !incident.rootCause) {
      throw new IncidentsProblem(
        IncidentsErrorCode.RootCauseRequired,
        'Resolving an incident needs its root cause: send rootCause.',
        HttpStatus.UNPROCESSABLE_ENTITY,
      );
    }
    incident.status = to;
    if (to === 'acknowledged') {
      incident.acknowledgedAt = now;
      incident.acknowledgedBy = actor.id;
    } else if (to === 'contained') {
      incident.containedAt = now;
      incident.containedBy = actor.id;
    } else {
      incident.resolvedAt = now;
      incident.resolvedBy = actor.id;
    }

    return true;
  }

  private pastTime(value: string, field: string): Date {
    const time = new Date(value);
    if (time.getTime() > this.clock.nowMs() + CLOCK_SKEW_MS) {
      throw new IncidentsProblem(
        IncidentsErrorCode.TimeInFuture,
        `${field} cannot be in the future.`,
        HttpStatus.BAD_REQUEST,
      );
    }

    return time;
  }

  private memberOrThrow(): MemberActor {
    const actor = this.context.actor;
    if (actor?.type !== 'user') {
      throw new ForbiddenProblem('Only members handle incidents.');
    }

    return actor;
  }

  summaryOf(incident: IncidentEntity): IncidentSummaryView {
    return {
      id: incident.id,
      rule: incident.rule,
      subjectType: incident.subjectType,
      subjectId: incident.subjectId,
      summary: incident.summary,
      severity: incident.severity,
      status: incident.status,
      alertCount: incident.alertCount,
      openedAt: incident.openedAt.toISOString(),
      lastAlertAt: incident.lastAlertAt.toISOString(),
      responseDueAt: incident.responseDueAt.toISOString(),
      overdue: incident.status === 'open' && incident.responseDueAt.getTime() <= this.clock.nowMs(),
      escalationLevel: incident.escalationLevel,
      escalatedAt: iso(incident.escalatedAt),
      personalDataBreach: incident.personalDataBreach,
      awareAt: iso(incident.awareAt),
      regulatorDueAt: iso(incident.regulatorDueAt),
      regulatorNotifiedAt: iso(incident.regulatorNotifiedAt),
      regulatorEscalationLevel: incident.regulatorEscalationLevel,
      regulatorEscalatedAt: iso(incident.regulatorEscalatedAt),
    };
  }

  private async viewOf(incident: IncidentEntity): Promise<IncidentView> {
    const manager = this.transactions.manager;
    const alerts: {
      alert_id: string;
      rule: string;
      severity: IncidentAlertView['severity'];
      summary: string;
      occurred_at: Date;
      details: Record<string, unknown>;
    }[] = await manager.query(
      `select alert_id, rule, severity, summary, occurred_at, details from incident_alerts
        where incident_id = $1 order by received_at, alert_id`,
      [incident.id],
    );
    const notes = await manager.find(IncidentNoteEntity, {
      where: { incidentId: incident.id },
      order: { createdAt: 'ASC', id: 'ASC' },
    });
    const actions: {
      id: string;
      type: IncidentActionView['type'];
      target_id: string;
      details: Record<string, unknown>;
      taken_by: string | null;
      taken_at: Date;
    }[] = await manager.query(
      `select id, type, target_id, details, taken_by, taken_at from incident_actions
        where incident_id = $1 order by taken_at, id`,
      [incident.id],
    );

    return {
      ...this.summaryOf(incident),
      acknowledged: { at: iso(incident.acknowledgedAt), by: incident.acknowledgedBy },
      contained: { at: iso(incident.containedAt), by: incident.containedBy },
      resolved: { at: iso(incident.resolvedAt), by: incident.resolvedBy },
      rootCause: incident.rootCause,
      lessonsLearned: incident.lessonsLearned,
      alerts: alerts.map((alert) => ({
        id: alert.alert_id,
        rule: alert.rule,
        severity: alert.severity,
        summary: alert.summary,
        occurredAt: new Date(alert.occurred_at).toISOString(),
        details: alert.details,
      })),
      notes: notes.map((note) => ({
        id: note.id,
        authorId: note.authorId,
        createdAt: note.createdAt.toISOString(),
        body: note.body,
      })),
      actions: actions.map((action) => ({
        id: action.id,
        type: action.type,
        targetId: action.target_id,
        details: action.details,
        takenBy: action.taken_by,
        takenAt: new Date(action.taken_at).toISOString(),
      })),
    };
  }
}
