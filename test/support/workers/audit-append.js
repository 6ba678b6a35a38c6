'use strict';

// One of the processes of the concurrent-append test: appends audit entries as the runtime
// role, one transaction each, the way the server does. Arguments: url organizationId count tag.
const { Client } = require('pg');

async function main() {
  const [url, organizationId, count, tag] = process.argv.slice(2);
  const client = new Client({ connectionString: url, options: '-c role=parley_app' });
  await client.connect();
  try {
    for (let index = 0; index < Number(count); index += 1) {
      await client.query('begin');
      await client.query("select set_config('app.organization_id', $1, true)", [organizationId]);
      await client.query(
        `insert into audit_events (organization_id, actor_type, action, metadata)
         values ($1, 'system', 'test.concurrent_append', $2)`,
        [organizationId, { worker: tag, index }],
      );
      await client.query('commit');
    }
  } finally {
    await client.end();
  }
}

main().catch((error) => {
  process.stderr.write(`${error.stack}\n`);
  process.exit(1);
});
