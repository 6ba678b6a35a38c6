import { Injectable } from '@nestjs/common';

import { Clock, redactClassified } from '@parley/core';
import { TenantTransactions } from '@parley/database';

import { SubscribableWebhookEvent, WebhookEvent } from './webhook-events';

export interface EnqueueOptions {
  /**
   * Top-level payload keys kept as given instead of passing through the classification
   * redaction, for values the caller built from ids alone whose key happens to share a name
   * with a confidential field (an alert's `subject: {type, id}`). Each must be a flat object
   * of short strings.
   */
  keep?: readonly string[];
}

/** Longest string a kept value may hold: ids and type names, not text. */
const KEPT_VALUE_MAX_LENGTH = 200;

/**
 * Queues webhook deliveries. Enqueueing is one insert in the caller's tenant transaction (or,
 * outside one, in a transaction of its own), so a delivery exists exactly when the change that
 * caused it commits; the worker sends it later, and the caller never waits for a receiver.
 */
@Injectable()
export class WebhookDispatcher {
  constructor(
    private readonly transactions: TenantTransactions,
    private readonly clock: Clock,
  ) {}

  /**
   * Queues `event` for every enabled endpoint of the organization subscribed to it and returns
   * the new delivery ids (none when no endpoint wants it). Confidential values are removed from
   * the payload before it is stored.
   */
  async enqueue(
    organizationId: string,
    event: SubscribableWebhookEvent,
    payload: Record<string, unknown>,
    options: EnqueueOptions = {},
  ): Promise<string[]> {
    const stored = JSON.stringify(cleanPayload(payload, options.keep ?? []));
    const now = this.clock.now();

    return this.transactions.run(organizationId, async (manager) => {
      const rows: { id: string }[] = await manager.query(
        `insert into webhook_deliveries
           (organization_id, endpoint_id, event, payload, status, attempts, next_attempt_at, created_at)
         select organization_id, id, $2, $3::jsonb, 'pending', 0, $4, $4
           from webhook_endpoints
          where organization_id = $1 and enabled and $2 = any (events)
         returning id`,
        [organizationId, event, stored, now],
      );

      return rows.map((row) => row.id);
    });
  }

  /** Queues one delivery to one endpoint, subscribed or not (the ping). */
  async enqueueTo(
    organizationId: string,
    endpointId: string,
    event: WebhookEvent,
    payload: Record<string, unknown>,
  ): Promise<string> {
    const stored = JSON.stringify(cleanPayload(payload, []));
    const now = this.clock.now();

    return this.transactions.run(organizationId, async (manager) => {
      const rows: { id: string }[] = await manager.query(
        `insert into webhook_deliveries
           (organization_id, endpoint_id, event, payload, status, attempts, next_attempt_at, created_at)
         values ($1, $2, $3, $4::jsonb, 'pending', 0, $5, $5)
         returning id`,
        [organizationId, endpointId, event, stored, now],
      );

      return rows[0].id;
    });
  }
}

function cleanPayload(
  payload: Record<string, unknown>,
  keep: readonly string[],
): Record<string, unknown> {
  const kept: Record<string, unknown> = {};
  const rest: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(payload)) {
    if (keep.includes(key)) {
      kept[key] = flatIds(key, value);
    } else {
      rest[key] = value;
    }
  }

  return { ...redactClassified(rest), ...kept };
}

function flatIds(key: string, value: unknown): unknown {
  if (value === null || value === undefined) {
    return null;
  }
  const flat =
    typeof value === 'object' &&
    !Array.isArray(value) &&
    Object.values(value).every(
      (item) => typeof item === 'string' && item.length <= KEPT_VALUE_MAX_LENGTH,
    );
  if (!flat) {
    throw new Error(
      `webhook payload field ${key} is kept as given, so it must hold short ids only`,
    );
  }

  return value;
}
