'use strict';
// A Node-RED instance running one of the shipped flows (flows/pi.json or flows/server.json) with this package
// loaded from the working tree: used by `npm start` and the end-to-end tests.
const fs = require('node:fs');
const path = require('node:path');

const ROOT = path.resolve(__dirname, '..');

/** The credentials each shipped flow needs, by config node id, from the environment. */
const CREDENTIALS = {
  pi: (env) => ({
    'pi-broker': { user: env.MQTT_USER || '', password: env.MQTT_PASSWORD || '' },
    'pi-box': { user: env.ECODEVICES_USER || '', password: env.ECODEVICES_PASSWORD || '' },
  }),
  server: (env) => ({
    'srv-broker': { user: env.MQTT_USER || '', password: env.MQTT_PASSWORD || '' },
    'srv-influx': {
      user: env.INFLUX_USER || '',
      password: env.INFLUX_PASSWORD || '',
      token: env.INFLUX_TOKEN || '',
    },
  }),
};

/** What each flow reads from the environment, with the demo's defaults. */
function defaults(role, env) {
  const common = { MQTT_URL: 'mqtt://127.0.0.1:1883', MQTT_CA_FILE: '' };
  if (role === 'pi') {
    const piId = env.PI_ID || 'pi-1';
    return {
      ...common,
      PI_ID: piId,
      PI_STATUS_TOPIC: `teleinfo/${piId}/status`,
      MQTT_CLIENT_ID: `teleinfo-${piId}`,
      ECODEVICES_HOST: '127.0.0.1',
      ECODEVICES_PORT: '80',
      POLL_SECONDS: '10',
      TIC_TCP_HOST: '127.0.0.1',
      TIC_TCP_PORT: '3001',
    };
  }
  return {
    ...common,
    MQTT_CLIENT_ID: 'teleinfo-server-1',
    // Several servers share the load; a single one may use teleinfo/+/+/reading (see README, broker restarts).
    MQTT_READINGS_TOPIC: '$share/teleinfo-ingest/teleinfo/+/+/reading',
    INFLUX_URL: 'http://127.0.0.1:8086',
    INFLUX_DB: 'teleinfo',
  };
}

/**
 * Write the userDir of an instance: settings.js (port, plaintext credentials file, this package), the shipped
 * flow as flows.json, and flows_cred.json from the environment (Node-RED does not read inline credentials from a
 * flow file). Returns the node arguments and environment to start it with.
 */
function prepareInstance({ role, userDir, port, env = process.env, flows }) {
  const merged = { ...defaults(role, env), ...env };
  fs.mkdirSync(userDir, { recursive: true });
  const settings = path.join(userDir, 'settings.js');
  fs.writeFileSync(
    settings,
    `module.exports = require(${JSON.stringify(path.join(__dirname, 'node-red-settings.js'))})({ port: ${port} });\n`,
  );
  const flowJson = flows ?? JSON.parse(fs.readFileSync(path.join(ROOT, 'flows', `${role}.json`), 'utf8'));
  fs.writeFileSync(path.join(userDir, 'flows.json'), JSON.stringify(flowJson, null, 2));
  fs.writeFileSync(path.join(userDir, 'flows_cred.json'), JSON.stringify(CREDENTIALS[role](merged), null, 2));
  return {
    args: [require.resolve('node-red/red.js'), '--userDir', userDir, '--settings', settings],
    env: merged,
  };
}

module.exports = { prepareInstance, ROOT };

// `node scripts/instance.js <pi|server> <userDir> [port]`: prepare and run one instance in this process's place
// (the docker-compose entry point).
if (require.main === module) {
  const [role, userDir, port = '1880'] = process.argv.slice(2);
  if (!CREDENTIALS[role] || !userDir) {
    console.error('usage: node scripts/instance.js <pi|server> <userDir> [port]');
    process.exit(2);
  }
  const { spawn } = require('node:child_process');
  const instance = prepareInstance({ role, userDir, port: Number(port) });
  const child = spawn(process.execPath, instance.args, { stdio: 'inherit', env: instance.env });
  for (const signal of ['SIGINT', 'SIGTERM']) process.on(signal, () => child.kill(signal));
  child.on('exit', (code) => process.exit(code ?? 0));
}
