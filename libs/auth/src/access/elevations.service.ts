import { HttpStatus, Injectable } from '@nestjs/common';

import { AuditService } from '@parley/audit';
import { AbilityFactory } from '@parley/authz';
import {
  Actor,
  Clock,
  ForbiddenProblem,
  NotFoundProblem,
  RequestContext,
  Role,
  baseRoleOf,
  isHigherRole,
  declareTable,
} from '@parley/core';
import { FieldCipher } from '@parley/crypto';
import { TenantTransactions } from '@parley/database';
import { OrganizationsService } from '@parley/tenancy';

import { MfaVerificationService } from '../mfa/mfa-verification.service';
import { SessionsService } from '../sessions.service';

import { MemberActor } from './effective-role';
import {
  ElevationListView,
  ElevationStatus,
  ElevationView,
  RequestElevationDto,
} from './elevations.dto';
import { ElevationsErrorCode, ElevationsProblem } from './elevations.errors';

declareTable(
  'access_elevations',
  {
    purpose: 'Just-in-time role elevations: who asked, who decided, for how long and why.',
    retention: 'Kept with the audit trail.',
  },
  Object.fromEntries(
    [
      'id',
      'organization_id',
      'requester_id',
      'requester_role',
      'role',
      'minutes',
      'reason',
      'status',
      'requested_at',
      'approver_id',
      'decided_at',
      'starts_at',
      'ends_at',
      'ended_at',
      'revoked_by',
    ].map((column) => [column, { class: 'internal' as const }]),
  ),
);

interface ElevationRow {
  id: string;
  organization_id: string;
  requester_id: string;
  requester_name: string;
  requester_role: Role;
  role: Role;
  minutes: number;
  reason: string;
  status: ElevationStatus;
  requested_at: Date;
  approver_id: string | null;
  approver_name: string | null;
  decided_at: Date | null;
  starts_at: Date | null;
  ends_at: Date | null;
  ended_at: Date | null;
  revoked_by: string | null;
  revoker_name: string | null;
}

const SELECT_ELEVATIONS = `
  select e.id, e.organization_id, e.requester_id, r.name as requester_name, e.requester_role,
         e.role, e.minutes, e.reason, e.status, e.requested_at, e.approver_id,
         a.name as approver_name, e.decided_at, e.starts_at, e.ends_at, e.ended_at, e.revoked_by,
         v.name as revoker_name
    from access_elevations e
    join users r on r.organization_id = e.organization_id and r.id = e.requester_id
    left join users a on a.organization_id = e.organization_id and a.id = e.approver_id
    left join users v on v.organization_id = e.organization_id and v.id = e.revoked_by`;

/** Requests older than the newest 500 are not listed (no paging yet); the audit trail keeps them. */
const LIST_LIMIT = 500;

/** Expiry is noticed by whichever request comes first; the entry names no member as its actor. */
const EXPIRY_ACTOR: Actor = { type: 'system', id: 'elevation-expiry' };

/**
 * Just-in-time elevation: a member asks for a higher role for up to eight hours, another admin
 * approves or denies, and the admin or the member can end it early. Who may decide is who may
 * change roles (`update User`). The role itself is applied by authentication (see
 * effectiveMemberActor); this class keeps the requests and their audit trail.
 */
@Injectable()
export class ElevationsService {
  constructor(
    private readonly transactions: TenantTransactions,
    private readonly context: RequestContext,
    private readonly abilities: AbilityFactory,
    private readonly audit: AuditService,
    private readonly clock: Clock,
    private readonly sessions: SessionsService,
    private readonly organizations: OrganizationsService,
    private readonly mfa: MfaVerificationService,
    private readonly cipher: FieldCipher,
  ) {}

  /** Member names are sealed in the users table; the joined rows carry them sealed. */
  private async withNames(rows: ElevationRow[]): Promise<ElevationRow[]> {
    const db = this.transactions.manager;
    const place = (rowId: string | null) => (row: ElevationRow) => ({
      organizationId: row.organization_id,
      table: 'users',
      column: 'name',
      rowId: rowId === null ? undefined : rowId,
    });
    for (const row of rows) {
      await this.cipher.openRows(db, [row], 'requester_name', place(row.requester_id));
      await this.cipher.openRows(db, [row], 'approver_name', place(row.approver_id));
      await this.cipher.openRows(db, [row], 'revoker_name', place(row.revoked_by));
    }

    return rows;
  }

  async request(input: RequestElevationDto): Promise<ElevationView> {
    const actor = this.memberOrThrow();
    const baseRole = baseRoleOf(actor);
    if (!isHigherRole(input.role, baseRole)) {
      throw new ElevationsProblem(
        ElevationsErrorCode.RoleNotHigher,
        `Ask for a role higher than your own (${baseRole}).`,
        HttpStatus.UNPROCESSABLE_ENTITY,
      );
    }
    await this.assertMfaAllows(actor.id, input.role, 'You have');

    await this.expireDue();
    const organizationId = this.context.organizationIdOrThrow();
    const rows: { id: string }[] = await this.transactions.manager.query(
      `insert into access_elevations
         (organization_id, requester_id, requester_role, role, minutes, reason, requested_at)
       values ($1, $2, $3, $4, $5, $6, $7)
       on conflict do nothing
       returning id`,
      [
        organizationId,
        actor.id,
        baseRole,
        input.role,
        input.minutes,
        input.reason,
        this.clock.now(),
      ],
    );
    if (!rows[0]) {
      throw new ElevationsProblem(
        ElevationsErrorCode.AlreadyPending,
        'You already have a request waiting for approval; revoke it to ask for another.',
        HttpStatus.CONFLICT,
      );
    }

    await this.audit.record(
      organizationId,
      'elevation.requested',
      { role: input.role, minutes: input.minutes, requesterRole: baseRole },
      { type: 'elevation', id: rows[0].id },
    );

    return this.toView(await this.findRowOrThrow(rows[0].id));
  }

  /** Every request of the organization for those who decide them; a member's own otherwise. */
  async list(): Promise<ElevationListView> {
    const actor = this.memberOrThrow();
    await this.expireDue();
    const rows: ElevationRow[] = this.mayDecide(actor)
      ? await this.transactions.manager.query(
          `${SELECT_ELEVATIONS} order by e.requested_at desc, e.id desc limit ${LIST_LIMIT}`,
        )
      : await this.transactions.manager.query(
          `${SELECT_ELEVATIONS} where e.requester_id = $1
            order by e.requested_at desc, e.id desc limit ${LIST_LIMIT}`,
          [actor.id],
        );

    return { items: (await this.withNames(rows)).map((row) => this.toView(row)) };
  }

  /** Starts the clock: the role applies from now for the minutes asked. */
  async approve(id: string): Promise<ElevationView> {
    const actor = this.memberOrThrow();
    await this.expireDue();
    const row = await this.lockOrThrow(id);
    this.assertDecidable(row, actor);
    await this.assertMfaAllows(row.requester_id, row.role, 'The member has');

    const [updated]: [{ starts_at: Date; ends_at: Date }[], number] =
      await this.transactions.manager.query(
        `update access_elevations
            set status = 'approved', approver_id = $2, decided_at = $3, starts_at = $3,
                ends_at = $3::timestamptz + make_interval(mins => minutes)
          where id = $1
        returning starts_at, ends_at`,
        [row.id, actor.id, this.clock.now()],
      );
    this.sessions.forgetMember(row.requester_id);
    await this.audit.record(
      row.organization_id,
      'elevation.approved',
      {
        role: row.role,
        requesterId: row.requester_id,
        startsAt: new Date(updated[0].starts_at).toISOString(),
        endsAt: new Date(updated[0].ends_at).toISOString(),
      },
      { type: 'elevation', id: row.id },
    );

    return this.toView(await this.findRowOrThrow(row.id));
  }

  async deny(id: string): Promise<ElevationView> {
    const actor = this.memberOrThrow();
    await this.expireDue();
    const row = await this.lockOrThrow(id);
    this.assertDecidable(row, actor);

    await this.transactions.manager.query(
      `update access_elevations set status = 'denied', approver_id = $2, decided_at = $3
        where id = $1`,
      [row.id, actor.id, this.clock.now()],
    );
    await this.audit.record(
      row.organization_id,
      'elevation.denied',
      { role: row.role, requesterId: row.requester_id },
      { type: 'elevation', id: row.id },
    );

    return this.toView(await this.findRowOrThrow(row.id));
  }

  /** Ends a running elevation early, or withdraws a pending request: its requester or an admin. */
  async revoke(id: string): Promise<ElevationView> {
    const actor = this.memberOrThrow();
    await this.expireDue();
    const row = await this.lockOrThrow(id);
    if (row.requester_id !== actor.id && !this.mayDecide(actor)) {
      throw new NotFoundProblem('elevation');
    }
    if (row.status !== 'pending' && row.status !== 'approved') {
      throw new ElevationsProblem(
        ElevationsErrorCode.NotOpen,
        `This elevation is already ${row.status}.`,
        HttpStatus.CONFLICT,
      );
    }

    await this.transactions.manager.query(
      `update access_elevations set status = 'revoked', ended_at = $2, revoked_by = $3
        where id = $1`,
      [row.id, this.clock.now(), actor.id],
    );
    this.sessions.forgetMember(row.requester_id);
    await this.audit.record(
      row.organization_id,
      'elevation.revoked',
      { role: row.role, requesterId: row.requester_id, wasActive: row.status === 'approved' },
      { type: 'elevation', id: row.id },
    );

    return this.toView(await this.findRowOrThrow(row.id));
  }

  /**
   * Records the end of every elevation that has stopped applying: its time is up, or its
   * member's own role changed (a pending request then lapses too). Authentication already
   * ignores them; this writes their end to the table and the audit trail when first noticed.
   */
  async expireDue(): Promise<void> {
    const [rows]: [
      { id: string; requester_id: string; role: Role; ended_at: Date; role_changed: boolean }[],
      number,
    ] = await this.transactions.manager.query(
      `update access_elevations e
          set status = 'expired',
              ended_at = case when e.status = 'approved' then least(e.ends_at, $1) else $1 end
         from users u
        where u.organization_id = e.organization_id and u.id = e.requester_id
          and ((e.status = 'approved' and e.ends_at <= $1)
            or (e.status in ('pending', 'approved') and e.requester_role <> u.role))
      returning e.id, e.requester_id, e.role, e.ended_at, e.requester_role <> u.role as role_changed`,
      [this.clock.now()],
    );
    const organizationId = this.context.organizationIdOrThrow();
    for (const row of rows) {
      await this.audit.record(
        organizationId,
        'elevation.expired',
        {
          role: row.role,
          requesterId: row.requester_id,
          reason: row.role_changed ? 'role_changed' : 'ended',
          endedAt: new Date(row.ended_at).toISOString(),
        },
        { type: 'elevation', id: row.id },
        EXPIRY_ACTOR,
      );
    }
  }

  private memberOrThrow(): MemberActor {
    const actor = this.context.actor;
    if (actor?.type !== 'user') {
      throw new ForbiddenProblem('Only members ask for and decide elevations.');
    }

    return actor;
  }

  /** Deciding on a temporary role is the same right as changing a member's role. */
  private mayDecide(actor: MemberActor): boolean {
    return this.abilities.forActor(actor).can('update', 'User');
  }

  private assertDecidable(row: ElevationRow, actor: MemberActor): void {
    if (row.requester_id === actor.id) {
      throw new ElevationsProblem(
        ElevationsErrorCode.OwnRequest,
        'Another admin must decide on your own request.',
        HttpStatus.FORBIDDEN,
      );
    }
    if (row.status !== 'pending') {
      throw new ElevationsProblem(
        ElevationsErrorCode.NotPending,
        `This request is already ${row.status}.`,
        HttpStatus.CONFLICT,
      );
    }
  }

  /**
   * An organization that requires MFA for a role requires it of everyone acting in that role,
   * elevated or not: a member without a confirmed factor cannot be elevated to it.
   */
  private async assertMfaAllows(userId: string, role: Role, subject: string): Promise<void> {
    const organization = await this.organizations.currentOrThrow();
    if (!organization.mfaRequiredRoles.includes(role) || (await this.mfa.activeFactor(userId))) {
      return;
    }
    throw new ElevationsProblem(
      ElevationsErrorCode.MfaRequired,
      `${subject} no confirmed MFA factor, which your organization requires for the ${role} role.`,
      HttpStatus.FORBIDDEN,
    );
  }

  /** The elevation, locked for a decision; 404 when absent, in this organization or any other. */
  private async lockOrThrow(id: string): Promise<ElevationRow> {
    const rows: ElevationRow[] = await this.transactions.manager.query(
      `${SELECT_ELEVATIONS} where e.id = $1 for update of e`,
      [id],
    );
    if (!rows[0]) {
      throw new NotFoundProblem('elevation');
    }

    return rows[0];
  }

  private async findRowOrThrow(id: string): Promise<ElevationRow> {
    const rows: ElevationRow[] = await this.transactions.manager.query(
      `${SELECT_ELEVATIONS} where e.id = $1`,
      [id],
    );
    if (!rows[0]) {
      throw new NotFoundProblem('elevation');
    }

    return (await this.withNames(rows))[0];
  }

  private toView(row: ElevationRow): ElevationView {
    const now = this.clock.nowMs();
    const startsAt = row.starts_at ? new Date(row.starts_at) : null;
    const endsAt = row.ends_at ? new Date(row.ends_at) : null;

    return {
      id: row.id,
      requester: { id: row.requester_id, name: row.requester_name },
      requesterRole: row.requester_role,
      role: row.role,
      minutes: row.minutes,
      reason: row.reason,
      status: row.status,
      active:
        row.status === 'approved' &&
        startsAt !== null &&
        endsAt !== null &&
        startsAt.getTime() <= now &&
        endsAt.getTime() > now,
      requestedAt: new Date(row.requested_at).toISOString(),
      decidedBy: memberOf(row.approver_id, row.approver_name),
      decidedAt: iso(row.decided_at),
      startsAt: iso(startsAt),
      endsAt: iso(endsAt),
      endedAt: iso(row.ended_at),
      revokedBy: memberOf(row.revoked_by, row.revoker_name),
    };
  }
}

function iso(value: Date | null): string | null {
  return value ? new Date(value).toISOString() : null;
}

function memberOf(id: string | null, name: string | null): { id: string; name: string } | null {
  return id && name !== null ? { id, name } : null;
}
