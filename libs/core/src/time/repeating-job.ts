/** A job on a timer: started with `repeatEvery`, stopped (waiting for a run in progress) with `stop`. */
export interface RepeatingJob {
  stop(): Promise<void>;
}

/**
 * Runs `work` after `firstDelayMs`, then again `intervalMs` after each run ends, so two runs
 * never overlap. A failed run is handed to `onError` and the next one still happens. The timer
 * never keeps the process alive; `stop` cancels the next run and waits for the current one.
 */
export function repeatEvery(options: {
  firstDelayMs: number;
  intervalMs: number;
  work: () => Promise<unknown>;
  onError: (error: unknown) => void;
}): RepeatingJob {
  let timer: NodeJS.Timeout | undefined;
  let running: Promise<unknown> | undefined;
  let stopped = false;
  const schedule = (delay: number) => {
    timer = setTimeout(() => {
      running = options
        .work()
        .catch(options.onError)
        .finally(() => {
          running = undefined;
          if (!stopped) {
            schedule(options.intervalMs);
          }
        });
    }, delay);
    timer.unref();
  };
  schedule(options.firstDelayMs);

  return {
    async stop() {
      stopped = true;
      clearTimeout(timer);
      await running?.catch(() => undefined);
    },
  };
}
