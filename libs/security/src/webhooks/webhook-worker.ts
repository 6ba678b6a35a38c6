import {
  Inject,
  Injectable,
  Logger,
  OnApplicationBootstrap,
  OnModuleDestroy,
} from '@nestjs/common';
import { DataSource, EntityManager } from 'typeorm';

import { APP_CONFIG, AppConfig, Clock, Metrics } from '@parley/core';
import { FieldCipher } from '@parley/crypto';
import { TenantTransactions } from '@parley/database';

import { SendResult, WEBHOOK_TIMEOUT_MS, WebhookSender } from './webhook-sender';
import { backoffSeconds, signatureHeader } from './webhook-signature';

const TABLE = 'webhook_endpoints';
const POLL_INTERVAL_MS = 1000;
/** Deliveries one pass claims per organization; the rest wait for the next second. */
const BATCH_SIZE = 20;
/**
 * A claimed delivery is not due again before this, so no other instance takes it while this
 * one sends; an instance that dies mid-send leaves it to be retried once the lease runs out.
 */
const LEASE_MS = WEBHOOK_TIMEOUT_MS * 6;

interface ClaimedRow {
  id: string;
  endpoint_id: string;
  event: string;
  payload: Record<string, unknown>;
  attempts: number;
  created_at: Date;
}

interface EndpointRow {
  id: string;
  url: string;
  enabled: boolean;
  secret: string;
  previous_secret: string | null;
  previous_secret_expires_at: Date | null;
}

interface Job {
  delivery: ClaimedRow;
  url: string;
  /** The secrets that sign: the current one, then the previous one during an overlap. */
  secrets: string[];
}

type Outcome = 'delivered' | 'retrying' | 'failed';

/**
 * Sends queued webhook deliveries: one loop per server instance, every second. Each pass asks
 * which organizations have a delivery due, then in each one's tenant transaction claims a
 * batch with FOR UPDATE SKIP LOCKED and leases it (attempts + 1, not due again for a while),
 * commits, sends every claimed delivery at once outside any transaction, and records each
 * outcome only if the delivery is still at the attempt it claimed. Two instances therefore
 * never send one delivery at the same time, and no database connection waits on a receiver.
 */
@Injectable()
export class WebhookWorker implements OnApplicationBootstrap, OnModuleDestroy {
  private readonly logger = new Logger(WebhookWorker.name);
  private timer: NodeJS.Timeout | undefined;
  private stopped = false;
  /** Passes run one after the other, whether the loop or a caller of runDue starts them. */
  private chain: Promise<void> = Promise.resolve();

  constructor(
    private readonly dataSource: DataSource,
    private readonly transactions: TenantTransactions,
    private readonly cipher: FieldCipher,
    private readonly sender: WebhookSender,
    private readonly clock: Clock,
    private readonly metrics: Metrics,
    @Inject(APP_CONFIG) private readonly config: AppConfig,
  ) {}

  onApplicationBootstrap(): void {
    if (this.config.webhookAllowPrivateAddresses) {
      this.logger.warn(
        'WEBHOOK_ALLOW_PRIVATE_ADDRESSES is on: webhooks may reach loopback, private and metadata addresses',
      );
    }
    this.schedule();
  }

  /** Before the database closes: the pass in flight finishes and records its outcomes. */
  async onModuleDestroy(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.timer);
    await this.chain;
  }

  /**
   * Runs one pass over every organization with a delivery due now, after any pass already
   * running, and resolves when every delivery it claimed has its outcome recorded.
   */
  runDue(): Promise<void> {
    const pass = this.chain.then(() => this.pass());
    this.chain = pass.catch((error: unknown) => {
      this.logger.error({ err: error }, 'webhook delivery pass failed');
    });

    return pass;
  }

  private schedule(): void {
    if (this.stopped) {
      return;
    }
    this.timer = setTimeout(() => {
      void this.runDue()
        .catch(() => undefined)
        .finally(() => this.schedule());
    }, POLL_INTERVAL_MS);
    this.timer.unref();
  }

  private async pass(): Promise<void> {
    if (this.stopped) {
      return;
    }
    const rows: { id: string }[] = await this.dataSource.query(
      'select parley_organizations_with_due_webhooks($1) as id',
      [this.clock.now()],
    );
    for (const { id } of rows) {
      await this.deliverFor(id).catch((error: unknown) => {
        this.logger.error({ err: error, organizationId: id }, 'webhook deliveries not sent');
      });
    }
  }

  private async deliverFor(organizationId: string): Promise<void> {
    const startedAt = this.clock.now();
    const jobs = await this.transactions.run(organizationId, (manager) =>
      this.claim(manager, organizationId, startedAt),
    );
    if (jobs.length === 0) {
      return;
    }
    const results = await Promise.all(jobs.map((job) => this.attempt(organizationId, job)));
    await this.transactions.run(organizationId, async (manager) => {
      for (const [index, job] of jobs.entries()) {
        await this.record(manager, organizationId, job, results[index], startedAt);
      }
    });
  }

  private async claim(manager: EntityManager, organizationId: string, now: Date): Promise<Job[]> {
    // An UPDATE answers [rows, count] through TypeORM's query(). The ids are locked once, in
    // the array, before any row changes; rows another instance holds are skipped, not awaited.
    const [claimed]: [ClaimedRow[], number] = await manager.query(
      `update webhook_deliveries
          set attempts = attempts + 1, last_attempt_at = $2, next_attempt_at = $4
        where id = any (array(
                select id from webhook_deliveries
                 where organization_id = $1 and status = 'pending' and next_attempt_at <= $2
                 order by next_attempt_at, id
                 limit $3
                 for update skip locked))
       returning id, endpoint_id, event, payload, attempts, created_at`,
      [organizationId, now, BATCH_SIZE, new Date(now.getTime() + LEASE_MS)],
    );
    if (claimed.length === 0) {
      return [];
    }
    const endpoints: EndpointRow[] = await manager.query(
      `select id, url, enabled, secret, previous_secret, previous_secret_expires_at
         from webhook_endpoints where id = any ($1)`,
      [[...new Set(claimed.map((row) => row.endpoint_id))]],
    );
    const byId = new Map(endpoints.map((endpoint) => [endpoint.id, endpoint]));
    const disabled = claimed.filter((row) => !byId.get(row.endpoint_id)?.enabled);
    if (disabled.length > 0) {
      await manager.query(
        `update webhook_deliveries
            set status = 'failed', next_attempt_at = null, last_error = 'endpoint disabled'
          where id = any ($1)`,
        [disabled.map((row) => row.id)],
      );
    }
    const secrets = new Map<string, string[]>();
    for (const endpoint of endpoints.filter((candidate) => candidate.enabled)) {
      try {
        secrets.set(endpoint.id, await this.signingSecrets(manager, organizationId, endpoint, now));
      } catch (error) {
        // A secret that no longer opens (its key destroyed or retired) will not open on a
        // retry either: its deliveries fail now instead of coming back every second.
        this.logger.error(
          { err: error, organizationId, endpointId: endpoint.id },
          'webhook signing secret does not open; its deliveries fail',
        );
      }
    }
    const unsigned = claimed.filter(
      (row) => byId.get(row.endpoint_id)?.enabled && !secrets.has(row.endpoint_id),
    );
    if (unsigned.length > 0) {
      await manager.query(
        `update webhook_deliveries
            set status = 'failed', next_attempt_at = null, last_error = 'signing secret unreadable'
          where id = any ($1)`,
        [unsigned.map((row) => row.id)],
      );
    }

    return claimed
      .filter((row) => secrets.has(row.endpoint_id))
      .map((row) => ({
        delivery: row,
        url: byId.get(row.endpoint_id)!.url,
        secrets: secrets.get(row.endpoint_id)!,
      }));
  }

  private async signingSecrets(
    manager: EntityManager,
    organizationId: string,
    endpoint: EndpointRow,
    now: Date,
  ): Promise<string[]> {
    const open = (column: 'secret' | 'previous_secret', sealed: string) =>
      this.cipher.open(
        manager,
        { organizationId, table: TABLE, column, rowId: endpoint.id },
        sealed,
      );
    const secrets = [await open('secret', endpoint.secret)];
    const previousLasts =
      endpoint.previous_secret !== null &&
      endpoint.previous_secret_expires_at !== null &&
      new Date(endpoint.previous_secret_expires_at).getTime() > now.getTime();
    if (previousLasts) {
      secrets.push(await open('previous_secret', endpoint.previous_secret!));
    }

    return secrets;
  }

  private attempt(organizationId: string, job: Job): Promise<SendResult> {
    const { delivery } = job;
    const body = JSON.stringify({
      id: delivery.id,
      event: delivery.event,
      createdAt: new Date(delivery.created_at).toISOString(),
      organizationId,
      data: delivery.payload,
    });
    const timestamp = this.clock.nowSeconds();

    return this.sender.send({
      url: job.url,
      body,
      headers: {
        'parley-delivery-id': delivery.id,
        'parley-event': delivery.event,
        'parley-delivery-attempt': String(delivery.attempts),
        'parley-signature': signatureHeader(job.secrets, delivery.id, timestamp, body),
      },
    });
  }

  private async record(
    manager: EntityManager,
    organizationId: string,
    job: Job,
    result: SendResult,
    attemptedAt: Date,
  ): Promise<void> {
    const { delivery } = job;
    const outcome: Outcome = result.ok
      ? 'delivered'
      : delivery.attempts >= this.config.webhookMaxAttempts
        ? 'failed'
        : 'retrying';
    const nextAttemptAt =
      outcome === 'retrying'
        ? new Date(attemptedAt.getTime() + backoffSeconds(delivery.attempts) * 1000)
        : null;
    // Only the attempt this pass claimed is recorded: a delivery deleted meanwhile, or taken
    // again after its lease ran out, keeps what its newer attempt writes.
    const [, updated]: [unknown[], number] = await manager.query(
      `update webhook_deliveries
          set status = $3, next_attempt_at = $4, last_status_code = $5, last_error = $6,
              delivered_at = $7
        where id = $1 and attempts = $2 and status = 'pending'`,
      [
        delivery.id,
        delivery.attempts,
        outcome === 'retrying' ? 'pending' : outcome,
        nextAttemptAt,
        result.statusCode !== null && result.statusCode >= 100 && result.statusCode <= 599
          ? result.statusCode
          : null,
        result.ok ? null : result.error,
        result.ok ? this.clock.now() : null,
      ],
    );
    if (updated === 0) {
      this.logger.debug(
        { deliveryId: delivery.id },
        'webhook delivery changed meanwhile; outcome dropped',
      );

      return;
    }
    this.metrics.webhookDeliveries.inc({ outcome });
    const entry = {
      organizationId,
      deliveryId: delivery.id,
      endpointId: delivery.endpoint_id,
      event: delivery.event,
      attempt: delivery.attempts,
      outcome,
      statusCode: result.statusCode,
      error: result.ok ? undefined : result.error,
      nextAttemptAt: nextAttemptAt?.toISOString(),
    };
    if (outcome === 'failed') {
      this.logger.warn(entry, 'webhook delivery failed for good');
    } else {
      this.logger.log(entry, `webhook delivery ${outcome}`);
    }
  }
}
