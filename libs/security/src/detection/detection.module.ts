import { Module, OnModuleInit } from '@nestjs/common';

import { KeyEncryptionKey } from '@parley/crypto';

import { AlertsModule } from '../alerts/alerts.module';

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
  constructor(private readonly kek: KeyEncryptionKey) {}

  onModuleInit(): void {
    useAddressDigestKey(this.kek.deriveKey('address-digest'));
  }
}
