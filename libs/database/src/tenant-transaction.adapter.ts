import { TransactionalAdapterTypeOrm } from '@nestjs-cls/transactional-adapter-typeorm';
import { ClsServiceManager } from 'nestjs-cls';
import { DataSource, EntityManager } from 'typeorm';

export const ORGANIZATION_SETTING = 'app.organization_id';

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

export class MissingTenantError extends Error {
  constructor() {
    super('A tenant transaction was started with no organization in the request context');
    this.name = 'MissingTenantError';
  }
}

/** Sets the organization for row-level security as the first statement of a transaction. */
export async function setTenant(
  manager: EntityManager,
  organizationId: string | undefined,
): Promise<void> {
  if (!organizationId || !UUID.test(organizationId)) {
    throw new MissingTenantError();
  }
  await manager.query(`select set_config('${ORGANIZATION_SETTING}', $1, true)`, [organizationId]);
}

/**
 * The TypeORM adapter of @nestjs-cls/transactional, changed in one way: every transaction it
 * opens first sets the organization of the current context locally, and refuses to open at all
 * when the context has none. `@Transactional()` on its own never complains, so this is where a
 * missing tenant fails closed.
 */
export class TenantTransactionalAdapter extends TransactionalAdapterTypeOrm {
  constructor(options: { dataSourceToken: unknown }) {
    super(options as ConstructorParameters<typeof TransactionalAdapterTypeOrm>[0]);
    this.optionsFactory = (dataSource: DataSource) => ({
      wrapWithTransaction: async (options, fn, setClient) => {
        const organizationId = ClsServiceManager.getClsService().get('organizationId') as
          string | undefined;
        if (!organizationId) {
          throw new MissingTenantError();
        }

        return dataSource.transaction(options?.isolationLevel as never, async (manager) => {
          await setTenant(manager, organizationId);
          setClient(manager);

          return fn();
        });
      },
      wrapWithNestedTransaction: async (options, fn, setClient, client) =>
        client.transaction(options?.isolationLevel as never, async (manager) => {
          setClient(manager);

          return fn();
        }),
      getFallbackInstance: () => dataSource.manager,
    });
  }
}
