import { PGlite } from '@electric-sql/pglite';

import { EmbeddedSession, commandOf, embeddedDriver } from './embedded-pool';

describe('commandOf', () => {
  it.each([
    ['select 1', 'SELECT'],
    ['  UPDATE users set x = 1', 'UPDATE'],
    ['with a as (select 1) update t set x = 1', 'UPDATE'],
    ['WITH a AS (select ")" from t), b as (delete from t returning id) select * from b', 'SELECT'],
    ["with a as (select ')(' as x) delete from t", 'DELETE'],
    [
      'with recursive r (n) as (select 1 union all select n + 1 from r) insert into t select n from r',
      'INSERT',
    ],
    [
      'with a as materialized (select (1)) , b as not materialized (select 2) update t set y = 2',
      'UPDATE',
    ],
  ])('reads %j as %s', (sql, command) => {
    expect(commandOf(sql)).toBe(command);
  });
});

describe('the embedded pool', () => {
  let session: EmbeddedSession;
  let pool: { query(sql: unknown, params?: unknown[]): Promise<{ rows: unknown[] }> };

  beforeAll(async () => {
    session = new EmbeddedSession(await PGlite.create());
    const { Pool } = embeddedDriver(session) as {
      Pool: new () => typeof pool;
    };
    pool = new Pool();
    await session.run(`
      create function enter(p text) returns text language plpgsql as $$
      begin
        perform set_config('app.organization_id', p, true);
        return current_setting('app.organization_id', true);
      end $$`);
  });

  afterAll(() => session.db.close());

  it('runs a named statement config like pg, with its values', async () => {
    const result = await pool.query({
      name: 'enter',
      text: 'select enter($1) as inside',
      values: ['2b9f4cbe-51a8-4cc6-9a4c-0d8b8a43f1a2'],
    });

    expect(result.rows).toEqual([{ inside: '2b9f4cbe-51a8-4cc6-9a4c-0d8b8a43f1a2' }]);
  });

  it('keeps a setting made inside one statement to that statement, as a tenant statement needs', async () => {
    await pool.query({ name: 'enter', text: 'select enter($1)', values: ['tenant-a'] });
    const after = await pool.query(
      "select coalesce(current_setting('app.organization_id', true), '') as now",
    );

    expect(after.rows).toEqual([{ now: '' }]);
  });
});
