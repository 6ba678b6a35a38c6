import { Client } from 'pg';

/** Creates the database a bench part runs on if it is missing (the bench never drops one). */
export async function ensureDatabase(databaseUrl: string): Promise<void> {
  const target = new URL(databaseUrl);
  const databaseName = decodeURIComponent(target.pathname.replace(/^\//, ''));
  if (!/^[A-Za-z0-9_-]+$/.test(databaseName)) {
    throw new Error(`refusing to create a database named "${databaseName}"`);
  }

  const maintenance = new URL(databaseUrl);
  maintenance.pathname = '/postgres';
  const client = new Client({ connectionString: maintenance.toString() });
  await client.connect();

  try {
    const existing = await client.query('select 1 from pg_database where datname = $1', [
      databaseName,
    ]);
    if (existing.rowCount === 0) {
      await client.query(`create database "${databaseName}"`);
    }
  } catch (error) {
    // Two runs starting at once may both try to create it; the loser finds it there.
    if (!(error instanceof Error && 'code' in error && error.code === '42P04')) {
      throw error;
    }
  } finally {
    await client.end();
  }
}
