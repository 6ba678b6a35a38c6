import { Global, Module } from '@nestjs/common';
import { TypeOrmModule } from '@nestjs/typeorm';

import { AuditController } from './audit.controller';
import { AuditChain } from './chain/audit-chain';
import { AuditChainController, AuditKeysController } from './chain/audit-chain.controller';
import { AuditCheckpoints } from './chain/audit-checkpoints';
import { AuditEventEntity } from './audit-event.entity';
import { AuditService } from './audit.service';
import { AuditSubscriber } from './audit.subscriber';

@Global()
@Module({
  imports: [TypeOrmModule.forFeature([AuditEventEntity])],
  controllers: [AuditController, AuditChainController, AuditKeysController],
  providers: [AuditService, AuditSubscriber, AuditChain, AuditCheckpoints],
  exports: [AuditService, AuditChain, AuditCheckpoints],
})
export class AuditModule {}
