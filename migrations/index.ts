import { CreateTenantSchema1764806400000 } from './1764806400000-CreateTenantSchema';
import { AddOrganizationSecurityPolicy1764892800000 } from './1764892800000-AddOrganizationSecurityPolicy';
import { AddMfa1764893000000 } from './1764893000000-AddMfa';
import { AddApiKeys1764893100000 } from './1764893100000-AddApiKeys';
import { AddLoginAttempts1764893200000 } from './1764893200000-AddLoginAttempts';
import { AddSigningKeys1764893300000 } from './1764893300000-AddSigningKeys';
import { AddElevations1764893400000 } from './1764893400000-AddElevations';
import { AddFieldEncryption1764979200000 } from './1764979200000-AddFieldEncryption';
import { AddAuditChain1765065600000 } from './1765065600000-AddAuditChain';
import { AddWebhooks1765065800000 } from './1765065800000-AddWebhooks';
import { AddIncidents1765065900000 } from './1765065900000-AddIncidents';
import { DeferAuditChaining1765152000000 } from './1765152000000-DeferAuditChaining';
import { AddTenantStatements1765238400000 } from './1765238400000-AddTenantStatements';
import { LinkAuditEntriesInOneUpdate1765238500000 } from './1765238500000-LinkAuditEntriesInOneUpdate';
import { LightenMessageWrites1765324800000 } from './1765324800000-LightenMessageWrites';
import { BatchMessageWrites1765411200000 } from './1765411200000-BatchMessageWrites';
import { SkipLockedMessageBatches1765497600000 } from './1765497600000-SkipLockedMessageBatches';

/** Every migration, in order. The API, the worker and `npm run migration:run` all apply this list. */
export const MIGRATIONS = [
  CreateTenantSchema1764806400000,
  AddOrganizationSecurityPolicy1764892800000,
  AddMfa1764893000000,
  AddApiKeys1764893100000,
  AddLoginAttempts1764893200000,
  AddSigningKeys1764893300000,
  AddElevations1764893400000,
  AddFieldEncryption1764979200000,
  AddAuditChain1765065600000,
  AddWebhooks1765065800000,
  AddIncidents1765065900000,
  DeferAuditChaining1765152000000,
  AddTenantStatements1765238400000,
  LinkAuditEntriesInOneUpdate1765238500000,
  LightenMessageWrites1765324800000,
  BatchMessageWrites1765411200000,
  SkipLockedMessageBatches1765497600000,
];
