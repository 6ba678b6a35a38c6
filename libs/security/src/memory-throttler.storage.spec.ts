import { MemoryThrottlerStorage } from './memory-throttler.storage';

describe('MemoryThrottlerStorage', () => {
  let now = 1_000_000;
  let storage: MemoryThrottlerStorage;

  beforeEach(() => {
    now = 1_000_000;
    storage = new MemoryThrottlerStorage(() => now);
  });

  afterEach(() => storage.onModuleDestroy());

  it('counts hits up to the limit without blocking', async () => {
    for (let hit = 1; hit <= 3; hit += 1) {
      const record = await storage.increment('203.0.113.5', 60_000, 3, 30_000, 'api');
      expect(record).toEqual({
        totalHits: hit,
        timeToExpire: 60,
        isBlocked: false,
        timeToBlockExpire: 0,
      });
    }
  });

  it('blocks the hit past the limit for the block duration, even after the window ends', async () => {
    for (let hit = 0; hit < 3; hit += 1) {
      await storage.increment('203.0.113.5', 10_000, 3, 30_000, 'api');
    }
    expect(await storage.increment('203.0.113.5', 10_000, 3, 30_000, 'api')).toMatchObject({
      isBlocked: true,
      timeToBlockExpire: 30,
    });
    now += 20_000;
    expect(await storage.increment('203.0.113.5', 10_000, 3, 30_000, 'api')).toMatchObject({
      isBlocked: true,
      timeToBlockExpire: 10,
    });
    now += 10_001;
    expect(await storage.increment('203.0.113.5', 10_000, 3, 30_000, 'api')).toMatchObject({
      totalHits: 1,
      isBlocked: false,
    });
  });

  it('starts a new window once the old one ends', async () => {
    await storage.increment('203.0.113.5', 1_000, 2, 5_000, 'api');
    await storage.increment('203.0.113.5', 1_000, 2, 5_000, 'api');
    now += 1_000;
    expect(await storage.increment('203.0.113.5', 1_000, 2, 5_000, 'api')).toMatchObject({
      totalHits: 1,
      isBlocked: false,
    });
  });

  it('keeps clients and throttlers apart', async () => {
    await storage.increment('203.0.113.5', 60_000, 1, 60_000, 'api');
    expect(await storage.increment('203.0.113.5', 60_000, 1, 60_000, 'api')).toMatchObject({
      isBlocked: true,
    });
    expect(await storage.increment('203.0.113.6', 60_000, 1, 60_000, 'api')).toMatchObject({
      isBlocked: false,
    });
    expect(await storage.increment('203.0.113.5', 60_000, 1, 60_000, 'credentials')).toMatchObject({
      isBlocked: false,
    });
  });

  it('holds a key named __proto__ like any other', async () => {
    await storage.increment('__proto__', 60_000, 1, 60_000, 'api');
    expect(await storage.increment('__proto__', 60_000, 1, 60_000, 'api')).toMatchObject({
      isBlocked: true,
    });
    expect(({} as Record<string, unknown>).hits).toBeUndefined();
  });
});
