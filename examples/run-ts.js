#!/usr/bin/env node
/**
 * Runs a TypeScript CDKTF app without a separate compile step: .ts files are transpiled in memory with the
 * project's own `typescript` (no type check: `npm run build:ts` / the unit tests do that).
 *
 *   node examples/run-ts.js examples/quickstart/main.ts
 *
 * This is the `app` command of the examples' cdktf.json files (ts-node is not a dependency).
 */
'use strict';
const fs = require('node:fs');
const path = require('node:path');
const Module = require('node:module');
const ts = require('typescript');

require.extensions['.ts'] = function compileTs(module, filename) {
  const src = fs.readFileSync(filename, 'utf8');
  const out = ts.transpileModule(src, {
    fileName: filename,
    compilerOptions: {
      target: ts.ScriptTarget.ES2022,
      module: ts.ModuleKind.CommonJS,
      esModuleInterop: true,
      sourceMap: false,
      inlineSourceMap: true,
    },
  });
  module._compile(out.outputText, filename);
};

const entry = process.argv[2];
if (!entry) {
  process.stderr.write('usage: node run-ts.js APP.ts\n');
  process.exit(2);
}
// The app sees argv as if it had been started directly: [node, APP.ts, ...args].
process.argv.splice(1, 1);
// cdktf runs the app from the project directory; resolve the entry there.
Module._load(path.resolve(entry), null, true);
