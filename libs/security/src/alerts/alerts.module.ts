import { Global, Module } from '@nestjs/common';

import { Alerts } from './alerts.service';

/** The one `Alerts` of the process; detection raises through it, webhooks and incidents listen. */
@Global()
@Module({
  providers: [Alerts],
  exports: [Alerts],
})
export class AlertsModule {}
