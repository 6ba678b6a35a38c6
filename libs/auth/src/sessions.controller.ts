import { Controller, Delete, Get, HttpCode, Param } from '@nestjs/common';
import {
  ApiBearerAuth,
  ApiNoContentResponse,
  ApiOkResponse,
  ApiProperty,
  ApiTags,
} from '@nestjs/swagger';

import { AuditService } from '@parley/audit';
import { Policy } from '@parley/authz';
import { NotFoundProblem, RequestContext } from '@parley/core';
import { IdParam, UsersService } from '@parley/tenancy';

import { SessionsService, SessionSummary } from './sessions.service';

export class SessionView {
  @ApiProperty({ format: 'uuid' }) id: string;
  @ApiProperty({ format: 'date-time' }) createdAt: string;
  @ApiProperty({ format: 'date-time' }) lastSeenAt: string;
  @ApiProperty({ format: 'date-time' }) expiresAt: string;
  @ApiProperty({ nullable: true, type: String }) ip: string | null;
  @ApiProperty({ nullable: true, type: String }) userAgent: string | null;
  @ApiProperty({ description: 'the session of this request' }) current: boolean;
}

export class SessionListView {
  @ApiProperty({ type: [SessionView] }) items: SessionView[];
}

function toView(session: SessionSummary, currentId: string | undefined): SessionView {
  return {
    id: session.id,
    createdAt: session.createdAt.toISOString(),
    lastSeenAt: session.lastSeenAt.toISOString(),
    expiresAt: session.expiresAt.toISOString(),
    ip: session.ip,
    userAgent: session.userAgent,
    current: session.id === currentId,
  };
}

/** A member's own sessions: list them, end one, or end all but this one. */
@ApiTags('auth')
@ApiBearerAuth()
@Controller('auth/sessions')
export class SessionsController {
  constructor(
    private readonly sessions: SessionsService,
    private readonly context: RequestContext,
    private readonly audit: AuditService,
  ) {}

  @Get()
  @Policy.member()
  @ApiOkResponse({ type: SessionListView })
  async list(): Promise<SessionListView> {
    const { userId, sessionId } = this.currentMember();

    return {
      items: (await this.sessions.listActive(userId)).map((session) => toView(session, sessionId)),
    };
  }

  @Delete(':id')
  @HttpCode(204)
  @Policy.member()
  @ApiNoContentResponse()
  async end(@Param() params: IdParam): Promise<void> {
    const { userId } = this.currentMember();
    if (!(await this.sessions.endOwn(params.id, userId, 'ended_by_user'))) {
      throw new NotFoundProblem('session');
    }
    await this.audit.record(
      this.context.organizationIdOrThrow(),
      'session.ended',
      { reason: 'ended_by_user', count: 1 },
      { type: 'session', id: params.id },
    );
  }

  @Delete()
  @HttpCode(204)
  @Policy.member()
  @ApiNoContentResponse()
  async endOthers(): Promise<void> {
    const { userId, sessionId } = this.currentMember();
    const ended = await this.sessions.endAllForUser(userId, 'ended_by_user', sessionId);
    await this.audit.record(
      this.context.organizationIdOrThrow(),
      'session.ended',
      { reason: 'ended_by_user', count: ended.length },
      { type: 'user', id: userId },
    );
  }

  private currentMember(): { userId: string; sessionId: string } {
    const actor = this.context.actor;
    if (actor?.type !== 'user') {
      throw new NotFoundProblem('session');
    }

    return { userId: actor.id, sessionId: actor.sessionId };
  }
}

/** An admin ends every session of a member at once (containment). */
@ApiTags('users')
@ApiBearerAuth()
@Controller('users')
export class MemberSessionsController {
  constructor(
    private readonly sessions: SessionsService,
    private readonly users: UsersService,
    private readonly context: RequestContext,
    private readonly audit: AuditService,
  ) {}

  @Delete(':id/sessions')
  @HttpCode(204)
  @Policy.can('manage', 'Session')
  @ApiNoContentResponse()
  async endAll(@Param() params: IdParam): Promise<void> {
    const member = await this.users.findOrThrow(params.id);
    const ended = await this.sessions.endAllForUser(member.id, 'ended_by_admin');
    await this.audit.record(
      this.context.organizationIdOrThrow(),
      'session.ended',
      { reason: 'ended_by_admin', count: ended.length },
      { type: 'user', id: member.id },
    );
  }
}
