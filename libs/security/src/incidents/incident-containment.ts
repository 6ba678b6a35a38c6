import { HttpStatus, Injectable } from '@nestjs/common';

import { AuditService } from '@parley/audit';
import {
  Clock,
  CommonErrorCode,
  ForbiddenProblem,
  NotFoundProblem,
  ProblemException,
  RequestContext,
  SessionTerminator,
  declareTable,
} from '@parley/core';
import { TenantTransactions } from '@parley/database';
import { UsersService } from '@parley/tenancy';

import { addressIdentity } from '../login-throttle';
import { ApiKeyRevoker } from './api-key-revoker';
import { BlockedAddresses } from './blocked-addresses';
import { ACTION_FIELDS, IncidentActionDto, IncidentActionView } from './incidents.dto';
import { IncidentsErrorCode, IncidentsProblem } from './incidents.errors';

declareTable(
  'incident_actions',
  {
    purpose: 'Containment actions admins took on an incident, and what each did.',
    retention: 'Kept with the incident.',
  },
  {
    id: { class: 'internal' },
    organization_id: { class: 'internal' },
    incident_id: { class: 'internal' },
    type: { class: 'internal' },
    target_id: { class: 'internal', purpose: 'The member, API key or address block acted on.' },
    details: { class: 'internal', purpose: 'Counts and expiry times; never an address.' },
    taken_by: { class: 'internal' },
    taken_at: { class: 'internal' },
  },
);

/** Why the sessions ended, as `auth_sessions.end_reason` and the audit entry say it. */
export const CONTAINMENT_SESSION_END_REASON = 'incident_containment';

/**
 * Containment actions, one call each, through the services that own them: a member's sessions
 * end through SessionTerminator (as an admin's DELETE /users/:id/sessions does), a key is
 * revoked through ApiKeyRevoker (ApiKeysService, as DELETE /api-keys/:id does), and an address
 * is blocked for the organization. Each is recorded on the incident and in the audit trail.
 */
@Injectable()
export class IncidentContainment {
  constructor(
    private readonly transactions: TenantTransactions,
    private readonly context: RequestContext,
    private readonly clock: Clock,
    private readonly audit: AuditService,
    private readonly users: UsersService,
    private readonly sessions: SessionTerminator,
    private readonly apiKeys: ApiKeyRevoker,
    private readonly blocked: BlockedAddresses,
  ) {}

  async take(incidentId: string, input: IncidentActionDto): Promise<IncidentActionView> {
    assertOnlyFieldsOf(input);
    const actor = this.context.actor;
    if (actor?.type !== 'user') {
      throw new ForbiddenProblem('Only members take containment actions.');
    }
    const organizationId = this.context.organizationIdOrThrow();
    const manager = this.transactions.manager;
    const rows: { id: string; status: string }[] = await manager.query(
      `select id, status from incidents where id = $1 for update`,
      [incidentId],
    );
    if (!rows[0]) {
      throw new NotFoundProblem('incident');
    }
    if (rows[0].status === 'resolved') {
      throw new IncidentsProblem(
        IncidentsErrorCode.Resolved,
        'The incident is resolved; containment actions belong to an incident still being handled.',
        HttpStatus.CONFLICT,
      );
    }

    const takenAt = this.clock.now();
    let targetId: string;
    let details: { sessionsEnded?: number; minutes?: number; expiresAt?: string };
    if (input.type === 'end_user_sessions') {
      const member = await this.users.findOrThrow(input.userId as string);
      const ended = await this.sessions.endAllForUser(member.id, CONTAINMENT_SESSION_END_REASON);
      await this.audit.record(
        organizationId,
        'session.ended',
        { reason: CONTAINMENT_SESSION_END_REASON, count: ended.length },
        { type: 'user', id: member.id },
      );
      targetId = member.id;
      details = { sessionsEnded: ended.length };
    } else if (input.type === 'revoke_api_key') {
      await this.apiKeys.revoke(input.apiKeyId as string);
      targetId = input.apiKeyId as string;
      details = {};
    } else {
      const address = input.address as string;
      if (this.context.ip && addressIdentity(this.context.ip) === addressIdentity(address)) {
        throw new IncidentsProblem(
          IncidentsErrorCode.OwnAddress,
          'This is the address your own request comes from (behind a proxy without TRUST_PROXY, everyone shares it); blocking it would lock out your organization.',
          HttpStatus.BAD_REQUEST,
        );
      }
      const block = await this.blocked.block(manager, {
        organizationId,
        incidentId,
        address,
        minutes: input.minutes as number,
        blockedBy: actor.id,
        at: takenAt,
      });
      targetId = block.id;
      details = { minutes: input.minutes, expiresAt: block.expiresAt.toISOString() };
    }

    const inserted: { id: string }[] = await manager.query(
      `insert into incident_actions
         (organization_id, incident_id, type, target_id, details, taken_by, taken_at)
       values ($1, $2, $3, $4, $5, $6, $7)
       returning id`,
      [
        organizationId,
        incidentId,
        input.type,
        targetId,
        JSON.stringify(details),
        actor.id,
        takenAt,
      ],
    );
    await this.audit.record(
      organizationId,
      'incident.action_taken',
      {
        type: input.type,
        targetId,
        ...(details.sessionsEnded !== undefined ? { sessionsEnded: details.sessionsEnded } : {}),
        ...(details.expiresAt !== undefined ? { expiresAt: details.expiresAt } : {}),
      },
      { type: 'incident', id: incidentId },
    );

    return {
      id: inserted[0].id,
      type: input.type,
      targetId,
      details,
      takenBy: actor.id,
      takenAt: takenAt.toISOString(),
    };
  }
}

/** A field of another action type is refused, not silently dropped. */
function assertOnlyFieldsOf(input: IncidentActionDto): void {
  const allowed = new Set<string>(['type', ...ACTION_FIELDS[input.type]]);
  const extra = Object.keys(input).filter(
    (key) => !allowed.has(key) && input[key as keyof IncidentActionDto] !== undefined,
  );
  if (extra.length > 0) {
    throw new ProblemException(HttpStatus.BAD_REQUEST, CommonErrorCode.ValidationFailed, {
      detail: `${input.type} takes only ${[...allowed].join(', ')}`,
      errors: extra.map((field) => ({ field, message: `${field} is not used by ${input.type}` })),
    });
  }
}
