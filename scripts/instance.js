'use strict';
// A Node-RED instance running one of the shipped flows (flows/pi.json or flows/server.json) with this package
// loaded from the working tree: used by `npm start` and the end-to-end tests.
const crypto = require('node:crypto');
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
    // The Live dashboard example's own connection, when the demo adds it.
    'dash-broker': { user: env.MQTT_USER || '', password: env.MQTT_PASSWORD || '' },
    'srv-influx': {
      user: env.INFLUX_USER || '',
      password: env.INFLUX_PASSWORD || '',
      token: env.INFLUX_TOKEN || '',
    },
    // The Pi status points (Grafana's "Pis online"), written by a core http request node.
    'srv-pi-write': { user: env.INFLUX_USER || '', password: env.INFLUX_PASSWORD || '' },
  }),
};

/**
 * Node's flags for each instance. A Pi has little memory: a small young generation (2 MiB semi-spaces instead of
 * up to 16) and an old generation that grows by 20 % at a time (V8 otherwise picks 1.1 to 4×) keep it near 90 MiB
 * polling and near 107 MiB replaying a full 50 MB spool, against 122 and 233 MiB with Node's defaults
 * (`npm run bench:pi`). V8's size mode (`--optimize-for-size`) kept it 5 MiB smaller but cost a Pi under load
 * about 10 % more CPU per reading (`npm run bench:e2e`). A server takes bursts of readings: 32 MiB semi-spaces
 * (instead of up to 16) make fewer young collections, which cost influx-teleinfo-out about 15 % of its rate under
 * a burst (`npm run bench:influx` runs Node-RED with these flags).
 */
const NODE_ARGS = {
  pi: ['--max-semi-space-size=2', '--heap-growing-percent=20'],
  server: ['--max-semi-space-size=32'],
};

const LOOPBACK = new Set(['127.0.0.1', 'localhost', '::1']);

/**
 * What the instance may do with the security it is given: listening beyond loopback needs the editor locked
 * (adminAuth from a bcrypt hash) and the credentials encrypted. Throws what is missing.
 */
function checkSecurity(env) {
  const host = env.NODE_RED_HOST || '127.0.0.1';
  const hash = env.NODE_RED_ADMIN_HASH;
  if (hash && !/^\$2[aby]?\$\d{2}\$[./A-Za-z0-9]{53}$/.test(hash))
    throw new Error('NODE_RED_ADMIN_HASH is not a bcrypt hash: make one with `npx node-red admin hash-pw`');
  if (LOOPBACK.has(host)) return;
  const missing = ['NODE_RED_ADMIN_HASH', 'NODE_RED_CREDENTIAL_SECRET'].filter((k) => !env[k]);
  if (missing.length > 0)
    throw new Error(
      `refusing to listen on ${host} without ${missing.join(' and ')}: anyone who reaches the editor could run code ` +
        'and read its credentials (make the hash with `npx node-red admin hash-pw`)',
    );
}

/** flows_cred.json as Node-RED writes it with a credential secret (aes-256-ctr under sha256(secret)). */
function credentialsFile(credentials, secret) {
  if (!secret) return credentials;
  const key = crypto.createHash('sha256').update(secret).digest();
  const iv = crypto.randomBytes(16);
  const cipher = crypto.createCipheriv('aes-256-ctr', key, iv);
  return {
    $:
      iv.toString('hex') +
      cipher.update(JSON.stringify(credentials), 'utf8', 'base64') +
      cipher.final('base64'),
  };
}

/**
 * Write the userDir of an instance: settings.js (port; secrets are read from the environment at start), and, on
 * its first start only (or with `reseed`), the shipped flow as flows.json and flows_cred.json from the environment
 * (Node-RED does not read inline credentials from a flow file), encrypted with NODE_RED_CREDENTIAL_SECRET. Later
 * starts keep what was deployed in the editor. Returns the node arguments and environment to start it with.
 */
function prepareInstance({ role, userDir, port, env = process.env, flows, reseed = false }) {
  // The variables each flow reads, with their defaults, are declared in the flow itself (its global and tab
  // environment, editable in the editor); the process environment overrides them.
  checkSecurity(env);
  fs.mkdirSync(userDir, { recursive: true });
  const settings = path.join(userDir, 'settings.js');
  fs.writeFileSync(
    settings,
    `module.exports = require(${JSON.stringify(path.join(__dirname, 'node-red-settings.js'))})({ port: ${port}, role: ${JSON.stringify(role)} });\n`,
  );
  const flowFile = path.join(userDir, 'flows.json');
  if (reseed || !fs.existsSync(flowFile)) {
    const flowJson = flows ?? JSON.parse(fs.readFileSync(path.join(ROOT, 'flows', `${role}.json`), 'utf8'));
    // MQTT_PROTOCOL=4: a broker that speaks only MQTT 3.1.1 (the demo's aedes); the shipped flows use MQTT 5.
    if (env.MQTT_PROTOCOL === '4')
      for (const n of flowJson) if (n.type === 'mqtt-broker') n.protocolVersion = '4';
    fs.writeFileSync(flowFile, JSON.stringify(flowJson, null, 2));
    const credentials = credentialsFile(CREDENTIALS[role](env), env.NODE_RED_CREDENTIAL_SECRET);
    fs.writeFileSync(path.join(userDir, 'flows_cred.json'), JSON.stringify(credentials, null, 2), {
      mode: 0o600,
    });
  }
  return {
    args: [
      ...NODE_ARGS[role],
      require.resolve('node-red/red.js'),
      '--userDir',
      userDir,
      '--settings',
      settings,
    ],
    env,
  };
}

module.exports = { prepareInstance, NODE_ARGS, ROOT };

// `node scripts/instance.js <pi|server> <userDir> [port] [--reseed]`: prepare one instance and print the arguments
// to start Node with, one per line, for scripts/instance.sh (the containers' entry point), which then becomes that
// Node-RED. --reseed (or TELEINFO_RESEED=1) replaces the flows and credentials with the shipped ones.
if (require.main === module) {
  const args = process.argv.slice(2);
  const reseed = args.includes('--reseed') || process.env.TELEINFO_RESEED === '1';
  const [role, userDir, port = '1880'] = args.filter((a) => a !== '--reseed');
  if (!CREDENTIALS[role] || !userDir) {
    console.error('usage: node scripts/instance.js <pi|server> <userDir> [port] [--reseed]');
    process.exit(2);
  }
  try {
    const instance = prepareInstance({ role, userDir, port: Number(port), reseed });
    const unsplittable = instance.args.find((a) => a.includes('\n'));
    if (unsplittable) throw new Error(`an argument holds a newline: ${JSON.stringify(unsplittable)}`);
    process.stdout.write(instance.args.join('\n') + '\n');
  } catch (e) {
    console.error(`instance.js: ${e.message}`);
    process.exit(2);
  }
}
