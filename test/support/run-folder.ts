/**
 * The folder one jest run shares between its workers: test/jest/global-setup.ts makes it and
 * names it in this variable, every test server appends what it logs to `logs/` and every client
 * the confidential values it sends to `values/` (test/support/run-record.ts), and
 * test/jest/global-teardown.ts looks for each value in every line. Nothing else is imported
 * here: the global setup and teardown load this file outside jest's module mapping.
 */
export const RUN_DIR_VARIABLE = 'PARLEY_TEST_RUN_DIR';

/** Shorter values, and values that are not strings, are too likely to appear by chance. */
export const RECORDED_MIN_LENGTH = 6;

/** One confidential value a test sent, as one line of `values/*.jsonl`. */
export interface SentValue {
  /** The key it was sent under (`email`, `body`, `password`) or `credential` for a token. */
  field: string;
  /** The request or socket event that carried it: `POST /api/v1/contacts`, `socket message:send`. */
  via: string;
  /** The test file that sent it. */
  file: string;
  value: string;
}
