#!/usr/bin/env node
// The `vigil` command. Runs the compiled JavaScript in dist/ (`npm run build`; scripts/demo.sh and
// scripts/test.sh build when the sources changed), so production needs no TypeScript loader.
'use strict';
const { existsSync } = require('node:fs');
const { join } = require('node:path');

const cli = join(__dirname, '..', 'dist', 'scripts', 'cli.js');
if (!existsSync(cli)) {
  process.stderr.write('vigil: dist/scripts/cli.js is missing; run `npm run build` first\n');
  process.exit(1);
}
// Stack traces point at the TypeScript sources (the build writes source maps).
process.setSourceMapsEnabled(true);
require(cli)
  .main(process.argv.slice(2))
  .then((code) => {
    process.exitCode = code;
    // A failed start may leave clients (Redis, Kafka) connected: don't hang on them.
    if (code !== 0) process.exit(code);
  })
  .catch((error) => {
    process.stderr.write(`vigil: ${error && error.message ? error.message : String(error)}\n`);
    process.exit(1);
  });
