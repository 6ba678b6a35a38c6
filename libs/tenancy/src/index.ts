export * from './common.dto';
export * from './organization.entity';
export * from './organizations.service';
export * from './tenancy.dto';
export * from './tenancy.errors';
export * from './tenancy.module';
export * from './user.entity';
export * from './users.service';
