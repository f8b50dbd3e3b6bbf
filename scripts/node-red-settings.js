'use strict';
// Settings for a Node-RED instance that loads this package from the working tree (demo, tests, containers).
// Secrets are read from the environment when Node-RED starts, never written into the userDir:
//   NODE_RED_HOST               where the editor listens (default 127.0.0.1)
//   NODE_RED_ADMIN_USER         the editor's account (default admin)
//   NODE_RED_ADMIN_HASH         its bcrypt password hash (`npx node-red admin hash-pw`); with it, adminAuth is on
//   NODE_RED_CREDENTIAL_SECRET  the key flows_cred.json is encrypted with
//   PI_CORE_NODES               `all`: a Pi loads every core node (by default not those listed in PI_LEAN_EXCLUDES)
// scripts/instance.js refuses to start an instance listening beyond loopback without the last two.
const path = require('node:path');

/**
 * Core node files a Pi does not load: the Pi flow uses none of them, and their libraries (tough-cookie, form-data
 * and hpagent for http request; cheerio, xml2js, js-yaml, ws…) are loaded at start whether used or not. Node-RED with
 * no flow and the Pi's Node flags: 93 MiB resident with every core node, 88 without http request alone. The
 * common ones stay (function, change, file, http in, json, template). PI_CORE_NODES=all loads every core node.
 */
const PI_LEAN_EXCLUDES = [
  '21-httprequest.js',
  '22-websocket.js',
  '31-tcpin.js',
  '32-udp.js',
  '23-watch.js',
  '90-exec.js',
  '70-CSV.js',
  '70-HTML.js',
  '70-XML.js',
  '70-YAML.js',
];

module.exports = function settings({
  port,
  role = 'server',
  flowFile = 'flows.json',
  logLevel = 'info',
  env = process.env,
}) {
  const hash = env.NODE_RED_ADMIN_HASH;
  return {
    uiHost: env.NODE_RED_HOST || '127.0.0.1',
    uiPort: port,
    flowFile,
    // Without a secret (a demo on loopback), the credentials file stays plain: there is nothing to keep it from.
    credentialSecret: env.NODE_RED_CREDENTIAL_SECRET || false,
    ...(hash
      ? {
          adminAuth: {
            type: 'credentials',
            users: [{ username: env.NODE_RED_ADMIN_USER || 'admin', password: hash, permissions: '*' }],
          },
        }
      : {}),
    nodesDir: [path.resolve(__dirname, '..')],
    ...(role === 'pi' && env.PI_CORE_NODES !== 'all' ? { nodesExcludes: PI_LEAN_EXCLUDES } : {}),
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
};
