import {
  DynamicModule,
  Global,
  Injectable,
  Logger,
  Module,
  OnApplicationShutdown,
} from '@nestjs/common';
import { TypeOrmModule, getDataSourceToken } from '@nestjs/typeorm';
import { ClsPluginTransactional } from '@nestjs-cls/transactional';
import { DataSource, MixedList } from 'typeorm';

import { APP_CONFIG, AppConfig } from '@parley/core';

import { ConnectedDatabase, connectDatabase } from './connect';
import { DatabaseHealth } from './database.health';
import { TenantTransactionalAdapter } from './tenant-transaction.adapter';
import { TenantTransactions } from './tenant-transactions';

export const CONNECTED_DATABASE = Symbol('CONNECTED_DATABASE');

interface Holder {
  config?: AppConfig;
  connected?: ConnectedDatabase;
}

@Injectable()
class DatabaseLifecycle implements OnApplicationShutdown {
  constructor(private readonly holder: Holder) {}

  async onApplicationShutdown(): Promise<void> {
    const connected = this.holder.connected;
    this.holder.connected = undefined;
    if (connected?.embedded) {
      await connected.close();
    }
  }
}

/** The transactional plugin for ClsModule.forRoot: every transaction sets its tenant. */
export function tenantTransactionPlugin(): ClsPluginTransactional {
  return new ClsPluginTransactional({
    imports: [TypeOrmModule],
    adapter: new TenantTransactionalAdapter({ dataSourceToken: getDataSourceToken() }),
    enableTransactionProxy: false,
  });
}

@Global()
@Module({})
export class DatabaseModule {
  static forRoot(options: { migrations: MixedList<Function | string> }): DynamicModule {
    const holder: Holder = {};
    const logger = new Logger('Database');

    return {
      module: DatabaseModule,
      imports: [
        TypeOrmModule.forRootAsync({
          inject: [APP_CONFIG],
          useFactory: (config: AppConfig) => {
            holder.config = config;

            // No retries, and no "Retrying (1)..." line with a stack before the real reason:
            // connectDatabase names the variable at fault, and main.ts prints that alone.
            return {
              type: 'postgres',
              autoLoadEntities: true,
              retryAttempts: 0,
              toRetry: () => false,
            };
          },
          dataSourceFactory: async (typeOrmOptions) => {
            const connected = await connectDatabase(
              holder.config as AppConfig,
              {
                entities: (typeOrmOptions?.entities ?? []) as MixedList<Function | string>,
                migrations: options.migrations,
              },
              logger,
            );
            holder.connected = connected;

            return connected.dataSource;
          },
        }),
      ],
      providers: [
        { provide: CONNECTED_DATABASE, inject: [DataSource], useFactory: () => holder.connected },
        { provide: DatabaseLifecycle, useFactory: () => new DatabaseLifecycle(holder) },
        DatabaseHealth,
        TenantTransactions,
      ],
      exports: [CONNECTED_DATABASE, DatabaseHealth, TenantTransactions],
    };
  }
}
