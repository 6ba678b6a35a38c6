export * from './audit-action';
export * from './audit-event.entity';
export * from './audit.module';
export * from './audit.service';
export * from './audited.decorator';
