import { HttpStatus, Injectable } from '@nestjs/common';
import { DataSource, EntityManager } from 'typeorm';

import { Clock, declareTable } from '@parley/core';
import { FieldCipher, Queryable } from '@parley/crypto';
import { TenantTransactions } from '@parley/database';

import { addressIdentity } from '../login-throttle';
import { IncidentsErrorCode, IncidentsProblem } from './incidents.errors';

declareTable(
  'blocked_addresses',
  {
    purpose: "Client addresses an organization's admins blocked while containing an incident.",
    retention: 'Kept with the incident; a block stops applying at its expiry.',
  },
  {
    id: { class: 'internal' },
    organization_id: { class: 'internal' },
    incident_id: { class: 'internal' },
    address_index: {
      class: 'internal',
      purpose:
        "A keyed digest of the address (IPv6: its /64) under the organization's blind-index key; never the address.",
    },
    blocked_by: { class: 'internal' },
    created_at: { class: 'internal' },
    expires_at: { class: 'internal' },
  },
);

/** How long a read of the blocks is trusted; another instance's new block applies within it. */
export const BLOCK_CACHE_MS = 5_000;

/** Digests kept per organization before the map starts over (each is one HMAC to recompute). */
const MAX_DIGESTS_PER_ORGANIZATION = 1_000;

/** The blind-index field name the digests are made under, apart from every other field's. */
const DIGEST_FIELD = 'blocked_address';

interface OrganizationBlocks {
  loadedAt: number;
  /** Digest (hex) to the latest expiry of a block on it, in ms. */
  expiries: Map<string, number>;
  /** Address identity to its digest (hex), so a repeated address costs no HMAC. */
  digests: Map<string, string>;
}

/**
 * Addresses blocked per organization. The check runs on every request of a known organization:
 * which organizations have any running block is read for the whole installation at most every
 * BLOCK_CACHE_MS, so an organization without one costs a set lookup; an organization with one
 * has its blocks read, and the caller's digest made, at most that often too. Expiries are
 * compared with the clock on every check, so a block lifts on time whatever the cache holds.
 * Known shortcoming: nothing lifts a block before it expires, so a mistaken one lasts its minutes.
 */
@Injectable()
export class BlockedAddresses {
  private blocking: { loadedAt: number; ids: ReadonlySet<string> } | undefined;
  private loadingBlocking: Promise<ReadonlySet<string>> | undefined;
  /** Counts forget() calls, so a read that began before one is not kept after it. */
  private generation = 0;
  private readonly organizations = new Map<string, OrganizationBlocks>();

  constructor(
    private readonly dataSource: DataSource,
    private readonly transactions: TenantTransactions,
    private readonly cipher: FieldCipher,
    private readonly clock: Clock,
  ) {}

  /** Blocks `address` for the current organization for `minutes`, in the caller's transaction. */
  async block(
    manager: EntityManager,
    input: {
      organizationId: string;
      incidentId: string;
      address: string;
      minutes: number;
      blockedBy: string;
      at: Date;
    },
  ): Promise<{ id: string; expiresAt: Date }> {
    const now = input.at;
    const expiresAt = new Date(now.getTime() + input.minutes * 60_000);
    const digest = await this.digest(manager, input.organizationId, input.address);
    const rows: { id: string }[] = await manager.query(
      `insert into blocked_addresses
         (organization_id, incident_id, address_index, blocked_by, created_at, expires_at)
       values ($1, $2, $3, $4, $5, $6)
       returning id`,
      [input.organizationId, input.incidentId, digest, input.blockedBy, now, expiresAt],
    );
    this.transactions.afterCommit(() => this.forget(input.organizationId));

    return { id: rows[0].id, expiresAt };
  }

  /** Whether the organization has a running block on this address. */
  async isBlocked(organizationId: string, address: string): Promise<boolean> {
    const now = this.clock.nowMs();
    if (!(await this.blockingOrganizations(now)).has(organizationId)) {
      return false;
    }
    const identity = addressIdentity(address);
    let blocks = this.organizations.get(organizationId);
    if (!blocks || now - blocks.loadedAt >= BLOCK_CACHE_MS || !blocks.digests.has(identity)) {
      blocks = await this.load(organizationId, identity, now, blocks);
    }
    const expiry = blocks.expiries.get(blocks.digests.get(identity) as string);

    return expiry !== undefined && expiry > now;
  }

  /** Throws 403 address_blocked when the organization has a running block on `address`. */
  async refuse(organizationId: string, address: string | undefined): Promise<void> {
    if (address && (await this.isBlocked(organizationId, address))) {
      throw new IncidentsProblem(
        IncidentsErrorCode.AddressBlocked,
        'Your organization has blocked requests from this address.',
        HttpStatus.FORBIDDEN,
      );
    }
  }

  /** Drops what this instance knows of an organization's blocks, so the next check reads them. */
  forget(organizationId: string): void {
    this.organizations.delete(organizationId);
    this.blocking = undefined;
    this.loadingBlocking = undefined;
    this.generation += 1;
  }

  private digest(db: Queryable, organizationId: string, address: string): Promise<Buffer> {
    return this.cipher.blindIndex(db, organizationId, DIGEST_FIELD, addressIdentity(address));
  }

  private async blockingOrganizations(now: number): Promise<ReadonlySet<string>> {
    if (this.blocking && now - this.blocking.loadedAt < BLOCK_CACHE_MS) {
      // Read again in the background once half as old as allowed, so that every request of the
      // installation does not wait for the read when the copy runs out.
      if (now - this.blocking.loadedAt >= BLOCK_CACHE_MS / 2) {
        void this.loadBlocking(now).catch(() => undefined);
      }

      return this.blocking.ids;
    }

    return this.loadBlocking(now);
  }

  private loadBlocking(now: number): Promise<ReadonlySet<string>> {
    if (this.loadingBlocking) {
      return this.loadingBlocking;
    }
    const generation = this.generation;
    const loading: Promise<ReadonlySet<string>> = this.dataSource
      .query('select parley_blocking_organization_ids($1) as id', [new Date(now)])
      .then((rows: { id: string }[]) => {
        const ids = new Set(rows.map((row) => row.id));
        // A block committed while this read ran (forget) may be missing from it: keep nothing.
        if (generation === this.generation) {
          this.blocking = { loadedAt: now, ids };
        }

        return ids;
      })
      .finally(() => {
        if (this.loadingBlocking === loading) {
          this.loadingBlocking = undefined;
        }
      });
    this.loadingBlocking = loading;

    return loading;
  }

  private load(
    organizationId: string,
    identity: string,
    now: number,
    cached: OrganizationBlocks | undefined,
  ): Promise<OrganizationBlocks> {
    return this.transactions.run(organizationId, async (manager) => {
      const fresh = cached && now - cached.loadedAt < BLOCK_CACHE_MS;
      const blocks: OrganizationBlocks = fresh
        ? cached
        : {
            loadedAt: now,
            expiries: new Map(),
            digests:
              cached && cached.digests.size < MAX_DIGESTS_PER_ORGANIZATION
                ? cached.digests
                : new Map(),
          };
      if (!fresh) {
        const rows: { address_index: Buffer; expires_at: Date }[] = await manager.query(
          `select address_index, max(expires_at) as expires_at from blocked_addresses
            where expires_at > $1 group by address_index`,
          [new Date(now)],
        );
        for (const row of rows) {
          blocks.expiries.set(
            Buffer.from(row.address_index).toString('hex'),
            new Date(row.expires_at).getTime(),
          );
        }
      }
      if (!blocks.digests.has(identity)) {
        if (blocks.digests.size >= MAX_DIGESTS_PER_ORGANIZATION) {
          blocks.digests.clear();
        }
        const digest = await this.cipher.blindIndex(
          manager,
          organizationId,
          DIGEST_FIELD,
          identity,
        );
        blocks.digests.set(identity, digest.toString('hex'));
      }
      this.organizations.set(organizationId, blocks);

      return blocks;
    });
  }
}
