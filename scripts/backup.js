'use strict';
// npm run backup [-- <dir>]: a backup of the running `npm start` demo (DEMO_DIR, .nr/demo by default) into <dir>
// (backups/demo-<time> by default): InfluxDB's database in its portable format (`influxd backup -portable`: raw
// readings, rollups, retention policies), and both Node-RED userDirs (flows, encrypted credentials, context, spools).
// `npm start -- --restore <dir>` starts a demo from it. The Docker stack has its own: scripts/backup.sh.
const { execFileSync } = require('node:child_process');
const fs = require('node:fs');
const path = require('node:path');

const ROOT = path.resolve(__dirname, '..');
const demoDir = path.resolve(process.env.DEMO_DIR || path.join(ROOT, '.nr', 'demo'));
const out = path.resolve(
  process.argv[2] || path.join(ROOT, 'backups', `demo-${new Date().toISOString().replace(/[:.]/g, '-')}`),
);

function main() {
  const stateFile = path.join(demoDir, 'demo.json');
  if (!fs.existsSync(stateFile))
    throw new Error(`no demo running in ${demoDir} (no demo.json): start it with npm start`);
  const state = JSON.parse(fs.readFileSync(stateFile, 'utf8'));
  if (fs.existsSync(out) && fs.readdirSync(out).length > 0) throw new Error(`${out} is not empty`);
  fs.mkdirSync(out, { recursive: true });
  const taken = new Date().toISOString();
  if (state.influx) {
    execFileSync(
      'influxd',
      [
        'backup',
        '-portable',
        '-database',
        state.influx.database,
        '-host',
        state.influx.rpc,
        path.join(out, 'influxdb'),
      ],
      { stdio: ['ignore', 'ignore', 'inherit'] },
    );
  }
  for (const [role, userDir] of Object.entries(state.userDirs)) {
    // Everything Node-RED keeps but the modules it could install again.
    fs.cpSync(userDir, path.join(out, 'node-red', role), {
      recursive: true,
      filter: (src) => !/(^|[/\\])(node_modules|\.npm)([/\\]|$)/.test(path.relative(userDir, src)),
    });
  }
  const manifest = {
    taken,
    package: JSON.parse(fs.readFileSync(path.join(ROOT, 'package.json'), 'utf8')).version,
    influxdb: state.influx ? `database ${state.influx.database}, portable format` : null,
    nodeRed: Object.keys(state.userDirs),
  };
  fs.writeFileSync(path.join(out, 'manifest.json'), JSON.stringify(manifest, null, 2));
  console.log(
    `backup of the demo in ${out}: ${manifest.influxdb ?? 'no InfluxDB'}; userDirs ${manifest.nodeRed.join(', ')}`,
  );
  console.log(`restore: npm start -- --restore ${path.relative(process.cwd(), out) || '.'}`);
}

try {
  main();
} catch (e) {
  console.error(`npm run backup: ${e.message}`);
  process.exit(1);
}
