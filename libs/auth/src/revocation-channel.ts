import { Inject, Injectable, Logger, OnModuleDestroy, OnModuleInit } from '@nestjs/common';
import Redis from 'ioredis';

import { APP_CONFIG, AppConfig } from '@parley/core';

const CHANNEL = 'parley:sessions:ended';
const SESSION_ID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

/**
 * Tells every instance that sessions have ended, so each drops them from its cache and cuts
 * their sockets at once. Through Redis pub/sub when REDIS_URL is set; within this process only
 * otherwise, which is all a single instance needs.
 */
@Injectable()
export class RevocationChannel implements OnModuleInit, OnModuleDestroy {
  private readonly logger = new Logger(RevocationChannel.name);
  private readonly listeners: ((sessionId: string) => void)[] = [];
  private publisher: Redis | undefined;
  private subscriber: Redis | undefined;

  constructor(@Inject(APP_CONFIG) private readonly config: AppConfig) {}

  async onModuleInit(): Promise<void> {
    if (!this.config.redisUrl) {
      return;
    }
    this.publisher = new Redis(this.config.redisUrl, { maxRetriesPerRequest: 2 });
    this.subscriber = new Redis(this.config.redisUrl, { maxRetriesPerRequest: null });
    for (const client of [this.publisher, this.subscriber]) {
      client.on('error', (error) =>
        this.logger.warn({ reason: error.message }, 'revocation channel connection error'),
      );
    }
    this.subscriber.on('message', (_channel, message: string) => {
      for (const sessionId of message.split(',')) {
        if (SESSION_ID.test(sessionId)) {
          this.deliver(sessionId);
        }
      }
    });
    await this.subscriber.subscribe(CHANNEL);
  }

  async onModuleDestroy(): Promise<void> {
    await Promise.all(
      [this.publisher, this.subscriber].map((client) => client?.quit().catch(() => undefined)),
    );
  }

  /** Announces ended sessions to every instance, this one included. */
  announce(sessionIds: string[]): void {
    if (sessionIds.length === 0) {
      return;
    }
    if (!this.publisher) {
      sessionIds.forEach((sessionId) => this.deliver(sessionId));

      return;
    }
    // This instance acts at once and again when its own message comes back; both are harmless.
    sessionIds.forEach((sessionId) => this.deliver(sessionId));
    this.publisher.publish(CHANNEL, sessionIds.join(',')).catch((error: Error) => {
      this.logger.error(
        { reason: error.message, sessions: sessionIds.length },
        'could not announce ended sessions',
      );
    });
  }

  onEnded(listener: (sessionId: string) => void): void {
    this.listeners.push(listener);
  }

  private deliver(sessionId: string): void {
    for (const listener of this.listeners) {
      listener(sessionId);
    }
  }
}
