import { ConfigError, loadConfig } from '@parley/core';

import { createApp } from './create-app';
import { DemoSeed } from './demo-seed';
import { assertRedisReachable } from './preflight';

async function bootstrap(): Promise<void> {
  let config;
  try {
    config = loadConfig();
  } catch (error) {
    if (error instanceof ConfigError) {
      process.stderr.write(`${error.message}\n`);
      process.exit(78);
    }
    throw error;
  }
  await assertRedisReachable(config);
  const app = await createApp({ config });
  try {
    await app.listen({ port: config.port, host: config.host });
  } catch (error) {
    await app.close().catch(() => undefined);
    if ((error as NodeJS.ErrnoException).code === 'EADDRINUSE') {
      throw new Error(`PORT ${config.port} on HOST ${config.host} is already in use`, {
        cause: error,
      });
    }
    throw error;
  }
  const address = app.getHttpServer().address();
  const port = typeof address === 'object' && address ? address.port : config.port;
  const host = config.host === '0.0.0.0' ? '127.0.0.1' : config.host;
  const scheme = config.tlsCert === undefined ? 'http' : 'https';
  await app.get(DemoSeed).seedIfEmpty(`${scheme}://${host}:${port}`);
}

bootstrap().catch((error: unknown) => {
  process.stderr.write(
    `Parley failed to start: ${error instanceof Error ? error.message : String(error)}\n`,
  );
  process.exit(1);
});
