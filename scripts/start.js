'use strict';
// npm start: the whole chain on this machine. A simulated Eco-Devices box → the Pi instance (:1880) → MQTT →
// the server instance (:1881) → InfluxDB. MQTT_URL, INFLUX_URL and ECODEVICES_HOST point it at real ones instead.
// Without mosquitto on the PATH (or with DEMO_BROKER=embedded) the broker is aedes, in this process.
// Ctrl-C stops everything it started. `npm start -- --restore <dir>` starts it from a backup (`npm run backup`).
const { execFileSync, spawn } = require('node:child_process');
const fs = require('node:fs');
const path = require('node:path');
const { prepareInstance, ROOT } = require('./instance');
const net = require('node:net');
const { Aedes } = require('aedes');
const services = require('../dist/test/support/services');
const { projectBrokerSettings } = require('../dist/test/support/end-to-end');

const dir = path.resolve(process.env.DEMO_DIR || path.join(ROOT, '.nr', 'demo'));
const piPort = Number(process.env.PI_PORT || 1880);
const serverPort = Number(process.env.SERVER_PORT || 1881);
const restoreAt = process.argv.indexOf('--restore');
/** A backup of `npm run backup` to start from: InfluxDB's database and both userDirs. */
const restore = restoreAt > 0 ? path.resolve(process.argv[restoreAt + 1] || '') : null;
/** What this script started, stopped in reverse order. */
const running = [];

function onPath(bin) {
  return (process.env.PATH || '').split(path.delimiter).some((d) => fs.existsSync(path.join(d, bin)));
}

function child(name, args, env) {
  const log = fs.openSync(path.join(dir, `${name}.log`), 'a');
  const proc = spawn(process.execPath, args, { stdio: ['ignore', log, log], env });
  fs.closeSync(log);
  const exited = new Promise((resolve) => proc.once('exit', resolve));
  running.push({
    name,
    pid: proc.pid,
    stop: async () => {
      if (proc.exitCode === null && proc.signalCode === null) proc.kill('SIGTERM');
      const timer = setTimeout(() => proc.kill('SIGKILL'), 10_000);
      await exited;
      clearTimeout(timer);
    },
  });
  return proc;
}

async function main() {
  fs.rmSync(dir, { recursive: true, force: true });
  fs.mkdirSync(dir, { recursive: true });
  const env = { ...process.env };
  const lines = [];
  const state = { influx: null, userDirs: {} };
  if (restore && !fs.existsSync(path.join(restore, 'manifest.json')))
    throw new Error(`--restore ${restore}: not a backup of npm run backup (no manifest.json)`);

  if (!env.ECODEVICES_HOST) {
    const port = await services.freePort();
    child(
      'simulator',
      [
        path.join(ROOT, 'bin', 'teleinfo-sim.js'),
        '--port',
        String(port),
        '--contract',
        'HC',
        '--contract2',
        'TEMPO',
      ],
      env,
    );
    await services.waitFor('the simulated box', () => services.tcpOpen(port), 15_000);
    Object.assign(env, {
      ECODEVICES_HOST: '127.0.0.1',
      ECODEVICES_PORT: String(port),
      POLL_SECONDS: env.POLL_SECONDS || '5',
    });
    lines.push(`simulated Eco-Devices box  http://127.0.0.1:${port}/  (HC meter on T1, Tempo on T2)`);
  } else lines.push(`Eco-Devices box            ${env.ECODEVICES_HOST}`);

  if (!env.MQTT_URL && (env.DEMO_BROKER === 'embedded' || !onPath('mosquitto'))) {
    // No mosquitto: aedes, the maintained Node.js broker, in this process. It speaks MQTT 3.1.1 only and has no
    // shared subscriptions, so the instances use MQTT 3.1.1 and the server subscribes to every reading topic.
    const port = await services.freePort();
    const broker = await Aedes.createBroker();
    const server = net.createServer(broker.handle);
    await new Promise((resolve) => server.listen(port, '127.0.0.1', resolve));
    running.push({
      name: 'embedded-broker',
      pid: process.pid,
      stop: () => new Promise((resolve) => server.close(() => broker.close(resolve))),
    });
    Object.assign(env, {
      MQTT_URL: `mqtt://127.0.0.1:${port}`,
      MQTT_PROTOCOL: '4',
      MQTT_READINGS_TOPIC: env.MQTT_READINGS_TOPIC || 'teleinfo/+/+/reading',
    });
    lines.push(
      `aedes MQTT broker          ${env.MQTT_URL}  (in memory, MQTT 3.1.1; no shared subscriptions: the server subscribes to ${env.MQTT_READINGS_TOPIC})`,
    );
  } else if (!env.MQTT_URL) {
    fs.mkdirSync(path.join(dir, 'mosquitto'));
    const broker = await services.startMosquitto({
      dir: path.join(dir, 'mosquitto'),
      global: projectBrokerSettings(),
    });
    running.push({ name: 'mosquitto', pid: broker.pid, stop: () => broker.stop() });
    env.MQTT_URL = broker.url;
    lines.push(`mosquitto (project settings) ${broker.url}`);
  } else lines.push(`MQTT broker                ${env.MQTT_URL}`);

  if (!env.INFLUX_URL) {
    if (onPath('influxd')) {
      fs.mkdirSync(path.join(dir, 'influxd'));
      const influxd = await services.startInfluxd({ dir: path.join(dir, 'influxd') });
      running.push({ name: 'influxd', pid: influxd.pid, stop: () => influxd.stop() });
      const raw = /^([1-9]\d*[hdw]|INF)$/.test(env.INFLUX_RAW_RETENTION || '')
        ? env.INFLUX_RAW_RETENTION
        : '90d';
      if (restore) {
        // The database as it was backed up, its retention policies and rollups included.
        execFileSync(
          'influxd',
          ['restore', '-portable', '-host', influxd.rpc, path.join(restore, 'influxdb')],
          {
            stdio: ['ignore', 'ignore', 'inherit'],
          },
        );
        lines.push(`restored from              ${restore}`);
      }
      await services.createStackDatabase(influxd, 'teleinfo', undefined, raw);
      state.influx = { url: influxd.url, rpc: influxd.rpc, database: 'teleinfo' };
      env.INFLUX_URL = influxd.url;
      lines.push(`influxd 1.x                ${influxd.url}  (database teleinfo, raw readings kept ${raw})`);
    } else {
      // Nothing listens there: the server's spool keeps every reading and its status says so.
      env.INFLUX_URL = `http://127.0.0.1:${await services.freePort()}`;
      lines.push('no influxd on PATH: the server keeps readings in its spool (see its node status)');
    }
  } else lines.push(`InfluxDB                   ${env.INFLUX_URL}`);

  for (const [role, port] of [
    ['server', serverPort],
    ['pi', piPort],
  ]) {
    state.userDirs[role] = path.join(dir, role);
    // A restored userDir keeps its flows, credentials, context and spools: the launcher writes the shipped flow only
    // into a new one.
    if (restore) fs.cpSync(path.join(restore, 'node-red', role), state.userDirs[role], { recursive: true });
    const flows = role === 'server' ? withDashboard(lines, port) : undefined;
    const instance = prepareInstance({ role, userDir: path.join(dir, role), port, env, flows });
    child(role, instance.args, instance.env);
    await services.waitFor(
      `the ${role} instance`,
      async () => (await services.httpStatus(`http://127.0.0.1:${port}/settings`)) === 200,
      60_000,
    );
    lines.push(
      `${role === 'pi' ? 'Pi instance    ' : 'server instance'}            http://127.0.0.1:${port}/  (flows/${role}.json, log ${path.join(dir, `${role}.log`)})`,
    );
  }
  // What `npm run backup` reads to find what to back up.
  fs.writeFileSync(path.join(dir, 'demo.json'), JSON.stringify(state, null, 2));
  console.log(`node-red-contrib-teleinfo demo, in ${dir}:\n  ${lines.join('\n  ')}`);
  console.log(`pids: ${running.map((r) => `${r.name}=${r.pid}`).join(' ')}`);
  console.log('Ctrl-C stops everything.');
}

/**
 * The server flow, plus the Live dashboard example when Dashboard 2.0 is installed (a devDependency: the demo shows
 * what the readings look like; the package does not depend on it).
 */
function withDashboard(lines, port) {
  try {
    // It has no main entry: its package.json says it is there.
    require.resolve('@flowfuse/node-red-dashboard/package.json');
  } catch {
    lines.push('no @flowfuse/node-red-dashboard installed: no live dashboard');
    return undefined;
  }
  const read = (file) => JSON.parse(fs.readFileSync(path.join(ROOT, file), 'utf8'));
  lines.push(`live dashboard             http://127.0.0.1:${port}/dashboard/teleinfo`);
  return [...read('flows/server.json'), ...read('examples/Live dashboard.json')];
}

let stopping = false;
async function stopAll(code) {
  if (stopping) return;
  stopping = true;
  for (const r of running.reverse()) await r.stop().catch(() => undefined);
  console.log('demo stopped');
  process.exit(code);
}
for (const signal of ['SIGINT', 'SIGTERM']) process.on(signal, () => void stopAll(0));
main().catch((e) => {
  console.error(`npm start: ${e.message}`);
  void stopAll(1);
});
