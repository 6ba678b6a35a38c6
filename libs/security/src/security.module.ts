import { Global, Module } from '@nestjs/common';
import { ThrottlerGuard, ThrottlerModule } from '@nestjs/throttler';

import { APP_CONFIG, AppConfig } from '@parley/core';

import { LoginThrottle } from './login-throttle';
import { isCredentialRoute } from './rate-limit';
import { MemoryThrottlerStorage } from './memory-throttler.storage';
import { RedisThrottlerStorage } from './redis-throttler.storage';

const MINUTE_MS = 60_000;

/**
 * Per-address rate limits for HTTP: one budget for the whole API and a tighter one for routes
 * that take credentials. Socket events are limited separately (the throttler would give every
 * socket one shared bucket). With REDIS_URL the counters are shared by every instance.
 */
@Global()
@Module({
  imports: [
    ThrottlerModule.forRootAsync({
      inject: [APP_CONFIG],
      useFactory: (config: AppConfig) => ({
        throttlers: [
          { name: 'api', ttl: MINUTE_MS, limit: config.rateLimitPerMinute },
          {
            name: 'credentials',
            ttl: MINUTE_MS,
            limit: config.credentialRateLimitPerMinute,
            skipIf: (context) => !isCredentialRoute(context),
          },
        ],
        skipIf: (context) => context.getType() !== 'http',
        storage: config.redisUrl
          ? new RedisThrottlerStorage(config.redisUrl)
          : new MemoryThrottlerStorage(),
        errorMessage: 'Too many requests from this address; slow down.',
      }),
    }),
  ],
  providers: [ThrottlerGuard, LoginThrottle],
  exports: [ThrottlerGuard, LoginThrottle],
})
export class SecurityModule {}
