// Runs in every test file before it loads. The servers the suites boot read their configuration
// from the object test/support/server.ts builds, not from process.env; these defaults cover the
// few libraries that do look at the process environment.
process.env.NODE_ENV ??= 'test';
process.env.TZ ??= 'UTC';
