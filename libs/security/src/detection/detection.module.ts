import { Module, OnModuleInit } from '@nestjs/common';

import { AuditChain } from '@parley/audit';
import { KeyEncryptionKey } from '@parley/crypto';

import { AlertsModule } from '../alerts/alerts.module';
import { Alerts } from '../alerts/alerts.service';

import { Detection } from './detection.service';
import { HttpSignals } from './http-signals';
import { useAddressDigestKey } from './signals';
import { TrailSignals } from './trail-signals';

/** The detection rules, fed by the login throttle, the audit trail and every HTTP answer. */
@Module({
  imports: [AlertsModule],
  providers: [Detection, TrailSignals, HttpSignals],
  exports: [Detection],
})
export class DetectionModule implements OnModuleInit {
  constructor(
    private readonly kek: KeyEncryptionKey,
    private readonly chain: AuditChain,
    private readonly alerts: Alerts,
  ) {}

  onModuleInit(): void {
    useAddressDigestKey(this.kek.deriveKey('address-digest'));
    // A verification that finds the trail tampered with is itself an attack to act on.
    this.chain.onBroken((organizationId, broken) => {
      this.alerts.raise({
        organizationId,
        rule: 'audit_chain_broken',
        severity: 'critical',
        summary: 'The audit trail failed verification.',
        details: { seq: broken.seq, reason: broken.reason },
      });
    });
  }
}
