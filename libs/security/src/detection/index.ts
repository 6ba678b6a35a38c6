export * from './detection-rules';
export * from './detection-store';
export * from './detection.module';
export * from './detection.service';
export * from './signals';
