import { Injectable, OnModuleInit } from '@nestjs/common';
import { HttpAdapterHost } from '@nestjs/core';

import { Actor, Metrics, RequestContext } from '@parley/core';

import { Detection } from './detection.service';
import { answerSignals, rateLimitName } from './signals';

interface HookRequest {
  method: string;
  ip: string;
  routeOptions?: { url?: string };
  actor?: Actor;
}

interface HookReply {
  statusCode: number;
  getHeaders(): Record<string, unknown>;
}

interface HookHost {
  addHook(
    name: 'onSend',
    hook: (
      request: HookRequest,
      reply: HookReply,
      payload: unknown,
      done: (error: null, payload: unknown) => void,
    ) => void,
  ): void;
}

/**
 * Feeds detection from every HTTP answer: 404s on routes with an id, 429s, deletions, export
 * reads and API-key addresses. The hook runs as the answer is sent (the request's context is
 * still there to name the organization) and only hands facts over; counting happens after.
 * Known shortcoming: socket events refused by the per-socket limit never pass here, so they
 * count towards neither rate_limit_escalation nor parley_rate_limit_blocks_total.
 */
@Injectable()
export class HttpSignals implements OnModuleInit {
  constructor(
    private readonly adapterHost: HttpAdapterHost,
    private readonly detection: Detection,
    private readonly context: RequestContext,
    private readonly metrics: Metrics,
  ) {}

  onModuleInit(): void {
    const instance = this.adapterHost.httpAdapter?.getInstance?.() as HookHost | undefined;
    if (typeof instance?.addHook !== 'function') {
      return;
    }
    instance.addHook('onSend', (request, reply, payload, done) => {
      try {
        this.onAnswer(request, reply, payload);
      } finally {
        done(null, payload);
      }
    });
  }

  private onAnswer(request: HookRequest, reply: HookReply, payload: unknown): void {
    const status = reply.statusCode;
    if (status === 429) {
      this.metrics.rateLimitBlocks.inc({
        limit: rateLimitName(Object.keys(reply.getHeaders()), payload),
      });
    }
    const signals = answerSignals({
      method: request.method,
      route: request.routeOptions?.url,
      status,
      actor: request.actor,
      organizationId: this.context.organizationId,
      ip: request.ip,
    });
    for (const { observation, novelty } of signals) {
      this.detection.observe(observation, novelty);
    }
  }
}
