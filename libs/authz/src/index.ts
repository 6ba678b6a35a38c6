export * from './ability.factory';
export * from './api-key-scopes';
export * from './authz.module';
export * from './policy.decorator';
export * from './policy.guard';
