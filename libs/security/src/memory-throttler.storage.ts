import { OnModuleDestroy } from '@nestjs/common';
import { ThrottlerStorage } from '@nestjs/throttler';

/** What a storage answers for one hit, as the throttler's own interface declares it. */
export type ThrottlerStorageRecord = Awaited<ReturnType<ThrottlerStorage['increment']>>;

interface Window {
  hits: number;
  endsAt: number;
  blockedUntil: number;
}

/** Expired windows are dropped this often, so idle clients cost no memory. */
const SWEEP_MS = 60_000;

/**
 * Fixed-window counters in this process, with the same rules as RedisThrottlerStorage: a hit
 * past the limit starts a block of `blockDuration`. Each hit is O(1); the library's own memory
 * storage keeps one timestamp per hit and scans them all on every request, which at a high
 * limit costs more than the request itself.
 */
export class MemoryThrottlerStorage implements ThrottlerStorage, OnModuleDestroy {
  private readonly windows = new Map<string, Window>();
  private readonly sweep: NodeJS.Timeout;

  constructor(private readonly now: () => number = Date.now) {
    this.sweep = setInterval(() => this.dropExpired(), SWEEP_MS);
    this.sweep.unref();
  }

  async increment(
    key: string,
    ttl: number,
    limit: number,
    blockDuration: number,
    throttlerName: string,
  ): Promise<ThrottlerStorageRecord> {
    const now = this.now();
    const id = `${throttlerName}:${key}`;
    let window = this.windows.get(id);
    if (window && window.blockedUntil > now) {
      return {
        totalHits: window.hits + 1,
        timeToExpire: seconds(window.endsAt - now),
        isBlocked: true,
        timeToBlockExpire: seconds(window.blockedUntil - now),
      };
    }
    if (!window || window.endsAt <= now) {
      window = { hits: 0, endsAt: now + ttl, blockedUntil: 0 };
      this.windows.set(id, window);
    }
    window.hits += 1;
    if (window.hits > limit) {
      window.blockedUntil = now + blockDuration;

      return {
        totalHits: window.hits,
        timeToExpire: seconds(window.endsAt - now),
        isBlocked: true,
        timeToBlockExpire: seconds(blockDuration),
      };
    }

    return {
      totalHits: window.hits,
      timeToExpire: seconds(window.endsAt - now),
      isBlocked: false,
      timeToBlockExpire: 0,
    };
  }

  onModuleDestroy(): void {
    clearInterval(this.sweep);
  }

  private dropExpired(): void {
    const now = this.now();
    for (const [id, window] of this.windows) {
      if (window.endsAt <= now && window.blockedUntil <= now) {
        this.windows.delete(id);
      }
    }
  }
}

function seconds(milliseconds: number): number {
  return Math.max(0, Math.ceil(milliseconds / 1000));
}
