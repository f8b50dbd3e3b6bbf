#!/usr/bin/env node
'use strict';
// A simulated Eco-Devices box and Linky meter: `teleinfo-sim --help`.
require('../dist/nodes/lib/simulator/cli.js')
  .main(process.argv.slice(2))
  .catch((e) => {
    process.stderr.write(`teleinfo-sim: ${e.message}\n`);
    process.exit(1);
  });
