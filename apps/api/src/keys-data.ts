import { NestFactory } from '@nestjs/core';

import { AuditCheckpoints } from '@parley/audit';
import { SigningKeys } from '@parley/auth';
import { ConfigError, loadConfig } from '@parley/core';
import { KeyMaintenance } from '@parley/crypto';

import { AppModule } from './app.module';

const USAGE = `Usage:
  npm run keys:rotate-data [-- --no-rewrap]   new current version of every data key, then re-seal old values
  npm run keys:rewrap [-- --retire]           re-seal values under old versions; --retire then retires those versions
  npm run keys:rotate-kek                     after PARLEY_KEK changed (old key in PARLEY_KEK_PREVIOUS): re-wrap every data key and signing key
`;

/**
 * Data-key management from the command line, against the configured database. Running servers
 * pick new key versions up within DATA_KEY_CACHE_SECONDS; until then they keep sealing with the
 * previous version, which still opens.
 */
async function main(argv: string[]): Promise<void> {
  const [command, ...flags] = argv;
  if (!command || !['rotate', 'rewrap', 'rotate-kek'].includes(command)) {
    process.stdout.write(USAGE);
    process.exitCode = command ? 2 : 0;

    return;
  }
  const unknown = flags.filter((flag) => !['--no-rewrap', '--retire'].includes(flag));
  if (unknown.length > 0) {
    process.stderr.write(`Unknown option ${unknown[0]}\n${USAGE}`);
    process.exitCode = 2;

    return;
  }
  const config = loadConfig();
  const context = await NestFactory.createApplicationContext(AppModule.register({ config }), {
    logger: ['error', 'warn'],
    abortOnError: false,
  });
  const out = (line: string) => process.stdout.write(`${line}\n`);
  try {
    const maintenance = context.get(KeyMaintenance);
    if (command === 'rotate-kek') {
      const dataKeys = await maintenance.rewrapUnderCurrentKek();
      const signingKeys = await context.get(SigningKeys).rewrapUnderCurrentKek();
      const checkpointKeys = await context.get(AuditCheckpoints).rewrapUnderCurrentKek();
      out(
        `Re-wrapped ${dataKeys} data key versions, ${signingKeys} signing keys and ${checkpointKeys} audit checkpoint keys.`,
      );

      return;
    }
    if (command === 'rotate') {
      out(`Rotated ${await maintenance.rotateAll()} data keys.`);
      if (flags.includes('--no-rewrap')) {
        return;
      }
    }
    const report = await maintenance.rewrap({
      retire: flags.includes('--retire'),
      onProgress: (progress) =>
        out(
          `  ${progress.table}: ${progress.scanned} rows read, ${progress.resealed} values re-sealed (organization ${progress.organizationId})`,
        ),
    });
    const organizations = `${report.organizations} organization${report.organizations === 1 ? '' : 's'}`;
    out(
      `Re-sealed ${report.resealed} values in ${organizations} (${report.scanned} rows read, ${report.seconds.toFixed(1)} s); ${report.remaining} still under an old version.`,
    );
    if (report.unreadable > 0) {
      out(
        `${report.unreadable} values do not open (altered, moved, or under a retired version) and were left as they are; the log names their rows.`,
      );
    }
    if (flags.includes('--retire')) {
      if (report.retired) {
        out(
          'Old key versions are retired: they no longer open anything and their material is deleted.',
        );
      } else if (report.waiting > 0 && report.remaining === 0) {
        out(
          `Old key versions were NOT retired for ${report.waiting} keys rotated less than DATA_KEY_CACHE_SECONDS (+5 s) ago: a running server may still seal with their previous version. Run this again after that time.`,
        );
        process.exitCode = 1;
      } else {
        out(
          'Old key versions were NOT retired everywhere: some values still need them; run the rewrap again.',
        );
        process.exitCode = 1;
      }
    }
  } finally {
    await context.close();
  }
}

main(process.argv.slice(2)).catch((error: unknown) => {
  process.stderr.write(
    `${error instanceof ConfigError ? error.message : `Key maintenance failed: ${(error as Error).message}`}\n`,
  );
  process.exit(1);
});
