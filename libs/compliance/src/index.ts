export * from './compliance.module';
export * from './data-map.service';
