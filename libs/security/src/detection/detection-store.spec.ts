import { randomUUID } from 'node:crypto';

import { Logger } from '@nestjs/common';

import {
  DetectionStore,
  MemoryDetectionStore,
  RedisDetectionStore,
  SEEN_SET_LIMIT,
} from './detection-store';

const REDIS_URL = process.env.TEST_REDIS_URL ?? 'redis://127.0.0.1:6379';
const WINDOW_MS = 60_000;

describe.each([
  ['in memory', () => new MemoryDetectionStore()],
  ['in Redis', () => new RedisDetectionStore(REDIS_URL)],
])('detection store %s', (_name, create: () => DetectionStore) => {
  let store: DetectionStore;
  const key = (): string => `test:${randomUUID()}`;

  beforeAll(() => {
    store = create();
  });

  afterAll(async () => {
    await store.close();
  });

  it('counts events of one key within its window, and other keys apart', async () => {
    const [first, second] = [key(), key()];
    const now = 1_000_000;

    expect(await store.hit(first, WINDOW_MS, now)).toBe(1);
    expect(await store.hit(first, WINDOW_MS, now + 10)).toBe(2);
    expect(await store.hit(second, WINDOW_MS, now + 20)).toBe(1);
    expect(await store.hit(first, WINDOW_MS, now + WINDOW_MS - 1)).toBe(3);
  });

  it('opens a new window with the first event at or after the end of the last', async () => {
    const counted = key();
    const start = 5_000_000;
    await store.hit(counted, WINDOW_MS, start);
    await store.hit(counted, WINDOW_MS, start + 1);

    expect(await store.hit(counted, WINDOW_MS, start + WINDOW_MS)).toBe(1);
    expect(await store.hit(counted, WINDOW_MS, start + WINDOW_MS + 5)).toBe(2);
  });

  it('gives each of many concurrent events its own count', async () => {
    const counted = key();

    const counts = await Promise.all(
      Array.from({ length: 25 }, () => store.hit(counted, WINDOW_MS, 7_000_000)),
    );

    expect([...counts].sort((a, b) => a - b)).toEqual(Array.from({ length: 25 }, (_, i) => i + 1));
  });

  it('takes the first value of a set as its baseline, then tells known from new', async () => {
    const seen = key();

    expect(await store.remember(seen, 'a')).toBe('baseline');
    expect(await store.remember(seen, 'a')).toBe('known');
    expect(await store.remember(seen, 'b')).toBe('new');
    expect(await store.remember(seen, 'b')).toBe('known');
    expect(await store.remember(key(), 'b')).toBe('baseline');
  });

  it(`stops growing a set at ${SEEN_SET_LIMIT} values and counts every later one as new`, async () => {
    const seen = key();
    for (let value = 0; value < SEEN_SET_LIMIT; value += 1) {
      await store.remember(seen, `value-${value}`);
    }

    expect(await store.remember(seen, 'value-0')).toBe('known');
    expect(await store.remember(seen, 'one-too-many')).toBe('new');
    expect(await store.remember(seen, 'one-too-many')).toBe('new');
  });
});

describe('detection store in Redis, when Redis does not answer', () => {
  it('counts nothing and warns instead of failing the caller', async () => {
    const warn = jest.spyOn(Logger.prototype, 'warn').mockImplementation(() => undefined);
    // A port nothing listens on, on this machine.
    const store = new RedisDetectionStore('redis://127.0.0.1:1');
    try {
      await expect(store.hit('test:unreachable', WINDOW_MS, 1)).resolves.toBe(0);
      await expect(store.remember('test:unreachable', 'a')).resolves.toBe('known');
      expect(warn).toHaveBeenCalledWith(
        expect.objectContaining({ reason: expect.any(String) }),
        'detection event not counted: Redis did not answer',
      );
    } finally {
      await store.close();
      warn.mockRestore();
    }
  });
});
