export * from './api-keys';
export * from './members';
export * from './organizations';
export * from './unique';
