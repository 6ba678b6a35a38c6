import { AppConfig } from '@parley/core';

/**
 * The brute-force rules as pure functions of a counter row and the time, so they can be read
 * and tested apart from the SQL that stores the rows.
 */
export interface LoginThrottleSettings {
  failuresBeforeLock: number;
  windowMs: number;
  lockMs: number;
  lockMaxMs: number;
  /** 0: never lock until an admin unlocks. */
  maxConsecutiveFailures: number;
  addressFailureLimit: number;
  addressBlockMs: number;
}

export function loginThrottleSettings(config: AppConfig): LoginThrottleSettings {
  return {
    failuresBeforeLock: config.loginFailuresBeforeLock,
    windowMs: config.loginFailureWindowSeconds * 1000,
    lockMs: config.loginLockSeconds * 1000,
    lockMaxMs: Math.max(config.loginLockMaxSeconds, config.loginLockSeconds) * 1000,
    maxConsecutiveFailures: config.loginMaxConsecutiveFailures,
    addressFailureLimit: config.loginAddressFailureLimit,
    addressBlockMs: config.loginAddressBlockSeconds * 1000,
  };
}

/**
 * How far ahead of this instance's clock a stored time may be and still be believed. A row dated
 * further ahead was written by a clock that was wrong; honouring it would lock for too long.
 */
export const CLOCK_SKEW_MS = 60_000;

/** One account's counters (times in epoch milliseconds). */
export interface AccountAttempts {
  /** Attempts admitted in the current window that have not succeeded. */
  failures: number;
  windowStartedAt: number;
  /** Failures since the last successful sign-in or unlock, across locks. */
  consecutiveFailures: number;
  /** Locks since the last successful sign-in or unlock; each one doubles the next. */
  locks: number;
  lockedUntil: number | null;
  lockedIndefinitely: boolean;
}

export function freshAccountAttempts(now: number): AccountAttempts {
  return {
    failures: 0,
    windowStartedAt: now,
    consecutiveFailures: 0,
    locks: 0,
    lockedUntil: null,
    lockedIndefinitely: false,
  };
}

export type AccountAdmission =
  | { admitted: true; state: AccountAttempts; lockExpired: boolean }
  | {
      admitted: false;
      state: AccountAttempts;
      lockExpired: boolean;
      retryAfterSeconds: number | null;
    };

function seconds(ms: number): number {
  return Math.max(1, Math.ceil(ms / 1000));
}

/** The length of the next lock: the first lock, doubled for each earlier one, up to the maximum. */
export function lockDurationMs(locks: number, settings: LoginThrottleSettings): number {
  return Math.min(settings.lockMs * 2 ** Math.min(locks, 30), settings.lockMaxMs);
}

/**
 * Decides whether one more attempt on the account may be checked. An admitted attempt is
 * counted as a failure at once (a success removes the row), so parallel guesses cannot
 * overtake the limit: once `failuresBeforeLock` attempts are counted, the next is refused even
 * before the lock is written.
 */
export function admitAccountAttempt(
  current: AccountAttempts,
  now: number,
  settings: LoginThrottleSettings,
): AccountAdmission {
  const state = { ...current };
  if (state.lockedIndefinitely) {
    return { admitted: false, state, lockExpired: false, retryAfterSeconds: null };
  }

  let lockExpired = false;
  if (state.lockedUntil !== null) {
    const believable = state.lockedUntil <= now + settings.lockMaxMs + CLOCK_SKEW_MS;
    if (state.lockedUntil > now && believable) {
      return {
        admitted: false,
        state,
        lockExpired: false,
        retryAfterSeconds: seconds(state.lockedUntil - now),
      };
    }
    state.lockedUntil = null;
    state.failures = 0;
    state.windowStartedAt = now;
    lockExpired = true;
  }

  if (
    now - state.windowStartedAt >= settings.windowMs ||
    state.windowStartedAt > now + CLOCK_SKEW_MS
  ) {
    state.failures = 0;
    state.windowStartedAt = now;
  }

  if (state.failures >= settings.failuresBeforeLock) {
    return {
      admitted: false,
      state,
      lockExpired,
      retryAfterSeconds: seconds(lockDurationMs(state.locks, settings)),
    };
  }

  state.failures += 1;
  state.consecutiveFailures += 1;

  return { admitted: true, state, lockExpired };
}

export interface AccountLock {
  /** null: until an admin unlocks it. */
  until: number | null;
  seconds: number | null;
  consecutiveFailures: number;
}

/** After a wrong password: locks the account when the window's or the consecutive limit is hit. */
export function lockAfterFailure(
  current: AccountAttempts,
  now: number,
  settings: LoginThrottleSettings,
): { state: AccountAttempts; lock?: AccountLock } {
  const state = { ...current };
  if (state.lockedIndefinitely || (state.lockedUntil !== null && state.lockedUntil > now)) {
    return { state };
  }

  if (
    settings.maxConsecutiveFailures > 0 &&
    state.consecutiveFailures >= settings.maxConsecutiveFailures
  ) {
    state.lockedIndefinitely = true;
    state.lockedUntil = null;
    state.locks += 1;

    return {
      state,
      lock: { until: null, seconds: null, consecutiveFailures: state.consecutiveFailures },
    };
  }

  if (state.failures >= settings.failuresBeforeLock) {
    const duration = lockDurationMs(state.locks, settings);
    state.lockedUntil = now + duration;
    state.locks += 1;
    state.failures = 0;
    state.windowStartedAt = now;

    return {
      state,
      lock: {
        until: state.lockedUntil,
        seconds: seconds(duration),
        consecutiveFailures: state.consecutiveFailures,
      },
    };
  }

  return { state };
}

/** One client address's counters (times in epoch milliseconds). */
export interface AddressAttempts {
  failures: number;
  windowStartedAt: number;
  blockedUntil: number | null;
}

/** Seconds the address must still wait, or undefined when it may try. */
export function addressRetryAfter(
  state: AddressAttempts | undefined,
  now: number,
  settings: LoginThrottleSettings,
): number | undefined {
  if (!state || state.blockedUntil === null || state.blockedUntil <= now) {
    return undefined;
  }
  if (state.blockedUntil > now + settings.addressBlockMs + CLOCK_SKEW_MS) {
    return undefined;
  }

  return seconds(state.blockedUntil - now);
}

/** Counts one failure from the address, and blocks it once the window's limit is reached. */
export function countAddressFailure(
  current: AddressAttempts | undefined,
  now: number,
  settings: LoginThrottleSettings,
): { state: AddressAttempts; blockedSeconds?: number } {
  const state: AddressAttempts = current
    ? { ...current }
    : { failures: 0, windowStartedAt: now, blockedUntil: null };
  if (addressRetryAfter(state, now, settings) !== undefined) {
    return { state };
  }
  state.blockedUntil = null;
  if (
    now - state.windowStartedAt >= settings.windowMs ||
    state.windowStartedAt > now + CLOCK_SKEW_MS
  ) {
    state.failures = 0;
    state.windowStartedAt = now;
  }

  state.failures += 1;
  if (state.failures < settings.addressFailureLimit) {
    return { state };
  }

  state.blockedUntil = now + settings.addressBlockMs;
  state.failures = 0;
  state.windowStartedAt = now;

  return { state, blockedSeconds: seconds(settings.addressBlockMs) };
}
