import { createHmac } from 'node:crypto';
import { isIPv4, isIPv6 } from 'node:net';

import { Inject, Injectable, Logger } from '@nestjs/common';
import { DataSource, EntityManager } from 'typeorm';

import { APP_CONFIG, AppConfig, Clock, declareTable } from '@parley/core';
import { KeyEncryptionKey, normalizeForIndex } from '@parley/crypto';
import { TenantTransactions } from '@parley/database';

import {
  AccountAttempts,
  AccountLock,
  AddressAttempts,
  LoginThrottleSettings,
  addressRetryAfter,
  admitAccountAttempt,
  countAddressFailure,
  freshAccountAttempts,
  lockAfterFailure,
  loginThrottleSettings,
} from './login-attempt-rules';
import { LoginThrottleProblem } from './login-throttle.errors';

declareTable(
  'login_attempts',
  {
    purpose: 'Failed sign-ins per account, to slow and lock password guessing.',
    retention: 'Until a successful sign-in or the window passes.',
  },
  {
    organization_id: { class: 'internal' },
    account_key: {
      class: 'internal',
      purpose: 'A member id, or a keyed hash of an email that is no member; never the email.',
    },
    user_id: { class: 'internal' },
    failures: { class: 'internal' },
    window_started_at: { class: 'internal' },
    consecutive_failures: { class: 'internal' },
    locks: { class: 'internal' },
    locked_until: { class: 'internal' },
    locked_indefinitely: { class: 'internal' },
    updated_at: { class: 'internal' },
  },
);
declareTable(
  'login_address_attempts',
  {
    purpose: 'Failed sign-ins per client address across organizations, to block guessing.',
    retention: 'Until the block and its window pass.',
  },
  {
    address_key: { class: 'internal', purpose: 'A hash of the client address, not the address.' },
    failures: { class: 'internal' },
    window_started_at: { class: 'internal' },
    blocked_until: { class: 'internal' },
    updated_at: { class: 'internal' },
  },
);

export interface LoginAttempt {
  /** Unset for an organization that does not exist: only the address is counted then. */
  organizationId?: string;
  /** The member the email names; an email that names no member is counted by its digest. */
  userId?: string;
  email: string;
  /** The client address; unset (no HTTP request) means no per-address limit. */
  address?: string;
}

/**
 * A refused sign-in as detection sees it: the account by its key (`user:<id>` or a keyed digest
 * of an email that names no member, never the email) and the client address.
 */
export interface LoginFailureSignal {
  organizationId?: string;
  accountKey?: string;
  address?: string;
}

export type LoginFailureObserver = (failure: LoginFailureSignal) => void;

export type LoginAdmission =
  | { admitted: true; lockExpired: boolean }
  | { admitted: false; lockExpired: boolean; refusal: LoginThrottleProblem };

export interface LoginFailureOutcome {
  lock?: AccountLock;
  addressBlockedSeconds?: number;
}

interface AccountRow {
  failures: number;
  window_started_at: Date | string;
  consecutive_failures: number;
  locks: number;
  locked_until: Date | string | null;
  locked_indefinitely: boolean;
}

interface AddressRow {
  failures: number;
  window_started_at: Date | string;
  blocked_until: Date | string | null;
}

function epoch(value: Date | string): number {
  return new Date(value).getTime();
}

function date(ms: number | null): Date | null {
  return ms === null ? null : new Date(ms);
}

/** An IPv4 address as is; an IPv6 address by its /64, which one subscriber usually holds whole. */
export function addressIdentity(address: string): string {
  const mapped = /^::ffff:(\d{1,3}(?:\.\d{1,3}){3})$/i.exec(address);
  if (mapped) {
    return mapped[1];
  }
  const bare = address.split('%')[0];
  if (isIPv4(bare) || !isIPv6(bare)) {
    return bare;
  }
  const [head, tail] = bare.includes('::') ? bare.split('::') : [bare, undefined];
  const headGroups = head ? head.split(':') : [];
  const tailGroups = tail ? tail.split(':') : [];
  const tailWidth = tailGroups.reduce((width, group) => width + (group.includes('.') ? 2 : 1), 0);
  const groups =
    tail === undefined
      ? headGroups
      : [...headGroups, ...Array(8 - headGroups.length - tailWidth).fill('0'), ...tailGroups];

  return `${groups
    .slice(0, 4)
    .map((group) => Number.parseInt(group, 16).toString(16))
    .join(':')}::/64`;
}

/**
 * The row an attempt counts against: the member, or for an email that is no member a keyed
 * HMAC of it (a plain hash of an email is reversed by hashing guesses), so no typed address is kept.
 */
export function accountKey(attempt: Pick<LoginAttempt, 'userId' | 'email'>, key: Buffer): string {
  if (attempt.userId) {
    return `user:${attempt.userId}`;
  }

  return `email:${createHmac('sha256', key).update(normalizeForIndex(attempt.email), 'utf8').digest('hex')}`;
}

/** A keyed digest of the client address (or its /64): an unkeyed one is reversed by trying every IPv4 address. */
function addressKey(address: string, key: Buffer): Buffer {
  return createHmac('sha256', key).update(addressIdentity(address), 'utf8').digest();
}

/**
 * Failed sign-ins counted per account (organization and email, whether or not a member has it)
 * and per client address, in the database so every instance, and the embedded default, share
 * one count. Accounts lock with exponential back-off; a locked account refuses even the right
 * password. Addresses that fail across many accounts are blocked for a while.
 */
@Injectable()
export class LoginThrottle {
  private readonly logger = new Logger(LoginThrottle.name);
  private readonly settings: LoginThrottleSettings;

  constructor(
    @Inject(APP_CONFIG) config: AppConfig,
    private readonly dataSource: DataSource,
    private readonly transactions: TenantTransactions,
    private readonly clock: Clock,
    keyEncryptionKey: KeyEncryptionKey,
  ) {
    this.settings = loginThrottleSettings(config);
    this.emailKey = keyEncryptionKey.deriveKey('login-throttle');
  }

  private readonly emailKey: Buffer;
  private readonly failureObservers: LoginFailureObserver[] = [];

  /** Calls `observer` for every refused sign-in: a wrong password, an unknown account, a lock. */
  observeFailures(observer: LoginFailureObserver): void {
    this.failureObservers.push(observer);
  }

  private notifyFailure(attempt: LoginAttempt): void {
    const failure: LoginFailureSignal = {
      organizationId: attempt.organizationId,
      accountKey: attempt.organizationId ? this.accountKey(attempt) : undefined,
      address: attempt.address,
    };
    for (const observer of this.failureObservers) {
      try {
        observer(failure);
      } catch (error) {
        this.logger.error({ reason: (error as Error).message }, 'sign-in failure observer failed');
      }
    }
  }

  private accountKey(attempt: Pick<LoginAttempt, 'userId' | 'email'>): string {
    return accountKey(attempt, this.emailKey);
  }

  /** Admits one attempt (and counts it) or refuses it: a blocked address, a locked account. */
  async admit(attempt: LoginAttempt): Promise<LoginAdmission> {
    const now = this.clock.nowMs();

    const decision: LoginAdmission = await this.run(attempt.organizationId, async (manager) => {
      if (attempt.address) {
        const retryAfter = addressRetryAfter(
          await this.readAddress(manager, addressKey(attempt.address, this.emailKey)),
          now,
          this.settings,
        );
        if (retryAfter !== undefined) {
          return {
            admitted: false,
            lockExpired: false,
            refusal: LoginThrottleProblem.tooManyAttempts(retryAfter),
          };
        }
      }
      if (!attempt.organizationId) {
        return { admitted: true, lockExpired: false };
      }

      const key = this.accountKey(attempt);
      const current = await this.lockAccountRow(
        manager,
        attempt.organizationId,
        key,
        attempt.userId,
      );
      const admission = admitAccountAttempt(current, now, this.settings);
      await this.writeAccount(manager, attempt.organizationId, key, admission.state, now);
      if (!admission.admitted) {
        return {
          admitted: false,
          lockExpired: admission.lockExpired,
          refusal: LoginThrottleProblem.accountLocked(admission.retryAfterSeconds),
        };
      }

      return { admitted: true, lockExpired: admission.lockExpired };
    });
    if (!decision.admitted) {
      this.notifyFailure(attempt);
    }

    return decision;
  }

  /** After a wrong password (or an unknown account): may lock the account and block the address. */
  async recordFailure(attempt: LoginAttempt): Promise<LoginFailureOutcome> {
    const now = this.clock.nowMs();
    const outcome: LoginFailureOutcome = await this.run(attempt.organizationId, async (manager) => {
      const result: LoginFailureOutcome = {};
      if (attempt.organizationId) {
        const key = this.accountKey(attempt);
        const current = await this.lockAccountRow(
          manager,
          attempt.organizationId,
          key,
          attempt.userId,
        );
        const { state, lock } = lockAfterFailure(current, now, this.settings);
        if (lock) {
          await this.writeAccount(manager, attempt.organizationId, key, state, now);
          result.lock = lock;
        }
      }
      if (attempt.address) {
        result.addressBlockedSeconds = await this.countAddressFailure(
          manager,
          addressKey(attempt.address, this.emailKey),
          now,
        );
      }

      return result;
    });
    this.notifyFailure(attempt);

    if (outcome.lock) {
      this.logger.warn(
        { organizationId: attempt.organizationId, lockSeconds: outcome.lock.seconds },
        'account locked after repeated failed sign-ins',
      );
    }
    if (outcome.addressBlockedSeconds !== undefined) {
      this.logger.warn(
        { blockSeconds: outcome.addressBlockedSeconds },
        'client address blocked after repeated failed sign-ins',
      );
    }

    return outcome;
  }

  /** A right password: the account starts over (the address keeps its count). */
  async recordSuccess(attempt: LoginAttempt & { organizationId: string }): Promise<void> {
    await this.transactions.run(attempt.organizationId, (manager) =>
      manager.query(`delete from login_attempts where organization_id = $1 and account_key = $2`, [
        attempt.organizationId,
        this.accountKey(attempt),
      ]),
    );
  }

  /** An admin's unlock, in the current tenant transaction; says whether the account was locked. */
  async unlockMember(organizationId: string, userId: string): Promise<{ wasLocked: boolean }> {
    const now = new Date(this.clock.nowMs());
    // TypeORM 1 answers a raw DELETE with [rows, affected count], not with the rows alone.
    const [rows]: [{ locked: boolean }[], number] = await this.transactions.run(
      organizationId,
      (manager) =>
        manager.query(
          `delete from login_attempts where organization_id = $1 and account_key = $2
           returning (locked_indefinitely or coalesce(locked_until > $3, false)) as locked`,
          [organizationId, this.accountKey({ userId, email: '' }), now],
        ),
    );

    return { wasLocked: rows.some((row) => row.locked) };
  }

  /** The tenant transaction when there is an organization, else a plain one (addresses only). */
  private run<T>(
    organizationId: string | undefined,
    work: (manager: EntityManager) => Promise<T>,
  ): Promise<T> {
    if (organizationId) {
      return this.transactions.run(organizationId, work);
    }
    if (this.transactions.active) {
      return work(this.transactions.manager);
    }

    return this.dataSource.transaction(work);
  }

  /** The account's row, created when missing, locked until the transaction ends. */
  private async lockAccountRow(
    manager: EntityManager,
    organizationId: string,
    key: string,
    userId: string | undefined,
  ): Promise<AccountAttempts> {
    const now = new Date(this.clock.nowMs());
    // One statement: ON CONFLICT DO UPDATE locks the existing row as FOR UPDATE would, and
    // the no-op assignment hands it back unchanged.
    const rows: AccountRow[] = await manager.query(
      `insert into login_attempts
         (organization_id, account_key, user_id, window_started_at, updated_at)
       values ($1, $2, $3, $4, $4)
       on conflict (organization_id, account_key) do update set account_key = excluded.account_key
       returning failures, window_started_at, consecutive_failures, locks, locked_until,
                 locked_indefinitely`,
      [organizationId, key, userId ?? null, now],
    );
    const row = rows[0];
    if (!row) {
      return freshAccountAttempts(now.getTime());
    }

    return {
      failures: row.failures,
      windowStartedAt: epoch(row.window_started_at),
      consecutiveFailures: row.consecutive_failures,
      locks: row.locks,
      lockedUntil: row.locked_until === null ? null : epoch(row.locked_until),
      lockedIndefinitely: row.locked_indefinitely,
    };
  }

  private async writeAccount(
    manager: EntityManager,
    organizationId: string,
    key: string,
    state: AccountAttempts,
    now: number,
  ): Promise<void> {
    await manager.query(
      `update login_attempts
          set failures = $3, window_started_at = $4, consecutive_failures = $5, locks = $6,
              locked_until = $7, locked_indefinitely = $8, updated_at = $9
        where organization_id = $1 and account_key = $2`,
      [
        organizationId,
        key,
        state.failures,
        new Date(state.windowStartedAt),
        state.consecutiveFailures,
        state.locks,
        date(state.lockedUntil),
        state.lockedIndefinitely,
        new Date(now),
      ],
    );
  }

  private async readAddress(
    manager: EntityManager,
    key: Buffer,
  ): Promise<AddressAttempts | undefined> {
    const rows: AddressRow[] = await manager.query(
      `select failures, window_started_at, blocked_until
         from login_address_attempts where address_key = $1`,
      [key],
    );

    return rows[0] ? this.addressAttempts(rows[0]) : undefined;
  }

  /** Counts a failure from the address; returns the block in seconds when it starts one. */
  private async countAddressFailure(
    manager: EntityManager,
    key: Buffer,
    now: number,
  ): Promise<number | undefined> {
    await manager.query(
      `insert into login_address_attempts (address_key, window_started_at, updated_at)
       values ($1, $2, $2)
       on conflict (address_key) do nothing`,
      [key, new Date(now)],
    );
    const rows: AddressRow[] = await manager.query(
      `select failures, window_started_at, blocked_until
         from login_address_attempts where address_key = $1 for update`,
      [key],
    );
    const { state, blockedSeconds } = countAddressFailure(
      rows[0] ? this.addressAttempts(rows[0]) : undefined,
      now,
      this.settings,
    );
    await manager.query(
      `update login_address_attempts
          set failures = $2, window_started_at = $3, blocked_until = $4, updated_at = $5
        where address_key = $1`,
      [
        key,
        state.failures,
        new Date(state.windowStartedAt),
        date(state.blockedUntil),
        new Date(now),
      ],
    );

    return blockedSeconds;
  }

  private addressAttempts(row: AddressRow): AddressAttempts {
    return {
      failures: row.failures,
      windowStartedAt: epoch(row.window_started_at),
      blockedUntil: row.blocked_until === null ? null : epoch(row.blocked_until),
    };
  }
}
