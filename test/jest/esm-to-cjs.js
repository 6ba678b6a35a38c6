'use strict';
// Jest on Node 20 cannot require() ESM-only packages (NestJS 12, jose, otplib and friends).
// This transformer rewrites those packages to CommonJS; jest.config.js lists which ones.
//
// Two cases need more than a plain compile:
// 1. ESM files that build their own `require` with `const require = createRequire(import.meta.url)`
//    (@nestjs/swagger 12.1's swagger-ui.js, @nestjs/mapped-types). Compiled to CommonJS, that line
//    redeclares the module wrapper's `require`, so it is dropped: CommonJS already has one.
// 2. CommonJS files that load modules with `import("...")` (PGlite 0.5's dist/index.cjs loads fs,
//    zlib and node:module that way), which jest's VM refuses without --experimental-vm-modules.
//    Compiling them does not help (PGlite declares its own `var require` in the same function),
//    so they are left as they are and each literal `import("x")` calls a helper bound to the
//    module's own require.
const crypto = require('node:crypto');
const ts = require('typescript');

const compilerOptions = {
  module: ts.ModuleKind.CommonJS,
  target: ts.ScriptTarget.ES2022,
  allowJs: true,
  esModuleInterop: true,
  sourceMap: false,
};

const SELF_REQUIRE =
  /^[ \t]*(?:const|let|var)[ \t]+require[ \t]*=[ \t]*(?:\w+\.)?createRequire\(import\.meta\.url\);?[ \t]*$/gm;
const DYNAMIC_IMPORT = /\bimport\(\s*("[^"\n]+"|'[^'\n]+')\s*\)/g;
// A function declaration appended at the end: hoisted, and the file's "use strict" stays first.
const IMPORT_HELPER =
  '\nfunction __jestDynamicImport(id) { return Promise.resolve().then(() => {' +
  ' const m = require(id);' +
  ' return m && m.__esModule ? m : Object.assign({ default: m }, m); }); }\n';

function transformCommonJs(source) {
  if (!DYNAMIC_IMPORT.test(source)) {
    return source;
  }
  DYNAMIC_IMPORT.lastIndex = 0;

  return `${source.replace(DYNAMIC_IMPORT, '__jestDynamicImport($1)')}${IMPORT_HELPER}`;
}

function transformModule(source, filename) {
  if (!/\bimport\b|\bexport\b/.test(source)) {
    return source;
  }
  const prepared = source
    .replace(SELF_REQUIRE, '/* createRequire(import.meta.url) dropped: CommonJS has require */')
    .replace(/\bimport\.meta\.url\b/g, "require('node:url').pathToFileURL(__filename).href");

  return ts.transpileModule(prepared, { compilerOptions, fileName: filename }).outputText;
}

module.exports = {
  getCacheKey(source, filename) {
    return crypto.createHash('sha256').update('v3').update(filename).update(source).digest('hex');
  },
  process(source, filename) {
    const code = filename.endsWith('.cjs')
      ? transformCommonJs(source)
      : transformModule(source, filename);

    return { code };
  },
};
