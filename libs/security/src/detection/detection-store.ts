import { Logger } from '@nestjs/common';
import Redis from 'ioredis';

/** Whether a value was already in a remembered set. */
export type Sighting = 'baseline' | 'known' | 'new';

/**
 * Where detection counts. Windows are measured on the caller's clock (`nowMs`), not the store's,
 * so every instance (and a test that moves the Clock) agrees on when a window ends.
 */
export interface DetectionStore {
  /**
   * Counts one event under `key` and returns the count in the key's current window: a window
   * opens at its first event and lasts `windowMs`; an event after it opens the next one.
   */
  hit(key: string, windowMs: number, nowMs: number): Promise<number>;
  /**
   * Adds `member` to the set under `key`: `baseline` when the set was empty (the first member
   * is what later ones are compared with), `known` when it held it, `new` otherwise.
   */
  remember(key: string, member: string): Promise<Sighting>;
  close(): Promise<void>;
}

/** How long a remembered set (an API key's addresses) lives after its last new member. */
export const SEEN_SET_TTL_MS = 400 * 24 * 3600 * 1000;
/** Members kept per set; past it a set stops growing and every further value counts as new. */
export const SEEN_SET_LIMIT = 1000;

const MEMORY_WINDOW_LIMIT = 100_000;
const MEMORY_SET_LIMIT = 20_000;

interface MemoryWindow {
  startedAt: number;
  windowMs: number;
  count: number;
}

/**
 * One process's counters, for a single instance without REDIS_URL; bounded in size. Known
 * shortcoming: a restart forgets every window and every API key's addresses, so the first
 * address a key is used from after a restart becomes its baseline without an alert.
 */
export class MemoryDetectionStore implements DetectionStore {
  private readonly windows = new Map<string, MemoryWindow>();
  private readonly sets = new Map<string, Set<string>>();

  async hit(key: string, windowMs: number, nowMs: number): Promise<number> {
    const current = this.windows.get(key);
    if (current && nowMs - current.startedAt < windowMs) {
      current.count += 1;

      return current.count;
    }
    if (!current && this.windows.size >= MEMORY_WINDOW_LIMIT) {
      this.evictWindows(nowMs);
    }
    this.windows.set(key, { startedAt: nowMs, windowMs, count: 1 });

    return 1;
  }

  async remember(key: string, member: string): Promise<Sighting> {
    const set = this.sets.get(key);
    if (!set) {
      if (this.sets.size >= MEMORY_SET_LIMIT) {
        // The oldest set goes first: Map keeps insertion order.
        this.sets.delete(this.sets.keys().next().value as string);
      }
      this.sets.set(key, new Set([member]));

      return 'baseline';
    }
    if (set.has(member)) {
      return 'known';
    }
    if (set.size < SEEN_SET_LIMIT) {
      set.add(member);
    }

    return 'new';
  }

  async close(): Promise<void> {
    this.windows.clear();
    this.sets.clear();
  }

  /** Drops ended windows, and if that is not enough the oldest tenth. */
  private evictWindows(nowMs: number): void {
    for (const [key, window] of this.windows) {
      if (nowMs - window.startedAt >= window.windowMs) {
        this.windows.delete(key);
      }
    }
    if (this.windows.size < MEMORY_WINDOW_LIMIT) {
      return;
    }
    let excess = Math.ceil(MEMORY_WINDOW_LIMIT / 10);
    for (const key of this.windows.keys()) {
      if (excess === 0) {
        break;
      }
      this.windows.delete(key);
      excess -= 1;
    }
  }
}

// One atomic step per event: open a window (its start on the caller's clock) or count in it.
// The key expires with its window in Redis time, which never runs ahead of the callers' clocks.
const HIT = `
local started = tonumber(redis.call('HGET', KEYS[1], 's'))
local now = tonumber(ARGV[1])
local window = tonumber(ARGV[2])
if started == nil or now - started >= window then
  redis.call('HSET', KEYS[1], 's', ARGV[1], 'n', 1)
  redis.call('PEXPIRE', KEYS[1], window)
  return 1
end
return redis.call('HINCRBY', KEYS[1], 'n', 1)
`;

const REMEMBER = `
local size = redis.call('SCARD', KEYS[1])
if redis.call('SISMEMBER', KEYS[1], ARGV[1]) == 1 then
  return 1
end
if size < tonumber(ARGV[3]) then
  redis.call('SADD', KEYS[1], ARGV[1])
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
end
if size == 0 then
  return 0
end
return 2
`;

interface DetectionCommands {
  parleyDetectHit(key: string, nowMs: number, windowMs: number): Promise<number>;
  parleyDetectRemember(key: string, member: string, ttlMs: number, limit: number): Promise<number>;
}

const PREFIX = 'parley:detect:';

/**
 * Counters shared by every instance through Redis. While Redis does not answer, nothing is
 * counted (no alert can fire) and each uncounted event logs a warning: requests never fail
 * or wait because detection cannot count.
 */
export class RedisDetectionStore implements DetectionStore {
  private readonly redis: Redis;
  private readonly logger = new Logger('Detection');

  constructor(url: string) {
    this.redis = new Redis(url, {
      maxRetriesPerRequest: 2,
      enableOfflineQueue: true,
      // ioredis 5.11 keeps a timer of this length after disconnecting a client whose connection
      // had already dropped (its close event never comes again), which holds the process open.
      disconnectTimeout: 100,
    });
    this.redis.on('error', (error) =>
      this.logger.warn({ reason: error.message }, 'detection store connection error'),
    );
    this.redis.defineCommand('parleyDetectHit', { numberOfKeys: 1, lua: HIT });
    this.redis.defineCommand('parleyDetectRemember', { numberOfKeys: 1, lua: REMEMBER });
  }

  private get commands(): DetectionCommands {
    return this.redis as unknown as DetectionCommands;
  }

  async hit(key: string, windowMs: number, nowMs: number): Promise<number> {
    try {
      return Number(await this.commands.parleyDetectHit(`${PREFIX}w:${key}`, nowMs, windowMs));
    } catch (error) {
      this.logger.warn(
        { reason: (error as Error).message },
        'detection event not counted: Redis did not answer',
      );

      return 0;
    }
  }

  async remember(key: string, member: string): Promise<Sighting> {
    try {
      const answer = Number(
        await this.commands.parleyDetectRemember(
          `${PREFIX}s:${key}`,
          member,
          SEEN_SET_TTL_MS,
          SEEN_SET_LIMIT,
        ),
      );

      return answer === 0 ? 'baseline' : answer === 1 ? 'known' : 'new';
    } catch (error) {
      this.logger.warn(
        { reason: (error as Error).message },
        'detection event not counted: Redis did not answer',
      );

      return 'known';
    }
  }

  async close(): Promise<void> {
    if (this.redis.status !== 'ready') {
      // quit() would wait for a connection that may never come.
      this.redis.disconnect();

      return;
    }
    await this.redis.quit().catch(() => undefined);
  }
}
