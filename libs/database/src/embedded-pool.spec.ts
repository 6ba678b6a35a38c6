import { commandOf } from './embedded-pool';

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
