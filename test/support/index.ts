export * from './api-client';
export * from './database-url';
export * from './log-capture';
export * from './logs';
export * from './problem';
export * from './server';
export * from './sockets';
export * from './tls';
