export * from './api-key-revoker';
export * from './incident-alert.listener';
export * from './incident-escalation';
export * from './incident-rules';
export * from './incident.entity';
export * from './incidents.dto';
export * from './incidents.errors';
export * from './incidents.module';
