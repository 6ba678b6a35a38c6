import { createHash } from 'node:crypto';

import { Injectable } from '@nestjs/common';
import { EntityManager } from 'typeorm';

import { TenantTransactions } from '@parley/database';

import { AuditChainer } from './audit-chainer';

/** The hash before an organization's first entry. */
export const GENESIS_HASH = Buffer.alloc(32);

const BATCH = 5_000;

export type ChainBreak =
  /** The entry with this number is missing (deleted, or the chain was cut short). */
  | 'missing'
  /** The entry does not follow the one before it (moved, or a chain spliced in). */
  | 'out_of_order'
  /** The entry's contents do not match its hash (edited). */
  | 'altered'
  /** The chain no longer matches a signed checkpoint (rewritten after it was signed). */
  | 'rewritten';

/** Told of every verification that found the chain broken (detection raises an alert). */
export type ChainBreakListener = (
  organizationId: string,
  broken: NonNullable<ChainVerification['broken']>,
) => void;

export interface ChainHead {
  seq: number;
  hash: string;
}

export interface ChainVerification {
  valid: boolean;
  entries: number;
  head: ChainHead | null;
  broken?: { seq: number; reason: ChainBreak; detail: string };
}

/** One entry as the chain holds it: its number, the links, and the canonical text that is hashed. */
export interface ChainEntry {
  seq: number;
  prevHash: Buffer;
  hash: Buffer;
  canonical: string;
}

interface ChainRow {
  seq: string;
  prev_hash: Buffer;
  hash: Buffer;
  canonical: string;
}

/** SHA-256 of the previous hash followed by the entry's canonical text: the chain's one rule. */
export function chainHash(previous: Buffer, canonical: string): Buffer {
  return createHash('sha256').update(previous).update(canonical, 'utf8').digest();
}

/**
 * Walks entries in order and says where the chain first breaks. Used on the database (verify)
 * and on an export (which starts wherever the export starts).
 */
export class ChainWalker {
  private expectedSeq: number;
  private previous: Buffer;
  entries = 0;
  broken: ChainVerification['broken'];
  last: ChainEntry | undefined;

  constructor(start: { seq: number; previous: Buffer } = { seq: 1, previous: GENESIS_HASH }) {
    this.expectedSeq = start.seq;
    this.previous = start.previous;
  }

  /** Takes the next entry; returns false once the chain is broken. */
  push(entry: ChainEntry): boolean {
    if (this.broken) {
      return false;
    }
    if (entry.seq !== this.expectedSeq) {
      this.broken =
        entry.seq > this.expectedSeq
          ? {
              seq: this.expectedSeq,
              reason: 'missing',
              detail: `entry ${this.expectedSeq} is missing; the next one is ${entry.seq}`,
            }
          : {
              seq: entry.seq,
              reason: 'out_of_order',
              detail: `entry ${entry.seq} appears again after ${this.expectedSeq - 1}`,
            };

      return false;
    }
    if (!entry.prevHash.equals(this.previous)) {
      this.broken = {
        seq: entry.seq,
        reason: 'out_of_order',
        detail: `entry ${entry.seq} does not link to the entry before it`,
      };

      return false;
    }
    if (!chainHash(this.previous, entry.canonical).equals(entry.hash)) {
      this.broken = {
        seq: entry.seq,
        reason: 'altered',
        detail: `entry ${entry.seq} does not match its hash`,
      };

      return false;
    }
    this.previous = entry.hash;
    this.expectedSeq += 1;
    this.entries += 1;
    this.last = entry;

    return true;
  }
}

/**
 * Verification of an organization's chain as stored: every entry in order, recomputing each
 * hash from the canonical form the database renders for the row's current contents, then the
 * chain head that parley_audit_chain keeps.
 */
@Injectable()
export class AuditChain {
  private readonly breakListeners: ChainBreakListener[] = [];

  constructor(
    private readonly transactions: TenantTransactions,
    private readonly chainer: AuditChainer,
  ) {}

  /** Calls `listener` with each break a verification finds (by the server or the CLI). */
  onBroken(listener: ChainBreakListener): void {
    this.breakListeners.push(listener);
  }

  /** Tells the listeners of a break, including one found against a checkpoint. */
  reportBroken(organizationId: string, broken: NonNullable<ChainVerification['broken']>): void {
    for (const listener of this.breakListeners) {
      listener(organizationId, broken);
    }
  }

  /**
   * Links what has committed so far, then walks the chain. Entries of a transaction still open
   * (or committed after this started) are not yet part of it and are not counted.
   */
  async verify(organizationId: string): Promise<ChainVerification> {
    return this.transactions.run(organizationId, async (manager) => {
      await this.chainer.linkWith(manager, organizationId);
      const walker = new ChainWalker();
      let after = 0;
      for (;;) {
        const rows = await this.page(manager, organizationId, after);
        for (const row of rows) {
          if (!walker.push(toEntry(row))) {
            return this.result(walker);
          }
        }
        if (rows.length < BATCH) {
          break;
        }
        after = Number(rows[rows.length - 1].seq);
      }
      const heads: { seq: string; hash: Buffer }[] = await manager.query(
        'select seq, hash from audit_chain_heads where organization_id = $1',
        [organizationId],
      );
      const head = heads[0];
      const lastSeq = walker.last?.seq ?? 0;
      if (head && Number(head.seq) > lastSeq) {
        walker.broken = {
          seq: lastSeq + 1,
          reason: 'missing',
          detail: `the chain ends at ${lastSeq} but ${head.seq} entries were appended`,
        };
      } else if (head && walker.last && !head.hash.equals(walker.last.hash)) {
        walker.broken = {
          seq: lastSeq,
          reason: 'altered',
          detail: `entry ${lastSeq} is not the head the database recorded`,
        };
      }

      return this.result(walker);
    });
  }

  /** The entry with this number, as the chain holds it now. */
  async entryAt(organizationId: string, seq: number): Promise<ChainEntry | undefined> {
    return this.transactions.run(organizationId, async (manager) => {
      const rows = await this.page(manager, organizationId, seq - 1, 1);

      return rows[0] && Number(rows[0].seq) === seq ? toEntry(rows[0]) : undefined;
    });
  }

  async head(organizationId: string): Promise<ChainHead | null> {
    return this.transactions.run(organizationId, async (manager) => {
      await this.chainer.linkWith(manager, organizationId);
      const rows: { seq: string; hash: Buffer }[] = await manager.query(
        'select seq, hash from audit_chain_heads where organization_id = $1',
        [organizationId],
      );

      return rows[0] && Number(rows[0].seq) > 0
        ? { seq: Number(rows[0].seq), hash: rows[0].hash.toString('hex') }
        : null;
    });
  }

  /** Entries after `after`, in order, for the export. */
  async page(
    manager: EntityManager,
    organizationId: string,
    after: number,
    limit = BATCH,
  ): Promise<ChainRow[]> {
    return manager.query(
      `select e.seq, e.prev_hash, e.hash, parley_audit_canonical(e) as canonical
         from audit_events e
        where e.organization_id = $1 and e.seq > $2
        order by e.seq limit $3`,
      [organizationId, after, limit],
    );
  }

  private result(walker: ChainWalker): ChainVerification {
    return {
      valid: walker.broken === undefined,
      entries: walker.entries,
      head: walker.last ? { seq: walker.last.seq, hash: walker.last.hash.toString('hex') } : null,
      ...(walker.broken ? { broken: walker.broken } : {}),
    };
  }
}

export function toEntry(row: ChainRow): ChainEntry {
  return {
    seq: Number(row.seq),
    prevHash: row.prev_hash,
    hash: row.hash,
    canonical: row.canonical,
  };
}
