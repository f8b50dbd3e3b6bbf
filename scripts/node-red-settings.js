'use strict';
// Settings for a Node-RED instance that loads this package from the working tree (demo, tests, containers).
// Secrets are read from the environment when Node-RED starts, never written into the userDir:
//   NODE_RED_HOST               where the editor listens (default 127.0.0.1)
//   NODE_RED_ADMIN_USER         the editor's account (default admin)
//   NODE_RED_ADMIN_HASH         its bcrypt password hash (`npx node-red admin hash-pw`); with it, adminAuth is on
//   NODE_RED_CREDENTIAL_SECRET  the key flows_cred.json is encrypted with
// scripts/instance.js refuses to start an instance listening beyond loopback without the last two.
const path = require('node:path');

module.exports = function settings({ port, flowFile = 'flows.json', logLevel = 'info', env = process.env }) {
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
