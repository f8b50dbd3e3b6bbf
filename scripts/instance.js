'use strict';
// A Node-RED instance running one of the shipped flows (flows/pi.json or flows/server.json) with this package
// loaded from the working tree: used by `npm start` and the end-to-end tests.
const { Buffer } = require('node:buffer');
const crypto = require('node:crypto');
const fs = require('node:fs');
const path = require('node:path');
const { checkSecurity } = require('./node-red-settings');

const ROOT = path.resolve(__dirname, '..');

/**
 * The credentials of each shipped flow's config nodes, by node id: the environment variable each one is read from.
 * flows_cred.json holds `${VARIABLE}`, which Node-RED replaces with the variable's value when it starts the node:
 * the secrets themselves never reach the userDir, and a password changed in the environment applies at the next start.
 */
const CREDENTIALS = {
  pi: {
    'pi-broker': { user: 'MQTT_USER', password: 'MQTT_PASSWORD' },
    'pi-box': { user: 'ECODEVICES_USER', password: 'ECODEVICES_PASSWORD' },
  },
  server: {
    'srv-broker': { user: 'MQTT_USER', password: 'MQTT_PASSWORD' },
    // The Live dashboard example's own connection, when the demo adds it.
    'dash-broker': { user: 'MQTT_USER', password: 'MQTT_PASSWORD' },
    'srv-influx': { user: 'INFLUX_USER', password: 'INFLUX_PASSWORD', token: 'INFLUX_TOKEN' },
    // The Pi status points (Grafana's "Pis online"), written by a core http request node.
    'srv-pi-write': { user: 'INFLUX_USER', password: 'INFLUX_PASSWORD' },
  },
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

/** The key Node-RED encrypts flows_cred.json with: aes-256-ctr under sha256(secret), the IV in front. */
const credentialKey = (secret) => crypto.createHash('sha256').update(secret).digest();

/** flows_cred.json as Node-RED writes it: encrypted with the credential secret, if there is one. */
function credentialsFile(credentials, secret) {
  if (!secret) return credentials;
  const iv = crypto.randomBytes(16);
  const cipher = crypto.createCipheriv('aes-256-ctr', credentialKey(secret), iv);
  return {
    $:
      iv.toString('hex') +
      cipher.update(JSON.stringify(credentials), 'utf8', 'base64') +
      cipher.final('base64'),
  };
}

/** The credentials of a flows_cred.json, or null if they cannot be read (another secret, a damaged file). */
function readCredentials(text, secret) {
  try {
    const file = JSON.parse(text);
    if (typeof file.$ !== 'string') return file;
    if (!secret) return null;
    const decipher = crypto.createDecipheriv(
      'aes-256-ctr',
      credentialKey(secret),
      Buffer.from(file.$.slice(0, 32), 'hex'),
    );
    return JSON.parse(decipher.update(file.$.slice(32), 'base64', 'utf8') + decipher.final('utf8'));
  } catch {
    return null;
  }
}

/**
 * Write a file of the userDir by renaming a new one over it: the official image ships /data/flows.json owned by
 * root, which the node-red user can replace in its own folder but not write to.
 */
function replaceFile(file, text, mode = 0o644) {
  const temporary = `${file}.${process.pid}.tmp`;
  fs.writeFileSync(temporary, text, { mode });
  fs.renameSync(temporary, file);
}

/**
 * Whether a userDir's flows.json is one to seed over: missing, empty, or the official image's placeholder (a tab
 * and a comment warning to mount /data), which Docker copies into every new volume.
 */
function unseeded(flowFile) {
  if (!fs.existsSync(flowFile)) return true;
  let flows;
  try {
    flows = JSON.parse(fs.readFileSync(flowFile, 'utf8') || '[]');
  } catch {
    return false; // the user's, damaged: Node-RED says so, and nothing here overwrites it
  }
  return (
    Array.isArray(flows) &&
    (flows.length === 0 ||
      (flows.every((n) => n.type === 'tab' || n.type === 'comment') &&
        flows.some((n) => n.type === 'comment' && /container with a volume/.test(n.name))))
  );
}

/**
 * Whether TELEINFO_RESEED asks for a reseed now: once per value, so that a container restarted with the same
 * environment does not seed again. The value applied is kept in the userDir; an empty one forgets it.
 */
function reseedRequested(userDir, env) {
  const marker = path.join(userDir, '.teleinfo-reseed');
  const requested = env.TELEINFO_RESEED || '';
  const applied = fs.existsSync(marker) ? fs.readFileSync(marker, 'utf8') : '';
  if (requested === applied) return false;
  if (requested === '') fs.rmSync(marker);
  else replaceFile(marker, requested);
  return requested !== '';
}

/**
 * The shipped flow for a role: with TIC_DEVICE set (a serial adapter mapped into a Pi's container), the Pi reads the
 * meter's TIC rather than an Eco-Devices box.
 */
function shippedFlow(role, env) {
  const flows = JSON.parse(fs.readFileSync(path.join(ROOT, 'flows', `${role}.json`), 'utf8'));
  if (role === 'pi' && env.TIC_DEVICE)
    for (const n of flows) if (n.type === 'tab') n.disabled = n.id !== 'tic-tab';
  return flows;
}

/**
 * Write the userDir of an instance: settings.js (port; secrets are read from the environment at start); the shipped
 * flow as flows.json on its first start (or with `reseed`, or once for each new TELEINFO_RESEED value), later starts
 * keeping what was deployed in the editor; and, at every start, the shipped config nodes' credentials in
 * flows_cred.json as references to the environment variables that are set (see CREDENTIALS), encrypted with
 * NODE_RED_CREDENTIAL_SECRET, next to whatever else the editor stored there. Returns the node arguments and
 * environment to start it with.
 */
function prepareInstance({ role, userDir, port, env = process.env, flows, reseed = false }) {
  // The variables each flow reads, with their defaults, are declared in the flow itself (its global and tab
  // environment, editable in the editor); the process environment overrides them.
  checkSecurity(env);
  fs.mkdirSync(userDir, { recursive: true });
  const settings = path.join(userDir, 'settings.js');
  replaceFile(
    settings,
    `module.exports = require(${JSON.stringify(path.join(__dirname, 'node-red-settings.js'))})({ port: ${port}, role: ${JSON.stringify(role)}, userDir: __dirname });\n`,
  );
  const flowFile = path.join(userDir, 'flows.json');
  const credentialFile = path.join(userDir, 'flows_cred.json');
  const seed = reseedRequested(userDir, env) || reseed || unseeded(flowFile);
  if (seed) {
    const flowJson = flows ?? shippedFlow(role, env);
    // MQTT_PROTOCOL=4: a broker that speaks only MQTT 3.1.1 (the demo's aedes); the shipped flows use MQTT 5. Without
    // user properties a reading cannot carry its number: the Pi's spools release on the broker's PUBACK and overlap.
    if (env.MQTT_PROTOCOL === '4')
      for (const n of flowJson) {
        if (n.type === 'mqtt-broker') n.protocolVersion = '4';
        if (n.type === 'teleinfo-spool' && n.ack === 'server') n.ack = 'broker';
      }
    if (fs.existsSync(flowFile) && !unseeded(flowFile))
      fs.copyFileSync(flowFile, path.join(userDir, 'flows.json.before-reseed'));
    replaceFile(flowFile, JSON.stringify(flowJson, null, 2));
  }

  const secret = env.NODE_RED_CREDENTIAL_SECRET;
  const onDisk = fs.existsSync(credentialFile) ? fs.readFileSync(credentialFile, 'utf8') : null;
  let credentials = seed || onDisk === null ? {} : readCredentials(onDisk, secret);
  if (credentials === null) {
    fs.copyFileSync(credentialFile, path.join(userDir, 'flows_cred.json.unreadable'));
    console.error(
      'instance.js: flows_cred.json cannot be read with NODE_RED_CREDENTIAL_SECRET (was it changed?): the shipped ' +
        'credentials are written again from the environment, those entered in the editor must be entered again ' +
        '(the old file is kept as flows_cred.json.unreadable)',
    );
    credentials = {};
  }
  const before = JSON.stringify(credentials);
  for (const [id, fields] of Object.entries(CREDENTIALS[role]))
    for (const [field, variable] of Object.entries(fields))
      if (env[variable]) (credentials[id] ??= {})[field] = `\${${variable}}`;
  if (seed || onDisk === null || JSON.stringify(credentials) !== before)
    replaceFile(credentialFile, JSON.stringify(credentialsFile(credentials, secret), null, 2), 0o600);
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
// Node-RED. --reseed replaces the flows and credentials with the shipped ones (TELEINFO_RESEED: once per value).
if (require.main === module) {
  const args = process.argv.slice(2);
  const reseed = args.includes('--reseed');
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
