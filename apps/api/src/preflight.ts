import Redis from 'ioredis';

import { AppConfig } from '@parley/core';

/** Fails the start, naming REDIS_URL, when Redis is configured but does not answer. */
export async function assertRedisReachable(config: AppConfig): Promise<void> {
  if (!config.redisUrl) {
    return;
  }
  const client = new Redis(config.redisUrl, {
    lazyConnect: true,
    connectTimeout: 5_000,
    maxRetriesPerRequest: 0,
    retryStrategy: () => null,
  });
  client.on('error', () => undefined);
  try {
    await client.connect();
    await client.ping();
  } catch (error) {
    throw new Error(`REDIS_URL: Redis does not answer (${(error as Error).message})`, {
      cause: error,
    });
  } finally {
    client.disconnect();
  }
}
