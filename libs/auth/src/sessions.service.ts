import { randomUUID } from 'node:crypto';

import { Inject, Injectable } from '@nestjs/common';

import { APP_CONFIG, AppConfig, Clock, RequestContext, Role } from '@parley/core';
import { TenantTransactions } from '@parley/database';

import { SessionEntity } from './session.entity';

export interface ActiveSession {
  id: string;
  organizationId: string;
  subjectType: 'user' | 'visitor';
  userId: string | null;
  contactId: string | null;
  role: Role | null;
  expiresAt: number;
}

interface CachedSession {
  session: ActiveSession;
  checkedAt: number;
}

/**
 * Server-side sessions named by every token. A session read from the database is trusted for at
 * most SESSION_CACHE_MS (one second by default); ending a session evicts it here at once.
 */
@Injectable()
export class SessionsService {
  private readonly cache = new Map<string, CachedSession>();
  private readonly endedListeners: ((sessionId: string) => void)[] = [];

  constructor(
    @Inject(APP_CONFIG) private readonly config: AppConfig,
    private readonly transactions: TenantTransactions,
    private readonly clock: Clock,
    private readonly context: RequestContext,
  ) {}

  /** Starts a session in the current tenant transaction and returns its id. */
  async start(
    subject: { userId: string } | { contactId: string },
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
    };
    await this.transactions.manager.insert(SessionEntity, session);

    return session;
  }

  /** The session if it is still active, read in its organization's transaction. */
  async findActive(organizationId: string, sessionId: string): Promise<ActiveSession | undefined> {
    const now = this.clock.nowMs();
    const cached = this.cache.get(sessionId);
    if (
      cached &&
      cached.session.organizationId === organizationId &&
      now - cached.checkedAt < this.config.sessionCacheMs
    ) {
      return cached.session.expiresAt > now ? cached.session : undefined;
    }
    const rows: {
      id: string;
      subject_type: 'user' | 'visitor';
      user_id: string | null;
      contact_id: string | null;
      role: Role | null;
      expires_at: Date;
    }[] = await this.transactions.run(organizationId, (manager) =>
      manager.query(
        `select s.id, s.subject_type, s.user_id, s.contact_id, u.role, s.expires_at
           from auth_sessions s left join users u on u.id = s.user_id
          where s.id = $1 and s.ended_at is null and s.expires_at > $2`,
        [sessionId, new Date(now)],
      ),
    );
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
    };
    if (this.cache.size > 50_000) {
      this.cache.clear();
    }
    this.cache.set(sessionId, { session, checkedAt: now });

    return session;
  }

  /** Ends a session in the current tenant transaction; once it commits, its tokens stop working. */
  async end(sessionId: string, reason: string): Promise<boolean> {
    const ended = await this.endWhere('id = $3', [sessionId], reason);

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
    this.transactions.afterCommit(() => ids.forEach((id) => this.forget(id)));

    return ids;
  }

  forget(sessionId: string): void {
    this.cache.delete(sessionId);
    for (const listener of this.endedListeners) {
      listener(sessionId);
    }
  }

  /** Called with the id of every session ended in this process (the gateway disconnects its sockets). */
  onEnded(listener: (sessionId: string) => void): void {
    this.endedListeners.push(listener);
  }
}
