export * from './audit-action';
export * from './audit-event.entity';
export * from './audit.module';
export * from './audit.service';
export * from './audited.decorator';
export * from './chain/audit-chain';
export * from './chain/audit-checkpoints';
export * from './chain/export-verify';
