'use strict';
// npm start: Node-RED on http://127.0.0.1:1880 with this package loaded from the working tree.
const { spawn } = require('node:child_process');
const fs = require('node:fs');
const path = require('node:path');

const root = path.resolve(__dirname, '..');
const userDir = path.join(root, '.nr', 'dev');
const port = Number(process.env.PORT || 1880);
fs.mkdirSync(userDir, { recursive: true });
fs.writeFileSync(
  path.join(userDir, 'settings.js'),
  `module.exports = require(${JSON.stringify(path.join(__dirname, 'node-red-settings.js'))})({ port: ${port} });\n`,
);
console.log(
  `Node-RED with node-red-contrib-teleinfo: http://127.0.0.1:${port}/ (userDir ${userDir}); Ctrl-C stops it`,
);
const child = spawn(
  process.execPath,
  [require.resolve('node-red/red.js'), '--userDir', userDir, '--settings', path.join(userDir, 'settings.js')],
  {
    stdio: 'inherit',
  },
);
for (const signal of ['SIGINT', 'SIGTERM']) process.on(signal, () => child.kill(signal));
child.on('exit', (code) => process.exit(code ?? 0));
