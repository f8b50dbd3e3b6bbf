/** The domain core, usable without Node-RED. */
export * from './tic/labels';
export * from './tic/decoder';
export * from './tic/enums';
export * from './tic/horodate';
export * from './reading';
export * from './ecodevices/decode';
export * from './influx/line-protocol';
export * from './teleinfo-parser';
export * from './emission';
export * from './retry';
export * from './ecodevices/client';
export * from './ecodevices/poller';
export * from './tic/encoder';
export * from './spool';
export * from './spool-forwarder';
