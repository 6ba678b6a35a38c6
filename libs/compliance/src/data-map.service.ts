import { Injectable } from '@nestjs/common';
import { DataSource } from 'typeorm';

import {
  TableClassification,
  declaredTablesList,
  fieldMarksOf,
  resolveField,
  tableMarkOf,
} from '@parley/core';

/** One table in the record of processing: what it holds, why, for how long, and how. */
export interface DataMapTable extends TableClassification {
  schema: string;
  /** `entity` when the server reads and writes it through TypeORM, `sql` when by SQL alone. */
  access: 'entity' | 'sql';
}

/**
 * The data map, built from the classification marks in code: every stored table and column,
 * with its class, purpose, retention rule and whether it is encrypted. Building it throws when
 * an entity or one of its columns carries no mark, so an unmarked column cannot ship.
 */
@Injectable()
export class DataMap {
  private built: DataMapTable[] | undefined;

  constructor(private readonly dataSource: DataSource) {}

  tables(): DataMapTable[] {
    this.built ??= this.build();

    return this.built;
  }

  private build(): DataMapTable[] {
    const tables: DataMapTable[] = [];
    for (const metadata of this.dataSource.entityMetadatas) {
      const target = metadata.target;
      if (typeof target !== 'function') {
        continue;
      }
      const table = tableMarkOf(target);
      if (!table) {
        throw new Error(`${metadata.tableName} has no @ClassifiedTable purpose and retention`);
      }
      const marks = fieldMarksOf(target);
      tables.push({
        table: metadata.tableName,
        schema: metadata.schema ?? 'public',
        access: 'entity',
        purpose: table.purpose,
        retention: table.retention,
        fields: metadata.columns.map((column) => {
          const mark = marks.get(column.propertyName);
          if (!mark) {
            throw new Error(
              `${metadata.tableName}.${column.databaseName} has no classification mark (@Classified)`,
            );
          }

          return resolveField(
            { table: metadata.tableName, ...table },
            column.propertyName,
            column.databaseName,
            mark,
          );
        }),
      });
    }
    for (const declared of declaredTablesList()) {
      const [schema, name] = declared.table.includes('.')
        ? declared.table.split('.')
        : ['public', declared.table];
      tables.push({ ...declared, table: name, schema, access: 'sql' });
    }

    return tables.sort((a, b) => `${a.schema}.${a.table}`.localeCompare(`${b.schema}.${b.table}`));
  }
}
