'use strict';
// Settings for a Node-RED instance that loads this package from the working tree (demo and tests).
const path = require('node:path');

module.exports = function settings({
  port,
  flowFile = 'flows.json',
  credentialSecret = false,
  logLevel = 'info',
}) {
  return {
    // Local only, unless a container publishes it (docker-compose sets NODE_RED_HOST=0.0.0.0).
    uiHost: process.env.NODE_RED_HOST || '127.0.0.1',
    uiPort: port,
    flowFile,
    credentialSecret,
    nodesDir: [path.resolve(__dirname, '..')],
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
