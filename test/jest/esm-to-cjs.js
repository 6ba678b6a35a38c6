'use strict';
// Jest on Node 20 cannot require() ESM-only packages (NestJS 12, jose, pg-boss and friends).
// This transformer rewrites those packages to CommonJS; jest.config.js lists which ones.
const crypto = require('node:crypto');
const ts = require('typescript');

const compilerOptions = {
  module: ts.ModuleKind.CommonJS,
  target: ts.ScriptTarget.ES2022,
  allowJs: true,
  esModuleInterop: true,
  sourceMap: false,
};

module.exports = {
  getCacheKey(source, filename) {
    return crypto.createHash('sha256').update('v2').update(filename).update(source).digest('hex');
  },
  process(source, filename) {
    if (!/\bimport\b|\bexport\b/.test(source)) {
      return { code: source };
    }
    const prepared = source.replace(
      /\bimport\.meta\.url\b/g,
      "require('node:url').pathToFileURL(__filename).href",
    );
    const output = ts.transpileModule(prepared, { compilerOptions, fileName: filename });

    return { code: output.outputText };
  },
};
