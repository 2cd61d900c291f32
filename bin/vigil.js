#!/usr/bin/env node
// The `vigil` command. Runs the TypeScript sources through tsx, so there is no build step to
// forget and no stale dist/ to debug.
'use strict';
require('tsx/cjs');
require('../scripts/cli.ts')
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
