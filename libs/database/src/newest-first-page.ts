import { HttpStatus } from '@nestjs/common';
import { Brackets, ObjectLiteral, SelectQueryBuilder } from 'typeorm';

import { CommonErrorCode, ProblemException } from '@parley/core';

interface Cursor {
  at: string;
  id: string;
}

/**
 * One page of a list read newest first, by a time column and then the id (keyset pagination):
 * a cursor names the last row of the previous page, so pages neither skip nor repeat rows
 * when new ones arrive. `timeProperty` is the entity property of the time column.
 */
export async function newestFirstPage<Entity extends ObjectLiteral & { id: string }>(
  builder: SelectQueryBuilder<Entity>,
  options: { alias: string; timeProperty: keyof Entity & string; limit: number; cursor?: string },
): Promise<{ rows: Entity[]; nextCursor: string | null }> {
  const { alias, timeProperty, limit } = options;
  builder
    .orderBy(`${alias}.${timeProperty}`, 'DESC')
    .addOrderBy(`${alias}.id`, 'DESC')
    .limit(limit + 1);
  if (options.cursor) {
    const cursor = decodeCursor(options.cursor);
    builder.andWhere(
      new Brackets((where) => {
        where
          .where(`${alias}.${timeProperty} < :cursorAt`, { cursorAt: new Date(cursor.at) })
          .orWhere(`(${alias}.${timeProperty} = :cursorAt and ${alias}.id < :cursorId)`, {
            cursorId: cursor.id,
          });
      }),
    );
  }
  const rows = await builder.getMany();
  const page = rows.slice(0, limit);
  const last = page[page.length - 1];

  return {
    rows: page,
    nextCursor:
      rows.length > limit && last
        ? Buffer.from(
            JSON.stringify({ at: (last[timeProperty] as Date).toISOString(), id: last.id }),
          ).toString('base64url')
        : null,
  };
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
