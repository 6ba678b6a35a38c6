import { Controller, Get, Query } from '@nestjs/common';
import { ApiBearerAuth, ApiOkResponse, ApiTags } from '@nestjs/swagger';

import { Policy } from '@parley/authz';
import { TenantTransactions, newestFirstPage } from '@parley/database';

import { AuditEventPage, AuditEventView, AuditQueryDto } from './audit.dto';
import { AuditEventEntity } from './audit-event.entity';

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
    const builder = this.transactions.manager.createQueryBuilder(AuditEventEntity, 'event');
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
    const page = await newestFirstPage(builder, {
      alias: 'event',
      timeProperty: 'occurredAt',
      limit,
      cursor: query.cursor,
    });

    return {
      items: page.rows.map(toView),
      nextCursor: page.nextCursor,
    };
  }
}
