import {
  AccountAttempts,
  CLOCK_SKEW_MS,
  LoginThrottleSettings,
  addressRetryAfter,
  admitAccountAttempt,
  countAddressFailure,
  freshAccountAttempts,
  lockAfterFailure,
  lockDurationMs,
} from './login-attempt-rules';

const SETTINGS: LoginThrottleSettings = {
  failuresBeforeLock: 5,
  windowMs: 15 * 60_000,
  lockMs: 60_000,
  lockMaxMs: 3_600_000,
  maxConsecutiveFailures: 100,
  addressFailureLimit: 3,
  addressBlockMs: 15 * 60_000,
};

const T0 = Date.UTC(2026, 0, 1);

/** One wrong password: admitted, then checked for a lock. */
function fail(state: AccountAttempts, now: number, settings = SETTINGS) {
  const admission = admitAccountAttempt(state, now, settings);
  if (!admission.admitted) {
    return { admission, state: admission.state, lock: undefined };
  }
  const after = lockAfterFailure(admission.state, now, settings);

  return { admission, state: after.state, lock: after.lock };
}

describe('account lock rules', () => {
  it('locks on the fifth failure in the window and refuses the sixth attempt', () => {
    let state = freshAccountAttempts(T0);
    const locks = [];
    for (let attempt = 1; attempt <= 5; attempt += 1) {
      const result = fail(state, T0 + attempt * 1000);
      expect(result.admission.admitted).toBe(true);
      state = result.state;
      locks.push(result.lock);
    }

    expect(locks.slice(0, 4)).toEqual([undefined, undefined, undefined, undefined]);
    expect(locks[4]).toEqual({ until: T0 + 5000 + 60_000, seconds: 60, consecutiveFailures: 5 });
    const sixth = admitAccountAttempt(state, T0 + 6000, SETTINGS);
    expect(sixth).toMatchObject({ admitted: false, retryAfterSeconds: 59 });
  });

  it('refuses attempts beyond the limit while earlier ones are still being checked', () => {
    let state = freshAccountAttempts(T0);
    const verdicts = [];
    for (let attempt = 0; attempt < 8; attempt += 1) {
      const admission = admitAccountAttempt(state, T0, SETTINGS);
      state = admission.state;
      verdicts.push(admission.admitted);
    }

    expect(verdicts).toEqual([true, true, true, true, true, false, false, false]);
  });

  it('doubles each further lock up to the maximum', () => {
    expect([0, 1, 2, 5, 6, 7, 40].map((locks) => lockDurationMs(locks, SETTINGS))).toEqual([
      60_000, 120_000, 240_000, 1_920_000, 3_600_000, 3_600_000, 3_600_000,
    ]);
  });

  it('admits again once the lock has expired, says so, and locks twice as long next time', () => {
    let state = freshAccountAttempts(T0);
    for (let attempt = 0; attempt < 5; attempt += 1) {
      state = fail(state, T0).state;
    }
    const afterLock = T0 + 60_000;

    const admission = admitAccountAttempt(state, afterLock, SETTINGS);

    expect(admission).toMatchObject({ admitted: true, lockExpired: true });
    state = admission.state;
    let lock;
    for (let attempt = 0; attempt < 5; attempt += 1) {
      const result =
        attempt === 0
          ? { ...lockAfterFailure(state, afterLock, SETTINGS) }
          : fail(state, afterLock);
      state = result.state;
      lock = result.lock;
    }
    expect(lock?.seconds).toBe(120);
  });

  it('forgets failures older than the window', () => {
    let state = freshAccountAttempts(T0);
    for (let attempt = 0; attempt < 4; attempt += 1) {
      state = fail(state, T0).state;
    }

    const later = fail(state, T0 + SETTINGS.windowMs);

    expect(later.lock).toBeUndefined();
    expect(later.state.failures).toBe(1);
    expect(later.state.consecutiveFailures).toBe(5);
  });

  it('locks until an admin unlocks after the consecutive limit, across timed locks', () => {
    const settings = { ...SETTINGS, maxConsecutiveFailures: 12 };
    let state = freshAccountAttempts(T0);
    let now = T0;
    let lock;
    while (!state.lockedIndefinitely) {
      const result = fail(state, now, settings);
      state = result.state;
      lock = result.lock ?? lock;
      now += state.lockedUntil && state.lockedUntil > now ? state.lockedUntil - now : 1000;
    }

    expect(lock).toEqual({ until: null, seconds: null, consecutiveFailures: 12 });
    expect(admitAccountAttempt(state, now + 365 * 86_400_000, settings)).toMatchObject({
      admitted: false,
      retryAfterSeconds: null,
    });
  });

  it('ignores a lock dated further ahead than the longest lock (a wrong clock wrote it)', () => {
    const state: AccountAttempts = {
      ...freshAccountAttempts(T0),
      lockedUntil: T0 + SETTINGS.lockMaxMs + CLOCK_SKEW_MS + 1,
    };

    expect(admitAccountAttempt(state, T0, SETTINGS).admitted).toBe(true);
  });
});

describe('address block rules', () => {
  it('blocks an address at the limit of failures in the window, for the block time', () => {
    let state;
    const blocks = [];
    for (let attempt = 0; attempt < 3; attempt += 1) {
      const result = countAddressFailure(state, T0, SETTINGS);
      state = result.state;
      blocks.push(result.blockedSeconds);
    }

    expect(blocks).toEqual([undefined, undefined, 900]);
    expect(addressRetryAfter(state, T0 + 1000, SETTINGS)).toBe(899);
    expect(addressRetryAfter(state, T0 + SETTINGS.addressBlockMs, SETTINGS)).toBeUndefined();
  });

  it('does not honour a block dated further ahead than one block', () => {
    const state = {
      failures: 0,
      windowStartedAt: T0,
      blockedUntil: T0 + SETTINGS.addressBlockMs + CLOCK_SKEW_MS + 1,
    };

    expect(addressRetryAfter(state, T0, SETTINGS)).toBeUndefined();
  });
});
