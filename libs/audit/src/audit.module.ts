import { Global, Module } from '@nestjs/common';
import { TypeOrmModule } from '@nestjs/typeorm';

import { AuditController } from './audit.controller';
import { AuditChain } from './chain/audit-chain';
import { AuditChainer } from './chain/audit-chainer';
import { AuditChainController, AuditKeysController } from './chain/audit-chain.controller';
import { AuditCheckpoints } from './chain/audit-checkpoints';
import { AuditEventEntity } from './audit-event.entity';
import { AuditService } from './audit.service';
import { AuditSubscriber } from './audit.subscriber';

@Global()
@Module({
  imports: [TypeOrmModule.forFeature([AuditEventEntity])],
  controllers: [AuditController, AuditChainController, AuditKeysController],
  providers: [AuditService, AuditSubscriber, AuditChain, AuditChainer, AuditCheckpoints],
  exports: [AuditService, AuditChain, AuditChainer, AuditCheckpoints],
})
export class AuditModule {}
