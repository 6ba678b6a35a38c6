export * from './api-key-authenticator';
export * from './api-key.entity';
export * from './api-key-format';
export * from './api-keys.controller';
export * from './api-keys.dto';
export * from './api-keys.errors';
export * from './api-keys.service';
