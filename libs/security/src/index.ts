export * from './rate-limit';
export * from './security.module';
