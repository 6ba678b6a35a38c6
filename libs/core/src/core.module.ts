import { Global, Module } from '@nestjs/common';

import { RequestContext } from './context/request-context';
import { Metrics } from './metrics/metrics';
import { Clock } from './time/clock';

@Global()
@Module({
  providers: [Clock, RequestContext, Metrics],
  exports: [Clock, RequestContext, Metrics],
})
export class CoreModule {}
