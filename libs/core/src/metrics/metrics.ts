import { Injectable } from '@nestjs/common';
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';

/** Prometheus metrics of one server process, on its own registry. */
@Injectable()
export class Metrics {
  readonly registry = new Registry();

  readonly httpRequests = new Counter({
    name: 'parley_http_requests_total',
    help: 'HTTP requests by route template, method and status',
    labelNames: ['route', 'method', 'status'],
    registers: [this.registry],
  });

  readonly httpDuration = new Histogram({
    name: 'parley_http_request_duration_seconds',
    help: 'HTTP request latency by route template and method',
    labelNames: ['route', 'method'],
    buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5],
    registers: [this.registry],
  });

  readonly socketConnections = new Gauge({
    name: 'parley_socket_connections',
    help: 'open Socket.IO connections on /chat',
    registers: [this.registry],
  });

  readonly messages = new Counter({
    name: 'parley_messages_total',
    help: 'messages stored, by author type',
    labelNames: ['author_type'],
    registers: [this.registry],
  });

  readonly authFailures = new Counter({
    name: 'parley_auth_failures_total',
    help: 'refused authentications by reason code',
    labelNames: ['code'],
    registers: [this.registry],
  });

  readonly auditAppendSeconds = new Histogram({
    name: 'parley_audit_append_seconds',
    help: 'time to insert one audit entry written through AuditService (linking into the chain happens after commit)',
    buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25],
    registers: [this.registry],
  });

  readonly auditVerifySeconds = new Histogram({
    name: 'parley_audit_verify_seconds',
    help: "time to verify one organization's audit chain",
    buckets: [0.01, 0.05, 0.1, 0.5, 1, 5, 10, 30],
    registers: [this.registry],
  });

  readonly webhookDeliveries = new Counter({
    name: 'parley_webhook_deliveries_total',
    help: 'webhook delivery attempts by outcome: delivered, retrying (will be tried again) or failed (gave up)',
    labelNames: ['outcome'],
    registers: [this.registry],
  });

  readonly securityAlerts = new Counter({
    name: 'parley_security_alerts_total',
    help: 'security alerts raised by detection rules, by rule and severity',
    labelNames: ['rule', 'severity'],
    registers: [this.registry],
  });

  readonly rateLimitBlocks = new Counter({
    name: 'parley_rate_limit_blocks_total',
    help: 'HTTP requests refused with 429, by the limit that refused them',
    labelNames: ['limit'],
    registers: [this.registry],
  });

  constructor() {
    collectDefaultMetrics({ register: this.registry, prefix: 'parley_process_' });
  }
}
