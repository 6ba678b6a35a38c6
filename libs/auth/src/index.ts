export * from './auth.dto';
export * from './auth.errors';
export * from './auth.module';
export * from './auth.service';
export * from './authentication.guard';
export * from './sessions.service';
export * from './token.service';
