import { NestFactory } from '@nestjs/core';

import { SigningKeys } from '@parley/auth';
import { ConfigError, loadConfig } from '@parley/core';

import { AppModule } from './app.module';

/**
 * `npm run keys:rotate`: makes a new token signing key current for every instance. The previous
 * key keeps verifying until the tokens it signed have expired. Running servers pick the new key
 * up within a minute.
 */
async function main(): Promise<void> {
  const config = loadConfig();
  const context = await NestFactory.createApplicationContext(AppModule.register({ config }), {
    logger: ['error', 'warn'],
    abortOnError: false,
  });
  try {
    const kid = await context.get(SigningKeys).rotate('npm run keys:rotate');
    process.stdout.write(`New signing key ${kid} is current.\n`);
  } finally {
    await context.close();
  }
}

main().catch((error: unknown) => {
  process.stderr.write(
    `${error instanceof ConfigError ? error.message : `Key rotation failed: ${(error as Error).message}`}\n`,
  );
  process.exit(1);
});
