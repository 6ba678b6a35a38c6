import { Injectable } from '@nestjs/common';
import { DataSource } from 'typeorm';

import { MIGRATIONS_TABLE } from './connect';
import { declareTable } from '@parley/core';

declareTable(
  'schema_migrations',
  {
    purpose: 'Which migrations have been applied to this database.',
    retention: 'For the life of the database.',
  },
  { id: { class: 'internal' }, timestamp: { class: 'internal' }, name: { class: 'internal' } },
);

export interface DatabaseStatus {
  reachable: boolean;
  pendingMigrations: string[];
  /** Applied to the database but unknown to this build: a newer version migrated it. */
  unknownMigrations: string[];
  error?: string;
}

@Injectable()
export class DatabaseHealth {
  constructor(private readonly dataSource: DataSource) {}

  async status(): Promise<DatabaseStatus> {
    try {
      const rows: { name: string }[] = await this.dataSource.query(
        `select name from ${MIGRATIONS_TABLE}`,
      );
      const applied = new Set(rows.map((row) => row.name));
      const known = new Set(
        this.dataSource.migrations.map((migration) => migration.name ?? migration.constructor.name),
      );
      const pendingMigrations = [...known].filter((name) => !applied.has(name));
      const unknownMigrations = [...applied].filter((name) => !known.has(name));

      return { reachable: true, pendingMigrations, unknownMigrations };
    } catch (error) {
      return {
        reachable: false,
        pendingMigrations: [],
        unknownMigrations: [],
        error: (error as Error).message,
      };
    }
  }
}
