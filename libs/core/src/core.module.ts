import { Global, Module } from '@nestjs/common';

import { RequestContext } from './context/request-context';
import { Clock } from './time/clock';

@Global()
@Module({
  providers: [Clock, RequestContext],
  exports: [Clock, RequestContext],
})
export class CoreModule {}
