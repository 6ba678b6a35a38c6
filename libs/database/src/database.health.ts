import { Injectable } from '@nestjs/common';
import { DataSource } from 'typeorm';

import { MIGRATIONS_TABLE } from './connect';

export interface DatabaseStatus {
  reachable: boolean;
  pendingMigrations: string[];
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
      const pendingMigrations = this.dataSource.migrations
        .map((migration) => migration.name ?? migration.constructor.name)
        .filter((name) => !applied.has(name));

      return { reachable: true, pendingMigrations };
    } catch (error) {
      return { reachable: false, pendingMigrations: [], error: (error as Error).message };
    }
  }
}
