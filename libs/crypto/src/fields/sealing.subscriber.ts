import { randomUUID } from 'node:crypto';

import { Injectable, OnModuleInit } from '@nestjs/common';
import {
  DataSource,
  EntityMetadata,
  EntitySubscriberInterface,
  InsertEvent,
  LoadEvent,
  UpdateEvent,
} from 'typeorm';

import { fieldMarksOf, isProtectedClass } from '@parley/core';

import { SealedValueError } from '../aead';
import { FieldCipher, SealScope } from './field-cipher';

interface SealedField {
  property: string;
  column: string;
  scope: 'organization' | 'contact';
  /** The property holding the contact id, for contact-scoped fields. */
  subject: string | null;
  blindIndex: { property: string } | null;
}

interface Plan {
  table: string;
  fields: SealedField[];
}

type Row = Record<string, unknown> & { id?: string; organizationId?: string };

/**
 * Seals marked fields on their way into the database and opens them on the way out, for every
 * write and read that goes through TypeORM entities. The entity in memory always holds clear
 * values; the row always holds sealed ones. A write TypeORM cannot tie to a loaded row (a
 * query-builder `update()` of a sealed column) is refused here, and any clear value that reaches
 * a sealed column by raw SQL is refused by the column's CHECK constraint.
 */
@Injectable()
export class SealingSubscriber implements EntitySubscriberInterface, OnModuleInit {
  private readonly plans = new Map<Function, Plan | null>();
  /** Clear values to put back on an entity once its row is written. */
  private readonly pending = new WeakMap<object, Record<string, unknown>>();

  constructor(
    private readonly dataSource: DataSource,
    private readonly cipher: FieldCipher,
  ) {}

  onModuleInit(): void {
    // First, so every other subscriber sees the entity as the rest of the code does.
    this.dataSource.subscribers.unshift(this);
  }

  async beforeInsert(event: InsertEvent<Row>): Promise<void> {
    const plan = this.planFor(event.metadata);
    const entity = event.entity;
    if (!plan || !entity) {
      return;
    }
    entity.id ??= randomUUID();
    const organizationId = requireOrganization(plan, entity);
    const clear: Record<string, unknown> = {};
    for (const field of plan.fields) {
      const value = entity[field.property];
      if (value === undefined || value === null) {
        if (field.blindIndex) {
          entity[field.blindIndex.property] = null;
        }
        continue;
      }
      clear[field.property] = value;
      const sealed = await this.sealField(event.manager, plan, field, entity, {
        organizationId,
        rowId: entity.id,
        value,
      });
      entity[field.property] = sealed.value;
      if (field.blindIndex) {
        entity[field.blindIndex.property] = sealed.index;
      }
    }
    this.pending.set(entity, clear);
  }

  afterInsert(event: InsertEvent<Row>): void {
    this.restore(event.entity);
  }

  async beforeUpdate(event: UpdateEvent<Row>): Promise<void> {
    const plan = this.planFor(event.metadata);
    const entity = event.entity as Row | undefined;
    if (!plan || !entity) {
      return;
    }
    const touched = plan.fields.filter((field) => entity[field.property] !== undefined);
    if (touched.length === 0) {
      return;
    }
    const stored = event.databaseEntity as Row | undefined;
    if (!stored?.id) {
      throw new SealedValueError(
        `${plan.table}.${touched[0].column} is sealed: change it by saving a loaded entity, not with update()`,
      );
    }
    const organizationId = requireOrganization(plan, stored);
    const clear: Record<string, unknown> = {};
    for (const field of touched) {
      const value = entity[field.property];
      // An unchanged value stays as it is stored: nothing is written, nothing is re-sealed.
      if (value === stored[field.property]) {
        continue;
      }
      clear[field.property] = value;
      if (value === null) {
        if (field.blindIndex) {
          entity[field.blindIndex.property] = null;
        }
        continue;
      }
      const sealed = await this.sealField(
        event.manager,
        plan,
        field,
        { ...stored, ...entity },
        { organizationId, rowId: stored.id, value },
      );
      entity[field.property] = sealed.value;
      if (field.blindIndex) {
        entity[field.blindIndex.property] = sealed.index;
      }
    }
    this.pending.set(entity, clear);
  }

  afterUpdate(event: UpdateEvent<Row>): void {
    this.restore(event.entity as Row | undefined);
  }

  async afterLoad(entity: Row, event?: LoadEvent<Row>): Promise<void> {
    const metadata = event?.metadata ?? this.dataSource.getMetadata(entity.constructor);
    const plan = this.planFor(metadata);
    if (!plan) {
      return;
    }
    const manager = event?.manager ?? this.dataSource.manager;
    for (const field of plan.fields) {
      const value = entity[field.property];
      if (typeof value !== 'string') {
        continue;
      }
      if (!entity.id || !entity.organizationId) {
        throw new SealedValueError(
          `${plan.table}.${field.column} cannot be opened without its row's id and organizationId`,
        );
      }
      entity[field.property] = await this.cipher.open(
        manager,
        {
          organizationId: entity.organizationId,
          table: plan.table,
          column: field.column,
          rowId: entity.id,
        },
        value,
      );
    }
  }

  private async sealField(
    db: { query(sql: string, parameters?: unknown[]): Promise<unknown> },
    plan: Plan,
    field: SealedField,
    row: Row,
    target: { organizationId: string; rowId: string; value: unknown },
  ): Promise<{ value: string; index: Buffer | null }> {
    if (typeof target.value !== 'string') {
      throw new SealedValueError(`${plan.table}.${field.column} holds text only`);
    }
    const scope = this.scopeOf(plan, field, row);
    const index = field.blindIndex
      ? await this.cipher.blindIndex(db, target.organizationId, field.column, target.value)
      : null;
    const value = await this.cipher.seal(
      db,
      scope,
      {
        organizationId: target.organizationId,
        table: plan.table,
        column: field.column,
        rowId: target.rowId,
      },
      target.value,
    );

    return { value, index };
  }

  private scopeOf(plan: Plan, field: SealedField, row: Row): SealScope {
    if (field.scope === 'organization') {
      return { purpose: 'organization' };
    }
    const contactId = field.subject ? row[field.subject] : undefined;
    if (typeof contactId !== 'string') {
      throw new SealedValueError(
        `${plan.table}.${field.column} is sealed under its contact's key, which this write does not name`,
      );
    }

    return { purpose: 'contact', contactId };
  }

  private restore(entity: Row | undefined): void {
    if (!entity) {
      return;
    }
    const clear = this.pending.get(entity);
    if (clear) {
      Object.assign(entity, clear);
      this.pending.delete(entity);
    }
  }

  private planFor(metadata: EntityMetadata): Plan | null {
    const target = metadata.target;
    if (typeof target !== 'function') {
      return null;
    }
    const cached = this.plans.get(target);
    if (cached !== undefined) {
      return cached;
    }
    const fields: SealedField[] = [];
    for (const [property, mark] of fieldMarksOf(target)) {
      const protection = mark.protection ?? (isProtectedClass(mark.class) ? 'sealed' : 'none');
      if (protection !== 'sealed') {
        continue;
      }
      const column = metadata.findColumnWithPropertyName(property);
      if (!column) {
        throw new Error(`${metadata.tableName}: the marked property ${property} is not a column`);
      }
      const scope = mark.keyScope ?? 'organization';
      if (scope === 'contact' && !mark.subject) {
        // Written only by its service, which knows the contact (messages.body, say).
        fields.push({
          property,
          column: column.databaseName,
          scope,
          subject: null,
          blindIndex: null,
        });
        continue;
      }
      fields.push({
        property,
        column: column.databaseName,
        scope,
        subject: mark.subject ?? null,
        blindIndex: mark.blindIndex ? { property: mark.blindIndex } : null,
      });
    }
    const plan = fields.length > 0 ? { table: metadata.tableName, fields } : null;
    this.plans.set(target, plan);

    return plan;
  }
}

function requireOrganization(plan: Plan, row: Row): string {
  if (typeof row.organizationId !== 'string') {
    throw new SealedValueError(
      `${plan.table} rows are sealed per organization: organizationId is missing`,
    );
  }

  return row.organizationId;
}
