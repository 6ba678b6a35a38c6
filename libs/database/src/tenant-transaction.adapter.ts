import { TransactionalAdapterTypeOrm } from '@nestjs-cls/transactional-adapter-typeorm';
import { ClsServiceManager } from 'nestjs-cls';
import { DataSource, EntityManager, QueryRunner } from 'typeorm';

export const ORGANIZATION_SETTING = 'app.organization_id';

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

export class MissingTenantError extends Error {
  constructor() {
    super('A tenant transaction was started with no organization in the request context');
    this.name = 'MissingTenantError';
  }
}

/**
 * Starts a transaction whose first statement sets the tenant, in one round trip: TypeORM's own
 * START TRANSACTION is sent together with set_config as one simple-protocol query. The id is
 * checked against the UUID pattern before it is written into the SQL text.
 */
async function startTenantTransaction(
  queryRunner: QueryRunner,
  organizationId: string,
): Promise<void> {
  if (!UUID.test(organizationId)) {
    throw new MissingTenantError();
  }
  const query = queryRunner.query;
  queryRunner.query = ((sql: string, ...rest: unknown[]) => {
    queryRunner.query = query;
    const text =
      sql === 'START TRANSACTION'
        ? `START TRANSACTION; SELECT set_config('${ORGANIZATION_SETTING}', '${organizationId}', true)`
        : sql;

    return (query as (...args: unknown[]) => Promise<unknown>).call(queryRunner, text, ...rest);
  }) as typeof query;
  try {
    await queryRunner.startTransaction();
  } finally {
    queryRunner.query = query;
  }
}

/** Runs `work` in one tenant transaction on its own query runner, as EntityManager.transaction does. */
export async function runTenantTransaction<T>(
  dataSource: DataSource,
  organizationId: string,
  work: (manager: EntityManager) => Promise<T>,
): Promise<T> {
  const queryRunner = dataSource.createQueryRunner();
  try {
    await startTenantTransaction(queryRunner, organizationId);
    const result = await work(queryRunner.manager);
    await queryRunner.commitTransaction();

    return result;
  } catch (error) {
    if (queryRunner.isTransactionActive) {
      await queryRunner.rollbackTransaction().catch(() => undefined);
    }
    throw error;
  } finally {
    await queryRunner.release();
  }
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
      wrapWithTransaction: async (_options, fn, setClient) => {
        const organizationId = ClsServiceManager.getClsService().get('organizationId') as
          string | undefined;
        if (!organizationId) {
          throw new MissingTenantError();
        }

        return runTenantTransaction(dataSource, organizationId, async (manager) => {
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
