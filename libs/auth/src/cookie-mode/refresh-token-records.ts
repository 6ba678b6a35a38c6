import { Injectable } from '@nestjs/common';
import { DataSource } from 'typeorm';

import { tokenDigest } from '@parley/crypto';
import { TenantTransactions } from '@parley/database';

export interface RefreshTokenRecord {
  organizationId: string;
  sessionId: string;
  /** Epoch milliseconds: the session's absolute end, which every token of it shares. */
  expiresAt: number;
  consumed: boolean;
}

/** Reads what a refresh token belongs to without consuming it; AuthService alone consumes. */
@Injectable()
export class RefreshTokenRecords {
  constructor(
    private readonly dataSource: DataSource,
    private readonly transactions: TenantTransactions,
  ) {}

  async describe(refreshToken: string): Promise<RefreshTokenRecord | undefined> {
    const digest = tokenDigest(refreshToken);
    const organizations: { id: string | null }[] = await this.dataSource.query(
      'select parley_organization_by_refresh_token($1) as id',
      [digest],
    );
    const organizationId = organizations[0]?.id;
    if (!organizationId) {
      return undefined;
    }
    const rows: { session_id: string; expires_at: Date; consumed_at: Date | null }[] =
      await this.transactions.run(organizationId, (manager) =>
        manager.query(
          'select session_id, expires_at, consumed_at from refresh_tokens where token_hash = $1',
          [digest],
        ),
      );
    const row = rows[0];
    if (!row) {
      return undefined;
    }

    return {
      organizationId,
      sessionId: row.session_id,
      expiresAt: new Date(row.expires_at).getTime(),
      consumed: row.consumed_at !== null,
    };
  }
}
