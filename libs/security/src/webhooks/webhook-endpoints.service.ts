import { randomUUID } from 'node:crypto';

import { Inject, Injectable } from '@nestjs/common';

import { AuditService } from '@parley/audit';
import { APP_CONFIG, AppConfig, Clock, NotFoundProblem, RequestContext } from '@parley/core';
import { FieldCipher } from '@parley/crypto';
import { TenantTransactions } from '@parley/database';

import { WebhookAddressError, assertPublicHost, parseWebhookUrl } from './webhook-address';
import { WebhookDeliveryStatus } from './webhook-delivery.entity';
import { WebhookDispatcher } from './webhook-dispatcher';
import { newWebhookSecret } from './webhook-signature';
import {
  CreateWebhookDto,
  IssuedWebhookEndpointView,
  QueuedDeliveryView,
  UpdateWebhookDto,
  WebhookDeliveryView,
  WebhookEndpointView,
} from './webhooks.dto';
import { EmptyWebhookUpdateProblem, WebhooksProblem } from './webhooks.errors';

const TABLE = 'webhook_endpoints';

interface EndpointRow {
  id: string;
  organization_id: string;
  url: string;
  events: string[];
  enabled: boolean;
  created_at: Date;
  updated_at: Date;
  secret_rotated_at: Date | null;
  previous_secret_expires_at: Date | null;
}

interface DeliveryRow {
  id: string;
  endpoint_id: string;
  event: string;
  status: WebhookDeliveryStatus;
  attempts: number;
  next_attempt_at: Date | null;
  last_attempt_at: Date | null;
  last_status_code: number | null;
  last_error: string | null;
  created_at: Date;
  delivered_at: Date | null;
}

const SELECT_ENDPOINTS = `
  select id, organization_id, url, events, enabled, created_at, updated_at, secret_rotated_at,
         previous_secret_expires_at
    from webhook_endpoints`;

const DEFAULT_DELIVERY_LIMIT = 50;

/**
 * Admins' management of the organization's webhook endpoints: create (the secret is shown
 * once), read, change, delete, rotate the secret with an overlap, list deliveries and ping.
 * Every method runs in the request's tenant transaction; another organization's endpoint is
 * invisible to it (row-level security) and answers 404.
 */
@Injectable()
export class WebhookEndpointsService {
  constructor(
    @Inject(APP_CONFIG) private readonly config: AppConfig,
    private readonly transactions: TenantTransactions,
    private readonly context: RequestContext,
    private readonly cipher: FieldCipher,
    private readonly audit: AuditService,
    private readonly dispatcher: WebhookDispatcher,
    private readonly clock: Clock,
  ) {}

  async create(input: CreateWebhookDto): Promise<IssuedWebhookEndpointView> {
    const url = await this.checkedUrl(input.url);
    const organizationId = this.context.organizationIdOrThrow();
    const actor = this.context.actor;
    const id = randomUUID();
    const secret = newWebhookSecret();
    const now = this.clock.now();
    const sealed = await this.sealSecret(organizationId, id, 'secret', secret);
    await this.transactions.manager.query(
      `insert into webhook_endpoints
         (id, organization_id, url, events, enabled, secret, created_by, created_at, updated_at)
       values ($1, $2, $3, $4, true, $5, $6, $7, $7)`,
      [
        id,
        organizationId,
        url,
        input.events,
        sealed,
        actor?.type === 'user' ? actor.id : null,
        now,
      ],
    );
    await this.audit.record(
      organizationId,
      'webhook.created',
      { events: input.events },
      { type: 'webhook', id },
    );

    return { ...toView(await this.findRowOrThrow(id), now.getTime()), secret };
  }

  async list(): Promise<WebhookEndpointView[]> {
    const rows: EndpointRow[] = await this.transactions.manager.query(
      `${SELECT_ENDPOINTS} order by created_at desc, id desc`,
    );
    const now = this.clock.nowMs();

    return rows.map((row) => toView(row, now));
  }

  async findOrThrow(id: string): Promise<WebhookEndpointView> {
    return toView(await this.findRowOrThrow(id), this.clock.nowMs());
  }

  async update(id: string, input: UpdateWebhookDto): Promise<WebhookEndpointView> {
    if (input.url === undefined && input.events === undefined && input.enabled === undefined) {
      throw new EmptyWebhookUpdateProblem();
    }
    const row = await this.lockRowOrThrow(id);
    const url = input.url === undefined ? row.url : await this.checkedUrl(input.url);
    const events = input.events ?? row.events;
    const enabled = input.enabled ?? row.enabled;
    const changes = [
      url !== row.url ? 'url' : undefined,
      !sameEvents(events, row.events) ? 'events' : undefined,
      enabled !== row.enabled ? 'enabled' : undefined,
    ].filter((change): change is string => change !== undefined);
    if (changes.length === 0) {
      return toView(row, this.clock.nowMs());
    }
    const now = this.clock.now();
    await this.transactions.manager.query(
      `update webhook_endpoints set url = $2, events = $3, enabled = $4, updated_at = $5
        where id = $1`,
      [row.id, url, events, enabled, now],
    );
    if (!enabled && row.enabled) {
      // Nothing is sent to a disabled endpoint, then or later: its queue is closed, not paused.
      await this.transactions.manager.query(
        `update webhook_deliveries
            set status = 'failed', next_attempt_at = null, last_error = 'endpoint disabled'
          where endpoint_id = $1 and status = 'pending'`,
        [row.id],
      );
    }
    await this.audit.record(
      row.organization_id,
      'webhook.updated',
      { changes, enabled },
      { type: 'webhook', id: row.id },
    );

    return toView(await this.findRowOrThrow(row.id), now.getTime());
  }

  /** Deletes the endpoint and its delivery history; nothing more is sent to it. */
  async remove(id: string): Promise<void> {
    const row = await this.lockRowOrThrow(id);
    await this.transactions.manager.query(`delete from webhook_endpoints where id = $1`, [row.id]);
    await this.audit.record(
      row.organization_id,
      'webhook.deleted',
      {},
      {
        type: 'webhook',
        id: row.id,
      },
    );
  }

  /**
   * A new secret, shown once. The one it replaces keeps signing every delivery beside it for
   * WEBHOOK_SECRET_OVERLAP_SECONDS, so a receiver can switch without missing one; rotating
   * again within the overlap drops the oldest at once, so at most two ever sign.
   */
  async rotateSecret(id: string): Promise<IssuedWebhookEndpointView> {
    const row = await this.lockRowOrThrow(id);
    const now = this.clock.now();
    const overlapMs = this.config.webhookSecretOverlapSeconds * 1000;
    const previousExpiresAt = overlapMs > 0 ? new Date(now.getTime() + overlapMs) : null;
    // A sealed value is bound to its column, so the current secret is opened and sealed anew
    // as the previous one rather than copied across.
    const previous =
      previousExpiresAt === null
        ? null
        : await this.sealSecret(
            row.organization_id,
            row.id,
            'previous_secret',
            await this.openSecret(row),
          );
    const secret = newWebhookSecret();
    const sealed = await this.sealSecret(row.organization_id, row.id, 'secret', secret);
    await this.transactions.manager.query(
      `update webhook_endpoints
          set secret = $2, previous_secret = $3, previous_secret_expires_at = $4,
              secret_rotated_at = $5, updated_at = $5
        where id = $1`,
      [row.id, sealed, previous, previousExpiresAt, now],
    );
    await this.audit.record(
      row.organization_id,
      'webhook.secret_rotated',
      { previousSecretValidUntil: previousExpiresAt ? previousExpiresAt.toISOString() : null },
      { type: 'webhook', id: row.id },
    );

    return { ...toView(await this.findRowOrThrow(row.id), now.getTime()), secret };
  }

  /** The endpoint's most recent deliveries, newest first. */
  async deliveries(id: string, limit = DEFAULT_DELIVERY_LIMIT): Promise<WebhookDeliveryView[]> {
    const row = await this.findRowOrThrow(id);
    const rows: DeliveryRow[] = await this.transactions.manager.query(
      `select id, endpoint_id, event, status, attempts, next_attempt_at, last_attempt_at,
              last_status_code, last_error, created_at, delivered_at
         from webhook_deliveries
        where organization_id = $1 and endpoint_id = $2
        order by created_at desc, id desc
        limit $3`,
      [row.organization_id, row.id, limit],
    );

    return rows.map(toDeliveryView);
  }

  /** Queues a `webhook.ping` to this endpoint alone, whatever it subscribes to. */
  async ping(id: string): Promise<QueuedDeliveryView> {
    const row = await this.findRowOrThrow(id);
    const deliveryId = await this.dispatcher.enqueueTo(
      row.organization_id,
      row.id,
      'webhook.ping',
      {
        endpointId: row.id,
        message: 'A test delivery asked for by an admin.',
      },
    );

    return { deliveryId, status: 'pending' };
  }

  /**
   * The URL, normalized, once it passes the address check. The check's DNS lookup runs inside
   * the request's transaction, which so holds a database connection for up to 2 seconds while
   * a slow name resolves.
   */
  private async checkedUrl(raw: string): Promise<string> {
    try {
      const url = parseWebhookUrl(raw, { production: this.config.production });
      if (!this.config.webhookAllowPrivateAddresses) {
        await assertPublicHost(url);
      }

      return url.href;
    } catch (error) {
      if (error instanceof WebhookAddressError) {
        throw WebhooksProblem.fromAddressError(error);
      }
      throw error;
    }
  }

  private sealSecret(
    organizationId: string,
    rowId: string,
    column: 'secret' | 'previous_secret',
    clear: string,
  ): Promise<string> {
    return this.cipher.seal(
      this.transactions.manager,
      { purpose: 'organization' },
      { organizationId, table: TABLE, column, rowId },
      clear,
    );
  }

  private async openSecret(row: EndpointRow): Promise<string> {
    const rows: { secret: string }[] = await this.transactions.manager.query(
      `select secret from webhook_endpoints where id = $1`,
      [row.id],
    );

    return this.cipher.open(
      this.transactions.manager,
      { organizationId: row.organization_id, table: TABLE, column: 'secret', rowId: row.id },
      rows[0].secret,
    );
  }

  private async findRowOrThrow(id: string): Promise<EndpointRow> {
    const rows: EndpointRow[] = await this.transactions.manager.query(
      `${SELECT_ENDPOINTS} where id = $1`,
      [id],
    );
    if (!rows[0]) {
      throw new NotFoundProblem('webhook endpoint');
    }

    return rows[0];
  }

  private async lockRowOrThrow(id: string): Promise<EndpointRow> {
    const rows: EndpointRow[] = await this.transactions.manager.query(
      `${SELECT_ENDPOINTS} where id = $1 for update`,
      [id],
    );
    if (!rows[0]) {
      throw new NotFoundProblem('webhook endpoint');
    }

    return rows[0];
  }
}

function sameEvents(a: string[], b: string[]): boolean {
  return a.length === b.length && [...a].sort().join(',') === [...b].sort().join(',');
}

function iso(value: Date | null): string | null {
  return value ? new Date(value).toISOString() : null;
}

function toView(row: EndpointRow, now: number): WebhookEndpointView {
  const previous =
    row.previous_secret_expires_at && new Date(row.previous_secret_expires_at).getTime() > now
      ? row.previous_secret_expires_at
      : null;

  return {
    id: row.id,
    url: row.url,
    events: row.events,
    enabled: row.enabled,
    createdAt: new Date(row.created_at).toISOString(),
    updatedAt: new Date(row.updated_at).toISOString(),
    secretRotatedAt: iso(row.secret_rotated_at),
    previousSecretValidUntil: iso(previous),
  };
}

function toDeliveryView(row: DeliveryRow): WebhookDeliveryView {
  return {
    id: row.id,
    endpointId: row.endpoint_id,
    event: row.event,
    status: row.status,
    attempts: row.attempts,
    nextAttemptAt: iso(row.next_attempt_at),
    lastAttemptAt: iso(row.last_attempt_at),
    lastStatusCode: row.last_status_code,
    lastError: row.last_error,
    createdAt: new Date(row.created_at).toISOString(),
    deliveredAt: iso(row.delivered_at),
  };
}
