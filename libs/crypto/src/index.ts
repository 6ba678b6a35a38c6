export * from './crypto.module';
export * from './passwords';
export * from './password-policy';
export * from './tokens';
export * from './key-encryption';
