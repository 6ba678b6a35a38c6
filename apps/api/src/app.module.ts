import { DynamicModule, Module } from '@nestjs/common';
import { APP_FILTER, APP_GUARD, APP_INTERCEPTOR } from '@nestjs/core';
import { ThrottlerGuard } from '@nestjs/throttler';
import { ClsModule } from 'nestjs-cls';
import { LoggerModule } from 'nestjs-pino';
import type { DestinationStream } from 'pino';

import { AuditModule } from '@parley/audit';
import { AuthModule, AuthenticationGuard } from '@parley/auth';
import { AuthzModule, PolicyGuard } from '@parley/authz';
import { ConversationsModule } from '@parley/conversations';
import { AppConfig, ConfigModule, CoreModule, ProblemFilter, loggerParams } from '@parley/core';
import { CryptoModule } from '@parley/crypto';
import {
  DatabaseModule,
  TenantTransactionInterceptor,
  tenantTransactionPlugin,
} from '@parley/database';
import { MIGRATIONS } from '@parley/migrations';
import {
  AlertsModule,
  DetectionModule,
  IncidentsModule,
  SecurityModule,
  WebhooksModule,
} from '@parley/security';
import { ComplianceModule } from '@parley/compliance';
import { TenancyModule } from '@parley/tenancy';

import { DemoSeed } from './demo-seed';
import { ShutdownLog } from './shutdown-log';
import { HealthController } from './health.controller';
import { MetricsController } from './metrics.controller';

export interface AppOptions {
  config: AppConfig;
  /** Where logs go; tests capture them here. */
  logDestination?: DestinationStream;
}

/** Composition only: each capability lives in its own library. */
@Module({})
export class AppModule {
  static register(options: AppOptions): DynamicModule {
    return {
      module: AppModule,
      imports: [
        ConfigModule.forRoot(options.config),
        ClsModule.forRoot({
          global: true,
          middleware: {
            mount: true,
            generateId: true,
            idGenerator: (request: { id?: string }) => request.id ?? 'unknown',
          },
          plugins: [tenantTransactionPlugin()],
        }),
        LoggerModule.forRoot(loggerParams(options.config, options.logDestination)),
        CoreModule,
        CryptoModule,
        DatabaseModule.forRoot({ migrations: MIGRATIONS }),
        AuditModule,
        AuthzModule,
        TenancyModule,
        AuthModule,
        SecurityModule,
        AlertsModule,
        DetectionModule,
        WebhooksModule,
        IncidentsModule,
        ComplianceModule,
        ConversationsModule,
      ],
      controllers: [HealthController, MetricsController],
      providers: [
        DemoSeed,
        ShutdownLog,
        { provide: APP_FILTER, useClass: ProblemFilter },
        { provide: APP_GUARD, useExisting: ThrottlerGuard },
        { provide: APP_GUARD, useExisting: AuthenticationGuard },
        { provide: APP_GUARD, useExisting: PolicyGuard },
        { provide: APP_INTERCEPTOR, useClass: TenantTransactionInterceptor },
      ],
    };
  }
}
