import { Module } from '@nestjs/common';

import { ComplianceController } from './compliance.controller';
import { DataMap } from './data-map.service';

@Module({
  controllers: [ComplianceController],
  providers: [DataMap],
  exports: [DataMap],
})
export class ComplianceModule {}
