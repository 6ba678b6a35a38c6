import { Logger, OnModuleDestroy } from '@nestjs/common';
import { ThrottlerStorage } from '@nestjs/throttler';
import Redis from 'ioredis';

import { ThrottlerStorageRecord } from './memory-throttler.storage';

// One atomic step per hit: count it in the window, and start a block once the limit is passed.
const INCREMENT = `
local blockKey = KEYS[1] .. ':blocked'
local blockTtl = redis.call('PTTL', blockKey)
if blockTtl > 0 then
  return { tonumber(redis.call('GET', KEYS[1]) or ARGV[2]) + 1, redis.call('PTTL', KEYS[1]), 1, blockTtl }
end
local hits = redis.call('INCR', KEYS[1])
if hits == 1 then redis.call('PEXPIRE', KEYS[1], ARGV[1]) end
local ttl = redis.call('PTTL', KEYS[1])
if hits > tonumber(ARGV[2]) then
  redis.call('SET', blockKey, '1', 'PX', ARGV[3])
  return { hits, ttl, 1, tonumber(ARGV[3]) }
end
return { hits, ttl, 0, 0 }
`;

/** Fixed-window counters in Redis, so every instance enforces one shared limit per client. */
export class RedisThrottlerStorage implements ThrottlerStorage, OnModuleDestroy {
  private readonly redis: Redis;
  private readonly logger = new Logger('RateLimits');

  constructor(url: string) {
    this.redis = new Redis(url, { maxRetriesPerRequest: 2, enableOfflineQueue: true });
    this.redis.on('error', (error) =>
      this.logger.warn({ reason: error.message }, 'rate-limit store connection error'),
    );
    this.redis.defineCommand('parleyThrottle', { numberOfKeys: 1, lua: INCREMENT });
  }

  /**
   * Counts one hit. While Redis is unreachable the limit is not enforced and an error is logged
   * for each refused count: the API stays up, and the outage is loud rather than silent.
   */
  async increment(
    key: string,
    ttl: number,
    limit: number,
    blockDuration: number,
    throttlerName: string,
  ): Promise<ThrottlerStorageRecord> {
    let result: number[];
    try {
      result = await (
        this.redis as unknown as {
          parleyThrottle(key: string, ttl: number, limit: number, block: number): Promise<number[]>;
        }
      ).parleyThrottle(`parley:throttle:${throttlerName}:${key}`, ttl, limit, blockDuration);
    } catch (error) {
      this.logger.error(
        { reason: (error as Error).message },
        'rate limit not enforced: Redis did not answer',
      );

      return { totalHits: 0, timeToExpire: 0, isBlocked: false, timeToBlockExpire: 0 };
    }
    const [hits, ttlMs, blocked, blockMs] = result;

    return {
      totalHits: hits,
      timeToExpire: Math.max(0, Math.ceil(ttlMs / 1000)),
      isBlocked: blocked === 1,
      timeToBlockExpire: Math.max(0, Math.ceil(blockMs / 1000)),
    };
  }

  async onModuleDestroy(): Promise<void> {
    await this.redis.quit().catch(() => undefined);
  }
}
