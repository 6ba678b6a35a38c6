export * from './api-keys';
export * from './elevations';
export * from './members';
export * from './mfa';
export * from './organizations';
export * from './unique';
export * from './webhooks';
