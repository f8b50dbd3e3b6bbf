'use strict';
// Settings for a Node-RED instance that loads this package from the working tree (demo, tests, containers).
// Secrets are read from the environment when Node-RED starts, never written into the userDir:
//   NODE_RED_HOST               where the editor listens (default 127.0.0.1)
//   NODE_RED_ADMIN_USER         the editor's account (default admin)
//   NODE_RED_ADMIN_HASH         its bcrypt password hash (`npx node-red admin hash-pw`); with it, adminAuth is on
//   NODE_RED_CREDENTIAL_SECRET  the key flows_cred.json is encrypted with
//   PI_CORE_NODES               `all`: a Pi loads every core node (by default not those listed in PI_LEAN_EXCLUDES)
// An instance listening beyond loopback without the last two is refused here, whoever starts Node-RED with them.
const fs = require('node:fs');
const path = require('node:path');

const LOOPBACK = new Set(['127.0.0.1', 'localhost', '::1']);

/**
 * What an instance may do with the security it is given: listening beyond loopback needs the editor locked
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

/**
 * Core node files a Pi does not load, with the types each registers: the Pi flow uses none of them, and their
 * libraries (tough-cookie, form-data and hpagent for http request; cheerio, xml2js, js-yaml, ws…) are loaded at start
 * whether used or not. Node-RED with no flow and the Pi's Node flags: 93 MiB resident with every core node, 88 without
 * http request alone. The common ones stay (function, change, file, http in, json, template). A file whose types the
 * userDir's flows use is loaded after all (a flow of an earlier version, or one edited in the editor, starts as it
 * is); PI_CORE_NODES=all loads every core node.
 */
const PI_LEAN_EXCLUDES = {
  '21-httprequest.js': ['http request'],
  '22-websocket.js': ['websocket in', 'websocket out', 'websocket-listener', 'websocket-client'],
  '31-tcpin.js': ['tcp in', 'tcp out', 'tcp request'],
  '32-udp.js': ['udp in', 'udp out'],
  '23-watch.js': ['watch'],
  '90-exec.js': ['exec'],
  '70-CSV.js': ['csv'],
  '70-HTML.js': ['html'],
  '70-XML.js': ['xml'],
  '70-YAML.js': ['yaml'],
};

/** The lean Pi's excluded files, but those whose types the flows in `flowsFile` use. */
function leanExcludes(flowsFile) {
  const used = new Set();
  try {
    for (const node of JSON.parse(fs.readFileSync(flowsFile, 'utf8')))
      if (node && typeof node.type === 'string') used.add(node.type);
  } catch {
    // No flows yet (a first start seeds the shipped one), or unreadable ones: Node-RED says so itself.
  }
  return Object.keys(PI_LEAN_EXCLUDES).filter(
    (file) => !PI_LEAN_EXCLUDES[file].some((type) => used.has(type)),
  );
}

function settings({
  port,
  role = 'server',
  flowFile = 'flows.json',
  logLevel = 'info',
  env = process.env,
  userDir,
}) {
  checkSecurity(env);
  const hash = env.NODE_RED_ADMIN_HASH;
  const user = env.NODE_RED_ADMIN_USER || 'admin';
  return {
    uiHost: env.NODE_RED_HOST || '127.0.0.1',
    uiPort: port,
    flowFile,
    // Without a secret (a demo on loopback), the credentials file stays plain: there is nothing to keep it from.
    credentialSecret: env.NODE_RED_CREDENTIAL_SECRET || false,
    // With a login, the flows' own HTTP routes (http in, the dashboard) ask for it too.
    ...(hash
      ? {
          adminAuth: { type: 'credentials', users: [{ username: user, password: hash, permissions: '*' }] },
          httpNodeAuth: { user, pass: hash },
        }
      : {}),
    nodesDir: [path.resolve(__dirname, '..')],
    ...(role === 'pi' && env.PI_CORE_NODES !== 'all'
      ? { nodesExcludes: leanExcludes(path.join(userDir ?? '', flowFile)) }
      : {}),
    // Context on disk (userDir/context, flushed every 30 s and at shutdown): teleinfo-alert's active alerts and the
    // server's Pi status survive a restart.
    contextStorage: { default: { module: 'localfilesystem' } },
    // node-red-node-serialport reopens a vanished port (a TIC adapter unplugged) this often; its own default is 15 s.
    serialReconnectTime: Number(env.TIC_RECONNECT_MS) || 3000,
    telemetry: { enabled: false, updateNotification: false },
    diagnostics: { enabled: false, ui: false },
    externalModules: { palette: { allowInstall: false } },
    editorTheme: {
      tours: false,
      palette: { catalogues: [] },
      codeEditor: { lib: 'ace' },
      projects: { enabled: false },
    },
    logging: { console: { level: logLevel, metrics: false, audit: false } },
  };
}

module.exports = settings;
module.exports.checkSecurity = checkSecurity;
