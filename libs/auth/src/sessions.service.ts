import { randomUUID } from 'node:crypto';

import { Inject, Injectable } from '@nestjs/common';

import { APP_CONFIG, AppConfig, Clock, RequestContext, Role } from '@parley/core';
import { TenantTransactions } from '@parley/database';

import { RevocationChannel } from './revocation-channel';
import { SessionEntity } from './session.entity';

export interface ActiveSession {
  id: string;
  organizationId: string;
  subjectType: 'user' | 'visitor';
  userId: string | null;
  contactId: string | null;
  role: Role | null;
  expiresAt: number;
  /** The member must enroll in MFA before this session may do anything else. */
  mfaPending: boolean;
  /** The member's highest approved elevation running when the session was read, if any. */
  elevation: { id: string; role: Role; endsAt: number } | null;
}

/** How stale a session's last-seen time may get before a use writes it again. */
const LAST_SEEN_RESOLUTION_MS = 60_000;

export interface SessionSummary {
  id: string;
  createdAt: Date;
  lastSeenAt: Date;
  expiresAt: Date;
  ip: string | null;
  userAgent: string | null;
}

interface CachedSession {
  session: ActiveSession;
  checkedAt: number;
}

/**
 * Server-side sessions named by every token. A session read from the database is trusted for at
 * most SESSION_CACHE_MS (one second by default); ending a session evicts it here at once. The
 * member's running elevation is read with it, so it is cached no longer, and its end time is
 * checked on every use (see effectiveMemberActor).
 */
@Injectable()
export class SessionsService {
  private readonly cache = new Map<string, CachedSession>();
  /** Reads of a session under way, shared by the checks that arrive while one runs. */
  private readonly reading = new Map<string, Promise<ActiveSession | undefined>>();
  /**
   * Counts evictions (a session ended, a member's role or elevation changed). A read that was
   * under way when one happened may have seen the state before it: its result is not cached, and
   * checks that arrive after the eviction do not share it.
   */
  private evictions = 0;

  constructor(
    @Inject(APP_CONFIG) private readonly config: AppConfig,
    private readonly transactions: TenantTransactions,
    private readonly clock: Clock,
    private readonly context: RequestContext,
    private readonly revocations: RevocationChannel,
  ) {
    revocations.onEnded((sessionId) => this.evict({ sessionId }));
  }

  /** Starts a session in the current tenant transaction and returns its id. */
  async start(
    subject: { userId: string; mfaPending?: boolean } | { contactId: string },
    lifetimeSeconds: number,
  ): Promise<SessionEntity> {
    const now = this.clock.now();
    const session: SessionEntity = {
      id: randomUUID(),
      organizationId: this.context.organizationIdOrThrow(),
      subjectType: 'userId' in subject ? 'user' : 'visitor',
      userId: 'userId' in subject ? subject.userId : null,
      contactId: 'contactId' in subject ? subject.contactId : null,
      ip: this.context.ip ?? null,
      userAgent: this.context.userAgent ?? null,
      createdAt: now,
      lastSeenAt: now,
      expiresAt: new Date(now.getTime() + lifetimeSeconds * 1000),
      endedAt: null,
      endReason: null,
      mfaPending: 'userId' in subject && subject.mfaPending === true,
    };
    await this.transactions.manager.insert(SessionEntity, session);

    return session;
  }

  /** The session if it is still active, read in its organization's transaction. */
  /** `recordUse: false` checks without counting as activity (the socket sweep must not keep a session alive). */
  async findActive(
    organizationId: string,
    sessionId: string,
    options: { recordUse?: boolean } = {},
  ): Promise<ActiveSession | undefined> {
    const now = this.clock.nowMs();
    const cached = this.cache.get(sessionId);
    const inTransaction = this.transactions.active;
    if (
      cached &&
      cached.session.organizationId === organizationId &&
      now - cached.checkedAt < this.config.sessionCacheMs
    ) {
      // A session in steady use is read again in the background once its copy is half as old
      // as the cache allows, so its checks seldom wait for a read; no copy is ever used past
      // SESSION_CACHE_MS from the moment its read began.
      if (!inTransaction && now - cached.checkedAt >= this.config.sessionCacheMs / 2) {
        void this.sharedRead(organizationId, sessionId, options, now).catch(() => undefined);
      }

      return cached.session.expiresAt > now ? cached.session : undefined;
    }
    if (inTransaction) {
      return this.read(organizationId, sessionId, options, now);
    }

    return this.sharedRead(organizationId, sessionId, options, now);
  }

  /**
   * Every event of every socket on a session checks it: the checks that arrive while a read of
   * it is under way wait for that read instead of each opening a transaction of its own.
   */
  private sharedRead(
    organizationId: string,
    sessionId: string,
    options: { recordUse?: boolean },
    now: number,
  ): Promise<ActiveSession | undefined> {
    const key = `${organizationId}|${sessionId}|${options.recordUse !== false}`;
    let reading = this.reading.get(key);
    if (!reading) {
      const started = this.read(organizationId, sessionId, options, now).finally(() => {
        // An eviction may have replaced it with a later read meanwhile.
        if (this.reading.get(key) === started) {
          this.reading.delete(key);
        }
      });
      reading = started;
      this.reading.set(key, started);
    }

    return reading;
  }

  private async read(
    organizationId: string,
    sessionId: string,
    options: { recordUse?: boolean },
    now: number,
  ): Promise<ActiveSession | undefined> {
    // Idle and absolute limits are both checked here: a session unused for the organization's
    // idle time is over, and use is recorded at most once a minute to keep reads cheap.
    const evictionsBefore = this.evictions;
    const rows: {
      id: string;
      subject_type: 'user' | 'visitor';
      user_id: string | null;
      contact_id: string | null;
      role: Role | null;
      expires_at: Date;
      mfa_pending: boolean;
      last_seen_at: Date;
      elevation_id: string | null;
      elevation_role: Role | null;
      elevation_ends_at: Date | null;
    }[] = await this.transactions.run(organizationId, async (manager) => {
      // An elevation applies only while the member keeps the role it was granted over.
      const found = await manager.query(
        `select s.id, s.subject_type, s.user_id, s.contact_id, u.role, s.expires_at, s.mfa_pending, s.last_seen_at,
                e.id as elevation_id, e.role as elevation_role, e.ends_at as elevation_ends_at
           from auth_sessions s
           join organizations o on o.id = s.organization_id
           left join users u on u.id = s.user_id
           left join lateral (
             select e.id, e.role, e.ends_at
               from access_elevations e
              where e.organization_id = s.organization_id and e.requester_id = s.user_id
                and e.requester_role = u.role and e.status = 'approved'
                and e.starts_at <= $2 and e.ends_at > $2
              order by array_position(array['viewer', 'agent', 'manager', 'admin'], e.role) desc,
                       e.ends_at desc
              limit 1
           ) e on true
          where s.id = $1 and s.ended_at is null and s.expires_at > $2
            and s.last_seen_at > $2::timestamptz - make_interval(mins => o.session_idle_minutes)`,
        [sessionId, new Date(now)],
      );
      if (
        options.recordUse !== false &&
        found[0] &&
        now - new Date(found[0].last_seen_at).getTime() > LAST_SEEN_RESOLUTION_MS
      ) {
        await manager.query('update auth_sessions set last_seen_at = $2 where id = $1', [
          sessionId,
          new Date(now),
        ]);
      }

      return found;
    });
    const row = rows[0];
    if (!row || (row.subject_type === 'user' && !row.role)) {
      this.cache.delete(sessionId);

      return undefined;
    }
    const session: ActiveSession = {
      id: row.id,
      organizationId,
      subjectType: row.subject_type,
      userId: row.user_id,
      contactId: row.contact_id,
      role: row.role,
      expiresAt: new Date(row.expires_at).getTime(),
      mfaPending: row.mfa_pending === true,
      elevation:
        row.elevation_id && row.elevation_role && row.elevation_ends_at
          ? {
              id: row.elevation_id,
              role: row.elevation_role,
              endsAt: new Date(row.elevation_ends_at).getTime(),
            }
          : null,
    };
    if (this.evictions !== evictionsBefore) {
      return session;
    }
    if (this.cache.size > 50_000) {
      this.cache.clear();
    }
    this.cache.set(sessionId, { session, checkedAt: now });

    return session;
  }

  /**
   * Lifts the enrollment-only limit from a session whose member has just confirmed a factor; the
   * cached copy is dropped after commit (without the ended-session listeners: it goes on).
   */
  async completeMfaEnrollment(sessionId: string): Promise<void> {
    await this.transactions.manager.query(
      'update auth_sessions set mfa_pending = false where id = $1 and mfa_pending',
      [sessionId],
    );
    this.transactions.afterCommit(() => this.evict({ sessionId }));
  }

  /**
   * Drops a member's cached sessions once the transaction commits, so a change to what they may
   * do (an elevation approved or revoked) applies at once here, and within SESSION_CACHE_MS on
   * other instances. The sessions themselves go on.
   */
  forgetMember(userId: string): void {
    this.transactions.afterCommit(() => this.evict({ userId }));
  }

  /** Drops one session, or a member's, from the cache, and stops reads under way from refilling it. */
  private evict(which: { sessionId: string } | { userId: string }): void {
    this.evictions += 1;
    this.reading.clear();
    if ('sessionId' in which) {
      this.cache.delete(which.sessionId);

      return;
    }
    for (const [sessionId, cached] of this.cache) {
      if (cached.session.userId === which.userId) {
        this.cache.delete(sessionId);
      }
    }
  }

  /** A member's sessions that are still active, newest first. */
  async listActive(userId: string): Promise<SessionSummary[]> {
    const rows: {
      id: string;
      created_at: Date;
      last_seen_at: Date;
      expires_at: Date;
      ip: string | null;
      user_agent: string | null;
    }[] = await this.transactions.manager.query(
      `select s.id, s.created_at, s.last_seen_at, s.expires_at, s.ip, s.user_agent
           from auth_sessions s join organizations o on o.id = s.organization_id
          where s.user_id = $1 and s.ended_at is null and s.expires_at > $2
            and s.last_seen_at > $2::timestamptz - make_interval(mins => o.session_idle_minutes)
          order by s.created_at desc`,
      [userId, this.clock.now()],
    );

    return rows.map((row) => ({
      id: row.id,
      createdAt: new Date(row.created_at),
      lastSeenAt: new Date(row.last_seen_at),
      expiresAt: new Date(row.expires_at),
      ip: row.ip,
      userAgent: row.user_agent,
    }));
  }

  /** Ends a session in the current tenant transaction; once it commits, its tokens stop working. */
  async end(sessionId: string, reason: string): Promise<boolean> {
    const ended = await this.endWhere('id = $3', [sessionId], reason);

    return ended.length > 0;
  }

  /** Ends a member's own session if it is still active; false when it is not theirs or over. */
  async endOwn(sessionId: string, userId: string, reason: string): Promise<boolean> {
    const ended = await this.endWhere(
      `id = $3 and user_id = $4 and expires_at > $1
        and last_seen_at > $1::timestamptz - (
          select make_interval(mins => o.session_idle_minutes) from organizations o
           where o.id = auth_sessions.organization_id)`,
      [sessionId, userId],
      reason,
    );

    return ended.length > 0;
  }

  /**
   * Ends every active session of a member (password or role change, MFA reset, admin action),
   * except `keepSessionId` when given; returns the ended ids.
   */
  endAllForUser(userId: string, reason: string, keepSessionId?: string): Promise<string[]> {
    return keepSessionId
      ? this.endWhere('user_id = $3 and id <> $4', [userId, keepSessionId], reason)
      : this.endWhere('user_id = $3', [userId], reason);
  }

  /** `condition` is a fixed SQL fragment of this class whose parameters start at $3. */
  private async endWhere(
    condition: string,
    parameters: string[],
    reason: string,
  ): Promise<string[]> {
    const [rows]: [{ id: string }[], number] = await this.transactions.manager.query(
      `update auth_sessions set ended_at = $1, end_reason = $2
        where ended_at is null and ${condition}
      returning id`,
      [this.clock.now(), reason, ...parameters],
    );
    const ids = rows.map((row) => row.id);
    this.transactions.afterCommit(() => this.revocations.announce(ids));

    return ids;
  }

  /** Called, on every instance, with the id of each session that ended anywhere. */
  onEnded(listener: (sessionId: string) => void): void {
    this.revocations.onEnded(listener);
  }
}
