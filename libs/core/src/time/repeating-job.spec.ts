import { repeatEvery } from './repeating-job';

describe('repeatEvery', () => {
  beforeEach(() => jest.useFakeTimers());
  afterEach(() => jest.useRealTimers());

  it('runs after the first delay, then again an interval after each run ends, never two at once', async () => {
    let running = 0;
    let most = 0;
    const finishes: (() => void)[] = [];
    const job = repeatEvery({
      firstDelayMs: 100,
      intervalMs: 1_000,
      work: () => {
        running += 1;
        most = Math.max(most, running);

        return new Promise<void>((resolve) =>
          finishes.push(() => {
            running -= 1;
            resolve();
          }),
        );
      },
      onError: () => undefined,
    });

    await jest.advanceTimersByTimeAsync(99);
    expect(finishes).toHaveLength(0);
    await jest.advanceTimersByTimeAsync(1);
    expect(finishes).toHaveLength(1);
    // A slow run: no second one starts while it lasts, however long.
    await jest.advanceTimersByTimeAsync(5_000);
    expect(finishes).toHaveLength(1);
    finishes[0]();
    await jest.advanceTimersByTimeAsync(999);
    expect(finishes).toHaveLength(1);
    await jest.advanceTimersByTimeAsync(1);
    expect(finishes).toHaveLength(2);
    expect(most).toBe(1);

    const stopped = job.stop();
    finishes[1]();
    await stopped;
    await jest.advanceTimersByTimeAsync(10_000);
    expect(finishes).toHaveLength(2);
  });

  it('hands a failed run to onError and keeps going', async () => {
    const errors: unknown[] = [];
    let runs = 0;
    const job = repeatEvery({
      firstDelayMs: 10,
      intervalMs: 10,
      work: async () => {
        runs += 1;
        throw new Error(`run ${runs}`);
      },
      onError: (error) => errors.push(error),
    });

    await jest.advanceTimersByTimeAsync(35);
    await job.stop();

    expect(runs).toBe(3);
    expect(errors.map((error) => (error as Error).message)).toEqual(['run 1', 'run 2', 'run 3']);
  });
});
