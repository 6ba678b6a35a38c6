import { Injectable, OnModuleInit } from '@nestjs/common';
import {
  DataSource,
  EntitySubscriberInterface,
  InsertEvent,
  RemoveEvent,
  UpdateEvent,
} from 'typeorm';

import { auditedTargetType } from './audited.decorator';
import { AuditService } from './audit.service';

interface WithTenant {
  id?: string;
  organizationId?: string;
}

/** The organizations table is its own tenant: its id is the organization id. */
function tenantOf(tableName: string, entity: WithTenant): string | undefined {
  return tableName === 'organizations' ? entity.id : entity.organizationId;
}

/**
 * Records inserts, updates and deletes of @Audited entities in the same transaction. It keeps
 * field names only, never values, so no Confidential value reaches the trail.
 */
@Injectable()
export class AuditSubscriber implements EntitySubscriberInterface, OnModuleInit {
  constructor(
    private readonly dataSource: DataSource,
    private readonly audit: AuditService,
  ) {}

  onModuleInit(): void {
    this.dataSource.subscribers.push(this);
  }

  async afterInsert(event: InsertEvent<WithTenant>): Promise<void> {
    const targetType = auditedTargetType(event.metadata.target);
    const entity = event.entity;
    const organizationId = entity ? tenantOf(event.metadata.tableName, entity) : undefined;
    if (!targetType || !organizationId) {
      return;
    }
    const id = entity.id ?? (event.entityId as WithTenant | undefined)?.id;
    await this.audit.write(event.manager, {
      organizationId,
      action: `${targetType}.created`,
      target: id ? { type: targetType, id } : undefined,
    });
  }

  async afterUpdate(event: UpdateEvent<WithTenant>): Promise<void> {
    const targetType = auditedTargetType(event.metadata.target);
    const entity = { ...(event.databaseEntity ?? {}), ...(event.entity ?? {}) } as WithTenant;
    const organizationId = tenantOf(event.metadata.tableName, entity);
    if (!targetType || !organizationId) {
      return;
    }
    const changes =
      event.updatedColumns.length > 0
        ? event.updatedColumns.map((column) => column.propertyName)
        : Object.keys(event.entity ?? {}).filter((key) => key !== 'updatedAt');
    await this.audit.write(event.manager, {
      organizationId,
      action: `${targetType}.updated`,
      target: entity.id ? { type: targetType, id: entity.id } : undefined,
      changes: changes.filter((name) => name !== 'updatedAt'),
    });
  }

  async afterRemove(event: RemoveEvent<WithTenant>): Promise<void> {
    const targetType = auditedTargetType(event.metadata.target);
    const entity = (event.databaseEntity ?? event.entity) as WithTenant | undefined;
    const organizationId = entity ? tenantOf(event.metadata.tableName, entity) : undefined;
    if (!targetType || !entity || !organizationId) {
      return;
    }
    const id = entity.id ?? (event.entityId as string | undefined);
    await this.audit.write(event.manager, {
      organizationId,
      action: `${targetType}.deleted`,
      target: id ? { type: targetType, id: String(id) } : undefined,
    });
  }
}
