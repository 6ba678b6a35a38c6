import { Logger } from '@nestjs/common';

import { ConfigError, loadConfig } from '@parley/core';
import { runMigrations } from '@parley/database';
import { MIGRATIONS } from '@parley/migrations';

/**
 * `npm run migration:run`: applies pending migrations as the owner (DATABASE_MIGRATION_URL, or
 * DATABASE_URL) and exits. The embedded default migrates itself when the server starts.
 */
async function main(): Promise<void> {
  const config = loadConfig();
  const url = config.databaseMigrationUrl;
  if (!url) {
    process.stdout.write(
      'No DATABASE_URL: the embedded database migrates itself when the server starts.\n',
    );

    return;
  }
  const applied = await runMigrations(
    url,
    { entities: [], migrations: MIGRATIONS },
    new Logger('Migrations'),
  );
  process.stdout.write(
    applied.length > 0 ? `Applied ${applied.join(', ')}\n` : 'No pending migrations.\n',
  );
}

main().catch((error: unknown) => {
  process.stderr.write(
    `${error instanceof ConfigError ? error.message : `Migration failed: ${(error as Error).message}`}\n`,
  );
  process.exit(1);
});
