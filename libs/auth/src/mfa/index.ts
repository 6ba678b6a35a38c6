export * from './mfa-enrollment-route.decorator';
export * from './mfa-verification.service';
export * from './mfa.errors';
