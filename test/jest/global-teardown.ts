import { existsSync, rmSync } from 'node:fs';

import { RUN_DIR_VARIABLE } from '../support/run-folder';

import { describeLeaks, scanRunFolder } from './leak-scan';

/**
 * The check of the whole run: no confidential value or credential that any test sent, in any
 * suite or worker, appears in any line any test server logged. It fails the run (jest exits
 * non-zero) and names each value's field, the test file that sent it and the log file and line
 * that holds it, with only the first characters of the value.
 */
export default function globalTeardown(): void {
  const runDirectory = process.env[RUN_DIR_VARIABLE];
  if (!runDirectory || !existsSync(runDirectory)) {
    return;
  }
  const started = Date.now();
  const result = scanRunFolder(runDirectory);
  const failure = describeLeaks(runDirectory, result);
  if (failure) {
    throw new Error(failure);
  }
  console.log(
    `Whole-run log check: ${result.values} confidential values sent, none in the ` +
      `${result.logLines} lines of ${result.logFiles} test server logs (${Date.now() - started} ms).`,
  );
  rmSync(runDirectory, { recursive: true, force: true });
}
