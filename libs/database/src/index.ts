export * from './committed-refusal';
export * from './connect';
export * from './database.health';
export * from './database.module';
export * from './embedded-pool';
export * from './tenant-transaction.adapter';
export * from './tenant-transactions';
export * from './tenant-transaction.interceptor';
