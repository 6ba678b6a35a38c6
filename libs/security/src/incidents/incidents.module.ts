import { Global, Module } from '@nestjs/common';
import { APP_GUARD } from '@nestjs/core';
import { TypeOrmModule } from '@nestjs/typeorm';

import { TenancyModule } from '@parley/tenancy';

import { BlockedAddressGuard } from './blocked-address.guard';
import { BlockedAddresses } from './blocked-addresses';
import { IncidentAlertListener } from './incident-alert.listener';
import { IncidentContainment } from './incident-containment';
import { IncidentEscalation } from './incident-escalation';
import { IncidentNoteEntity } from './incident-note.entity';
import { IncidentEntity } from './incident.entity';
import { IncidentsController } from './incidents.controller';
import { IncidentsService } from './incidents.service';

/**
 * Incidents: opened and joined by alerts (the listener registers with `Alerts`), escalated when
 * overdue (a job in every server process), moved through their lifecycle and contained by
 * admins. Needs `Alerts` (AlertsModule) and the auth library's SessionTerminator and
 * ApiKeyRevoker, all global. Global itself, so that sign-in, refresh, widget sessions and the
 * socket handshake can ask BlockedAddresses once they know the organization.
 */
@Global()
@Module({
  imports: [TypeOrmModule.forFeature([IncidentEntity, IncidentNoteEntity]), TenancyModule],
  controllers: [IncidentsController],
  providers: [
    IncidentsService,
    IncidentAlertListener,
    IncidentEscalation,
    IncidentContainment,
    BlockedAddresses,
    BlockedAddressGuard,
    { provide: APP_GUARD, useExisting: BlockedAddressGuard },
  ],
  exports: [IncidentAlertListener, IncidentEscalation, BlockedAddresses],
})
export class IncidentsModule {}
