export * from './alerts.module';
export * from './alerts.service';
export * from './security-alert';
