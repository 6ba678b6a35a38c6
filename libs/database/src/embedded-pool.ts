import { EventEmitter } from 'node:events';

import { PGlite, types } from '@electric-sql/pglite';

interface QueryResultLike {
  rows: unknown[];
  rowCount: number;
  command: string;
  fields: unknown[];
}

type QueryCallback = (error: Error | null, result?: QueryResultLike) => void;

const ACQUIRE_TIMEOUT_MS = 30_000;

/**
 * The command tag PostgreSQL would report (`SELECT`, `UPDATE`, ...): for a statement with common
 * table expressions, the main statement after them, found by skipping each balanced
 * parenthesis (and the quoted text inside it). TypeORM shapes results by it.
 */
export function commandOf(sql: string): string {
  let index = 0;
  const skipSpace = () => {
    while (index < sql.length && /\s/.test(sql[index])) {
      index += 1;
    }
  };
  const word = () => {
    skipSpace();
    const match = /^[A-Za-z_][A-Za-z0-9_]*/.exec(sql.slice(index));
    if (!match) {
      return '';
    }
    index += match[0].length;

    return match[0].toUpperCase();
  };
  const skipParentheses = () => {
    let depth = 0;
    while (index < sql.length) {
      const character = sql[index];
      if (character === "'" || character === '"') {
        const close = sql.indexOf(character, index + 1);
        index = close === -1 ? sql.length : close + 1;
        continue;
      }
      index += 1;
      if (character === '(') {
        depth += 1;
      } else if (character === ')') {
        depth -= 1;
        if (depth === 0) {
          return;
        }
      }
    }
  };
  const command = word();
  if (command !== 'WITH') {
    return command;
  }
  for (;;) {
    // The expression's name, after RECURSIVE if the list starts with it.
    if (word() === 'RECURSIVE') {
      word();
    }
    skipSpace();
    if (sql[index] === '(') {
      skipParentheses();
    }
    // AS [NOT] [MATERIALIZED] ( ... )
    while ((skipSpace(), sql[index] !== '(' && index < sql.length)) {
      if (word() === '') {
        return '';
      }
    }
    skipParentheses();
    skipSpace();
    if (sql[index] === ',') {
      index += 1;
      continue;
    }

    return word();
  }
}

/**
 * One PGlite session shared by the whole process. PGlite is a single PostgreSQL session, so two
 * transactions at once would interleave and leak tenant context; this lock hands the session to
 * one holder at a time, and a holder that never releases fails the next caller after 30 s
 * instead of hanging it.
 */
export class EmbeddedSession {
  private queue: Promise<void> = Promise.resolve();

  constructor(readonly db: PGlite) {}

  static async open(dataDir: string): Promise<EmbeddedSession> {
    const db = await PGlite.create({
      dataDir,
      // As node-postgres hands them over: bigint as text, bytea as a Buffer (PGlite's own
      // Uint8Array has no equals() and no hex, so code written for PostgreSQL would misread it).
      parsers: {
        [types.INT8]: (value: string) => value,
        [types.BYTEA]: (value: string) => Buffer.from(value.slice(2), 'hex'),
      },
    });

    return new EmbeddedSession(db);
  }

  acquire(): Promise<() => void> {
    let release!: () => void;
    const held = new Promise<void>((resolve) => {
      release = resolve;
    });
    const previous = this.queue;
    this.queue = previous.then(() => held);

    return new Promise((resolve, reject) => {
      let timedOut = false;
      const timer = setTimeout(() => {
        timedOut = true;
        reject(new Error('Timed out waiting for the embedded database session'));
      }, ACQUIRE_TIMEOUT_MS);
      void previous.then(() => {
        clearTimeout(timer);
        if (timedOut) {
          release();

          return;
        }
        let released = false;
        resolve(() => {
          if (!released) {
            released = true;
            release();
          }
        });
      });
    });
  }

  async run(sql: string, params?: unknown[]): Promise<QueryResultLike> {
    if (params && params.length > 0) {
      const result = await this.db.query(sql, params);

      return {
        rows: result.rows,
        rowCount: result.affectedRows ?? result.rows.length,
        command: commandOf(sql),
        fields: result.fields,
      };
    }
    const results = await this.db.exec(sql);
    const last = results[results.length - 1] ?? { rows: [], fields: [], affectedRows: 0 };

    return {
      rows: last.rows,
      rowCount: last.affectedRows ?? last.rows.length,
      command: commandOf(sql),
      fields: last.fields,
    };
  }
}

class EmbeddedConnection extends EventEmitter {
  constructor(private readonly session: EmbeddedSession) {
    super();
  }

  query(
    sql: string | { text: string; values?: unknown[] },
    params?: unknown[] | QueryCallback,
    callback?: QueryCallback,
  ): Promise<QueryResultLike> {
    const text = typeof sql === 'string' ? sql : sql.text;
    const values =
      typeof params === 'function' ? (typeof sql === 'string' ? undefined : sql.values) : params;
    const done = typeof params === 'function' ? params : callback;
    const promise = this.session.run(text, values);
    if (done) {
      promise.then(
        (result) => done(null, result),
        (error: Error) => done(error),
      );
    }

    return promise;
  }
}

/** A pg-compatible Pool for TypeORM whose every connection is the one locked PGlite session. */
export function embeddedDriver(session: EmbeddedSession): unknown {
  class EmbeddedPool extends EventEmitter {
    connect(
      callback: (
        error: Error | null,
        connection?: EmbeddedConnection,
        release?: () => void,
      ) => void,
    ): void {
      session.acquire().then(
        (release) => callback(null, new EmbeddedConnection(session), release),
        (error: Error) => callback(error),
      );
    }

    // Config objects too (`{name, text, values}`): PGlite is one session, so there is nothing
    // to prepare per connection and the name is ignored.
    async query(
      sql: string | { text: string; values?: unknown[] },
      params?: unknown[],
    ): Promise<QueryResultLike> {
      const release = await session.acquire();
      try {
        return typeof sql === 'string'
          ? await session.run(sql, params)
          : await session.run(sql.text, sql.values ?? params);
      } finally {
        release();
      }
    }

    end(callback?: (error?: Error) => void): void {
      callback?.();
    }
  }

  return { Pool: EmbeddedPool };
}
