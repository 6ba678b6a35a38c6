export * from './login-attempt-rules';
export * from './login-throttle';
export * from './login-throttle.errors';
export * from './rate-limit';
export * from './security.module';
