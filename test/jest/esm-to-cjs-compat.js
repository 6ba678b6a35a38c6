'use strict';
// Runs in front of test/jest/esm-to-cjs.js for two cases that transformer does not cover.
//
// 1. ESM files that build their own `require` with `const require = createRequire(import.meta.url)`
//    (@nestjs/swagger 12.1's swagger-ui.js, @nestjs/mapped-types). Compiled to CommonJS, that line
//    redeclares the module wrapper's `require` ("Identifier 'require' has already been declared").
//    CommonJS already has a `require` that resolves from the same file, so the line is dropped.
//
// 2. CommonJS files that load modules with `import("...")` (PGlite 0.5's dist/index.cjs loads
//    fs, zlib and node:module that way). Jest's VM refuses dynamic import without
//    --experimental-vm-modules. Compiling them with TypeScript does not help: PGlite declares its
//    own `var require` in the same function, which the compiled `require(...)` then calls while it
//    is still undefined. So those files are left as they are, and each literal `import("x")`
//    becomes a call to a helper bound to the module's own require.
const base = require('./esm-to-cjs');

const SELF_REQUIRE =
  /^[ \t]*(?:const|let|var)[ \t]+require[ \t]*=[ \t]*(?:\w+\.)?createRequire\(import\.meta\.url\);?[ \t]*$/gm;
const DYNAMIC_IMPORT = /\bimport\(\s*("[^"\n]+"|'[^'\n]+')\s*\)/g;
// A function declaration appended at the end: hoisted, and the file's "use strict" stays first.
const IMPORT_HELPER =
  '\nfunction __jestDynamicImport(id) { return Promise.resolve().then(() => {' +
  ' const m = require(id);' +
  ' return m && m.__esModule ? m : Object.assign({ default: m }, m); }); }\n';

function prepare(source) {
  return source.replace(
    SELF_REQUIRE,
    '/* createRequire(import.meta.url) dropped: CommonJS has require */',
  );
}

function isCommonJs(filename) {
  return filename.endsWith('.cjs');
}

module.exports = {
  getCacheKey(source, filename, ...rest) {
    return `compat-v1-${base.getCacheKey(isCommonJs(filename) ? source : prepare(source), filename, ...rest)}`;
  },
  process(source, filename, ...rest) {
    if (isCommonJs(filename)) {
      if (!DYNAMIC_IMPORT.test(source)) {
        return { code: source };
      }
      DYNAMIC_IMPORT.lastIndex = 0;

      return {
        code: `${source.replace(DYNAMIC_IMPORT, '__jestDynamicImport($1)')}${IMPORT_HELPER}`,
      };
    }

    return base.process(prepare(source), filename, ...rest);
  },
};
