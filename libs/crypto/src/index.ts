export * from './crypto.module';
export * from './passwords';
export * from './tokens';
