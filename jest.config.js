'use strict';

const esmOnly = [
  '@nestjs',
  'jose',
  'file-type',
  'strtok3',
  'token-types',
  'uint8array-extras',
  '@tokenizer',
  '@borewit',
  'pg-boss',
  'serialize-error',
  'non-error',
  'rrule-temporal',
  'temporal-spec',
  // ESM-only since 1.0 and required by @fastify/static, which @nestjs/swagger loads at boot.
  'content-disposition',
  // PGlite's CommonJS build loads node built-ins with import(), which jest's VM refuses without
  // --experimental-vm-modules; test/jest/esm-to-cjs.js turns those into require() calls.
  '@electric-sql',
  // otplib 13 and its plugins; their crypto and Base32 dependencies ship as ESM only.
  'otplib',
  '@otplib',
  '@noble/hashes',
  '@scure/base',
  // @fastify/cookie 11 loads the ESM-only cookie 2 with import(); compiled, that is a require().
  '@fastify/cookie',
  'cookie',
];

/** @type {import('jest').Config} */
module.exports = {
  rootDir: '.',
  testEnvironment: 'node',
  moduleFileExtensions: ['ts', 'js', 'json', 'mjs'],
  testMatch: [
    '<rootDir>/libs/**/*.spec.ts',
    '<rootDir>/apps/**/*.spec.ts',
    '<rootDir>/test/**/*.e2e-spec.ts',
  ],
  transform: {
    '^.+\\.ts$': ['ts-jest', { tsconfig: '<rootDir>/tsconfig.spec.json' }],
    '^.+\\.[cm]?js$': '<rootDir>/test/jest/esm-to-cjs.js',
  },
  transformIgnorePatterns: [`/node_modules/(?!(${esmOnly.join('|')})/)`],
  moduleNameMapper: {
    '^@parley/migrations$': '<rootDir>/migrations',
    '^@parley/([a-z-]+)$': '<rootDir>/libs/$1/src',
  },
  globalSetup: '<rootDir>/test/jest/global-setup.ts',
  // Fails the run when any confidential value a test sent appears in any test server's log.
  globalTeardown: '<rootDir>/test/jest/global-teardown.ts',
  setupFiles: ['<rootDir>/test/jest/setup-env.ts'],
  maxWorkers: 2,
  testTimeout: 60000,
};
