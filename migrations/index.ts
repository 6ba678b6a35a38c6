import { CreateTenantSchema1764806400000 } from './1764806400000-CreateTenantSchema';
import { AddOrganizationSecurityPolicy1764892800000 } from './1764892800000-AddOrganizationSecurityPolicy';

/** Every migration, in order. The API, the worker and `npm run migration:run` all apply this list. */
export const MIGRATIONS = [
  CreateTenantSchema1764806400000,
  AddOrganizationSecurityPolicy1764892800000,
];
