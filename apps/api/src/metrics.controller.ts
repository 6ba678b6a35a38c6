import { timingSafeEqual } from 'node:crypto';

import { Controller, Get, Headers, Inject, Res } from '@nestjs/common';
import { ApiExcludeController } from '@nestjs/swagger';
import { SkipThrottle } from '@nestjs/throttler';

import { Policy } from '@parley/authz';
import { APP_CONFIG, AppConfig, Metrics, UnauthenticatedProblem } from '@parley/core';

interface ReplyLike {
  header(name: string, value: string): ReplyLike;
  send(body: unknown): void;
}

/** Prometheus scrape endpoint; with METRICS_TOKEN set it wants `Authorization: Bearer <token>`. */
@ApiExcludeController()
@Controller('metrics')
@SkipThrottle({ api: true, credentials: true })
export class MetricsController {
  constructor(
    @Inject(APP_CONFIG) private readonly config: AppConfig,
    private readonly metrics: Metrics,
  ) {}

  @Get()
  @Policy.public()
  async scrape(
    @Headers('authorization') authorization: string | undefined,
    @Res() reply: ReplyLike,
  ): Promise<void> {
    const expected = this.config.metricsToken;
    if (expected) {
      const given = Buffer.from(authorization ?? '');
      const wanted = Buffer.from(`Bearer ${expected}`);
      if (given.length !== wanted.length || !timingSafeEqual(given, wanted)) {
        throw new UnauthenticatedProblem(
          'metrics_token_required',
          'A valid metrics scrape token is required.',
        );
      }
    }
    reply
      .header('content-type', this.metrics.registry.contentType)
      .send(await this.metrics.registry.metrics());
  }
}
