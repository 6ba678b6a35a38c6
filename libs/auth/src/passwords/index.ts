export * from './password-attempts.service';
export * from './passwords.dto';
export * from './passwords.errors';
