'use strict';
// Compile TypeScript, then put each node's editor files (.html, locales/, icons/) beside its .js,
// which is where the Node-RED loader looks for them.
const { execFileSync } = require('node:child_process');
const fs = require('node:fs');
const path = require('node:path');

const root = path.resolve(__dirname, '..');
const dist = path.join(root, 'dist');
fs.rmSync(dist, { recursive: true, force: true });
execFileSync(process.execPath, [require.resolve('typescript/bin/tsc'), '-p', root], { stdio: 'inherit' });

const nodesDir = path.join(root, 'nodes');
for (const entry of fs.readdirSync(nodesDir, { withFileTypes: true })) {
  if (!entry.isDirectory() || entry.name === 'lib') continue;
  const from = path.join(nodesDir, entry.name);
  const to = path.join(dist, 'nodes', entry.name);
  for (const item of fs.readdirSync(from)) {
    if (item.endsWith('.ts')) continue;
    fs.cpSync(path.join(from, item), path.join(to, item), { recursive: true });
  }
}
