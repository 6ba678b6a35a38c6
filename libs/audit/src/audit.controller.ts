import { Controller, Get, HttpStatus, Query } from '@nestjs/common';
import { ApiBearerAuth, ApiOkResponse, ApiTags } from '@nestjs/swagger';
import { Brackets } from 'typeorm';

import { Policy } from '@parley/authz';
import { CommonErrorCode, ProblemException } from '@parley/core';
import { TenantTransactions } from '@parley/database';

import { AuditEventPage, AuditEventView, AuditQueryDto } from './audit.dto';
import { AuditEventEntity } from './audit-event.entity';

interface Cursor {
  at: string;
  id: string;
}

function encodeCursor(event: AuditEventEntity): string {
  return Buffer.from(JSON.stringify({ at: event.occurredAt.toISOString(), id: event.id })).toString(
    'base64url',
  );
}

function decodeCursor(cursor: string): Cursor {
  try {
    const value = JSON.parse(Buffer.from(cursor, 'base64url').toString('utf8')) as Cursor;
    if (
      typeof value.at === 'string' &&
      !Number.isNaN(Date.parse(value.at)) &&
      /^[0-9a-f-]{36}$/.test(value.id)
    ) {
      return value;
    }
  } catch {
    // falls through to the refusal below
  }
  throw new ProblemException(HttpStatus.BAD_REQUEST, CommonErrorCode.ValidationFailed, {
    detail: 'cursor is not valid',
  });
}

function toView(event: AuditEventEntity): AuditEventView {
  return {
    id: event.id,
    occurredAt: event.occurredAt.toISOString(),
    actorType: event.actorType,
    actorId: event.actorId,
    action: event.action,
    targetType: event.targetType,
    targetId: event.targetId,
    requestId: event.requestId,
    ip: event.ip,
    changes: event.changes,
    metadata: event.metadata,
    elevationId: event.elevationId,
  };
}

@ApiTags('audit')
@ApiBearerAuth()
@Controller('audit')
export class AuditController {
  constructor(private readonly transactions: TenantTransactions) {}

  /** Newest first, filtered by time, actor and action, one page at a time. */
  @Get('events')
  @Policy.can('read', 'AuditEvent')
  @ApiOkResponse({ type: AuditEventPage })
  async list(@Query() query: AuditQueryDto): Promise<AuditEventPage> {
    const limit = query.limit ?? 100;
    const builder = this.transactions.manager
      .createQueryBuilder(AuditEventEntity, 'event')
      .orderBy('event.occurredAt', 'DESC')
      .addOrderBy('event.id', 'DESC')
      .limit(limit + 1);
    if (query.from) {
      builder.andWhere('event.occurredAt >= :from', { from: new Date(query.from) });
    }
    if (query.to) {
      builder.andWhere('event.occurredAt < :to', { to: new Date(query.to) });
    }
    if (query.actor) {
      builder.andWhere('event.actorId = :actor', { actor: query.actor });
    }
    if (query.action) {
      builder.andWhere('event.action = :action', { action: query.action });
    }
    if (query.elevation) {
      builder.andWhere('event.elevationId = :elevation', { elevation: query.elevation });
    }
    if (query.cursor) {
      const cursor = decodeCursor(query.cursor);
      builder.andWhere(
        new Brackets((where) => {
          where
            .where('event.occurredAt < :cursorAt', { cursorAt: new Date(cursor.at) })
            .orWhere('(event.occurredAt = :cursorAt and event.id < :cursorId)', {
              cursorId: cursor.id,
            });
        }),
      );
    }
    const rows = await builder.getMany();
    const page = rows.slice(0, limit);

    return {
      items: page.map(toView),
      nextCursor: rows.length > limit ? encodeCursor(page[page.length - 1]) : null,
    };
  }
}
