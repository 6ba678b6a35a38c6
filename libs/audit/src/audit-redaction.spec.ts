import { Classified, Clock, RequestContext, Metrics } from '@parley/core';
import { TenantTransactions } from '@parley/database';

import { AuditService } from './audit.service';

class Guest {
  @Classified('confidential')
  email!: string;
}

describe('audit entries', () => {
  it('store no classified value or credential in their metadata, however deeply nested', () => {
    expect(new Guest()).toBeInstanceOf(Guest);
    const context = { actor: undefined, requestId: 'request-1', ip: '127.0.0.1' };
    const audit = new AuditService(
      context as unknown as RequestContext,
      new Clock(),
      {} as TenantTransactions,
      new Metrics(),
    );
    const metadata = {
      reason: 'admin',
      imported: { rows: [{ guest: { email: 'ada@example.com' } }] },
      secret: 'JBSWY3DPEHPK3PXP',
    };

    const entry = audit.entry({ organizationId: 'o', action: 'user.updated', metadata });

    expect(entry.metadata).toEqual({
      reason: 'admin',
      imported: { rows: [{ guest: { email: '[redacted]' } }] },
      secret: '[redacted]',
    });
    expect(metadata.imported.rows[0].guest.email).toBe('ada@example.com');
  });
});
