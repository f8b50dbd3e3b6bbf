'use strict';
// The randomized fault schedule of test/e2e/acknowledgement.test.ts, for an hour (FAULT_SECONDS to change it;
// FAULT_SEED to replay a schedule it printed): `npm run soak`.
const { spawnSync } = require('node:child_process');
const path = require('node:path');

const file = path.resolve(__dirname, '..', 'dist', 'test', 'e2e', 'acknowledgement.test.js');
const result = spawnSync(process.execPath, ['--test', '--test-name-pattern=randomized faults', file], {
  stdio: 'inherit',
  env: { ...process.env, CI: 'true', FAULT_SECONDS: process.env.FAULT_SECONDS ?? '3600' },
});
process.exit(result.status ?? 1);
