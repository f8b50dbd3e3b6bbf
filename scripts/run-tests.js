'use strict';
// Run the compiled tests with node's own test runner: `node scripts/run-tests.js [unit|nodes|integration|e2e ...]`.
const { spawnSync } = require('node:child_process');
const fs = require('node:fs');
const path = require('node:path');

const root = path.resolve(__dirname, '..', 'dist', 'test');
const suites = process.argv.slice(2);
const files = [];
for (const suite of suites.length > 0 ? suites : fs.readdirSync(root)) {
  const dir = path.join(root, suite);
  if (!fs.existsSync(dir) || suite === 'support') continue;
  for (const f of fs.readdirSync(dir, { recursive: true }))
    if (String(f).endsWith('.test.js')) files.push(path.join(dir, f));
}
if (files.length === 0) {
  console.error('no test files found: run `npm run build` first');
  process.exit(1);
}
const result = spawnSync(process.execPath, ['--test', '--test-concurrency=1', ...files], {
  stdio: 'inherit',
});
process.exit(result.status ?? 1);
