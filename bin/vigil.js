#!/usr/bin/env node
// The `vigil` command. Runs the TypeScript sources through tsx, so there is no build step to
// forget and no stale dist/ to debug.
'use strict';
require('tsx/cjs');
require('../scripts/cli.ts')
  .main(process.argv.slice(2))
  .then((code) => {
    process.exitCode = code;
  })
  .catch((error) => {
    process.stderr.write(`vigil: ${error && error.message ? error.message : String(error)}\n`);
    process.exitCode = 1;
  });
