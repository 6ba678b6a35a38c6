import { Controller, Get, Header, HttpCode, Post, Query, Res } from '@nestjs/common';
import {
  ApiBearerAuth,
  ApiCreatedResponse,
  ApiOkResponse,
  ApiProduces,
  ApiTags,
} from '@nestjs/swagger';
import { SkipThrottle } from '@nestjs/throttler';
import type { FastifyReply } from 'fastify';

import { Policy } from '@parley/authz';
import { Metrics, RequestContext } from '@parley/core';
import { TenantTransactions } from '@parley/database';

import { AuditChain, ChainVerification, toEntry } from './audit-chain';
import { AuditChainer } from './audit-chainer';
import { AuditCheckpoints, Checkpoint, CheckpointKeyView } from './audit-checkpoints';
import { AuditExportQueryDto, AuditVerifyView, CheckpointListView } from './audit-chain.dto';

/** The most entries one export holds; ask again from the next sequence number for more. */
export const EXPORT_LIMIT = 50_000;

export const EXPORT_FORMAT = 'parley-audit-export/v1';

@ApiTags('audit')
@ApiBearerAuth()
@Controller('audit')
export class AuditChainController {
  constructor(
    private readonly chain: AuditChain,
    private readonly checkpoints: AuditCheckpoints,
    private readonly transactions: TenantTransactions,
    private readonly context: RequestContext,
    private readonly metrics: Metrics,
    private readonly chainer: AuditChainer,
  ) {}

  /**
   * Walks the organization's whole chain and checks every stored checkpoint against it:
   * `{valid, entries, head}`, and where invalid, the first broken entry and why.
   */
  @Get('verify')
  @Policy.can('read', 'AuditEvent')
  @ApiOkResponse({ type: AuditVerifyView })
  async verify(): Promise<AuditVerifyView> {
    const organizationId = this.context.organizationIdOrThrow();
    const started = process.hrtime.bigint();
    const chain: ChainVerification = await this.chain.verify(organizationId);
    this.metrics.auditVerifySeconds.observe(Number(process.hrtime.bigint() - started) / 1e9);
    const checked = chain.valid ? await this.checkpoints.check(organizationId) : { checked: 0 };
    const view: AuditVerifyView = { ...chain, checkpoints: { checked: checked.checked } };
    if (checked.failed) {
      view.valid = false;
      view.broken = {
        seq: checked.failed.checkpoint.seq,
        reason: 'rewritten',
        detail: `checkpoint signed at ${checked.failed.checkpoint.signedAt}: ${checked.failed.reason}`,
      };
    }

    if (view.broken) {
      this.chain.reportBroken(organizationId, view.broken);
    }

    return view;
  }

  @Get('checkpoints')
  @Policy.can('read', 'AuditEvent')
  @ApiOkResponse({ type: CheckpointListView })
  async list(): Promise<CheckpointListView> {
    return { items: await this.checkpoints.list(this.context.organizationIdOrThrow()) };
  }

  /** Signs the chain's head now, on demand (the worker also does it on a schedule). */
  @Post('checkpoints')
  @HttpCode(201)
  @Policy.can('manage', 'AuditEvent')
  @ApiCreatedResponse({ description: 'the signed checkpoint' })
  async create(): Promise<Checkpoint> {
    return this.checkpoints.create(this.context.organizationIdOrThrow());
  }

  /**
   * NDJSON an auditor verifies with the checkpoint public key alone: a header line, one line per
   * entry in order (its number, both hashes and the canonical text that was hashed), and a
   * checkpoint signed now over the last entry.
   */
  @Get('export')
  @Policy.can('read', 'AuditEvent')
  @ApiProduces('application/x-ndjson')
  @ApiOkResponse({ description: 'parley-audit-export/v1 lines' })
  async export(
    @Query() query: AuditExportQueryDto,
    @Res({ passthrough: true }) reply: FastifyReply,
  ): Promise<string> {
    const organizationId = this.context.organizationIdOrThrow();
    const fromSeq = query.fromSeq ?? 1;
    const toSeq = Math.min(query.toSeq ?? Number.MAX_SAFE_INTEGER, fromSeq + EXPORT_LIMIT - 1);
    const lines: string[] = [];
    let last: { seq: number; hash: string } | undefined;
    await this.transactions.run(organizationId, async (manager) => {
      await this.chainer.linkWith(manager, organizationId);
      let after = fromSeq - 1;
      while (after < toSeq) {
        const rows = await this.chain.page(
          manager,
          organizationId,
          after,
          Math.min(5_000, toSeq - after),
        );
        for (const row of rows) {
          const entry = toEntry(row);
          lines.push(
            JSON.stringify({
              type: 'entry',
              seq: entry.seq,
              prevHash: entry.prevHash.toString('hex'),
              hash: entry.hash.toString('hex'),
              entry: entry.canonical,
            }),
          );
          last = { seq: entry.seq, hash: entry.hash.toString('hex') };
        }
        if (rows.length === 0) {
          break;
        }
        after = Number(rows[rows.length - 1].seq);
      }
    });
    const header = JSON.stringify({
      type: 'header',
      format: EXPORT_FORMAT,
      organizationId,
      fromSeq,
      toSeq: last?.seq ?? null,
      entries: lines.length,
      exportedAt: new Date().toISOString(),
    });
    const trailer = last
      ? [
          JSON.stringify({
            type: 'checkpoint',
            ...(await this.checkpoints.sign(organizationId, last.seq, last.hash)),
          }),
        ]
      : [];
    reply.header('content-type', 'application/x-ndjson; charset=utf-8');
    reply.header('content-disposition', `attachment; filename="audit-${fromSeq}.ndjson"`);

    return [header, ...lines, ...trailer].join('\n') + '\n';
  }
}

/** The public keys that verify audit checkpoints, for auditors. */
@ApiTags('audit')
@SkipThrottle({ api: true, credentials: true })
@Controller('.well-known')
export class AuditKeysController {
  constructor(private readonly checkpoints: AuditCheckpoints) {}

  @Get('parley-audit-keys.json')
  @Policy.public()
  @Header('cache-control', 'public, max-age=300')
  @ApiOkResponse({ description: 'Ed25519 public keys of audit checkpoints' })
  async keys(): Promise<{ keys: CheckpointKeyView[] }> {
    return { keys: await this.checkpoints.publicKeys() };
  }
}
