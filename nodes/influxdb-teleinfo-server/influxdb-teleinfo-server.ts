import fs from 'node:fs';
import path from 'node:path';
import type { Node, NodeAPI, NodeDef } from 'node-red';
import { WRITES_IN_FLIGHT, WritePipeline, type PipelineStatus } from '../lib/influx/pipeline';
import type { InfluxTransport, TlsOptions } from '../lib/influx/transport';
import type { InfluxDatabase } from '../lib/influx/database';
import { resolveCredential, valueOrEnv } from '../node-red';
import { Spool, spoolDir } from '../lib/spool';
import type { Credentials, InfluxServerNode } from './types';

interface InfluxServerDef extends NodeDef {
  url: string;
  api: '1' | '2';
  database: string;
  retentionPolicy: string;
  org: string;
  bucket: string;
  caFile: string;
  certFile: string;
  keyFile: string;
  selfSigned: boolean;
  batchSize: string;
  flushMs: string;
  spoolMB: string;
  durability?: string;
  timeout: string;
  /** 'env': the property names an environment variable holding it. */
  urlType?: string;
  databaseType?: string;
  orgType?: string;
  bucketType?: string;
}

/** Close budget: under Node-RED's default 15 s node close timeout. */
const CLOSE_FLUSH_MS = 5000;

/**
 * influxdb-teleinfo-server: one InfluxDB (1.x through /write, 2.x/3.x through the official client) and the
 * write pipeline every influx-teleinfo-out node that names it shares: spool under the userDir, batches,
 * retries, dead letters.
 */
export = function register(RED: NodeAPI): void {
  function InfluxServer(this: Node<Credentials>, config: InfluxServerDef): void {
    RED.nodes.createNode(this, config);
    const node = this as unknown as InfluxServerNode & {
      pipeline: WritePipeline | null;
      database: InfluxDatabase | null;
      configError: string | null;
    };
    const users = new Map<string, (status: PipelineStatus) => void>();
    node.register = (user: Node, onStatus: (status: PipelineStatus) => void) => {
      users.set(user.id, onStatus);
      if (node.pipeline) onStatus(node.pipeline.status());
    };
    node.deregister = (user: Node) => users.delete(user.id);
    node.pipeline = null;
    node.database = null;
    node.configError = null;

    const broadcast = (status: PipelineStatus) => users.forEach((onStatus) => onStatus(status));
    try {
      const transport = createTransport(config, node);
      if ('database' in transport) node.database = transport.database;
      const userDir = (RED.settings as unknown as { userDir?: string }).userDir ?? process.cwd();
      let lastFault = '';
      const spool = new Spool(spoolDir(path.join(userDir, 'teleinfo-spool'), node.id), {
        maxBytes: Math.max(1, Number(config.spoolMB) || 100) * 1024 * 1024,
        durability: config.durability === 'power' ? 'power' : 'process',
        // An I/O error the spool carried on through: in the status of every node using it, logged once per kind.
        onFault: (e) => {
          if (e.message !== lastFault) node.error(`influxdb-teleinfo-server: ${e.message}`);
          lastFault = e.message;
          if (node.pipeline) broadcast(node.pipeline.status());
        },
        onQuarantine: (bytes, where, reason) =>
          node.warn(`spool: ${bytes} damaged bytes (${reason}, ${where}) moved to quarantine.jsonl`),
      });
      if (spool.counters.recovered > 0)
        node.log(`spool: ${spool.counters.recovered} lines from a previous run to write`);
      node.pipeline = new WritePipeline(
        spool,
        transport,
        {
          batchSize: Math.max(1, Number(config.batchSize) || 5000),
          flushMs: Math.max(10, Number(config.flushMs) || 1000),
          backoff: { baseMs: 500, maxMs: 30_000, jitter: 0.2 },
        },
        {
          status: broadcast,
          rejected: (result, lines, file, stored) =>
            node.warn(
              `InfluxDB rejected ${lines} lines (${result.message}); ${stored ? `written to ${file}` : `not written to ${file} (full or failing): counted only`}`,
            ),
          dropped: (count) =>
            node.warn(`spool full (${config.spoolMB || 100} MB): the oldest ${count} lines were dropped`),
          failing: (result) =>
            node.warn(`InfluxDB write failing, lines kept in the spool and retried: ${result.message}`),
        },
      );
    } catch (e) {
      node.configError = (e as Error).message;
      node.error(`influxdb-teleinfo-server: ${node.configError}`);
    }

    node.on('close', (_removed: boolean, done: () => void) => {
      if (!node.pipeline) return done();
      node.pipeline.close(CLOSE_FLUSH_MS).then(done, (e: Error) => {
        node.error(`closing the InfluxDB writer: ${e.message}`);
        done();
      });
    });
  }

  function createTransport(
    config: InfluxServerDef,
    node: Node<Credentials>,
  ): InfluxTransport | (InfluxTransport & { database: InfluxDatabase }) {
    // Loaded when a server is configured, not when Node-RED registers the node: a Pi, which writes to no
    // InfluxDB, never loads undici and the InfluxDB client (12 to 20 MiB of its memory).
    type Transports = typeof import('../lib/influx/transport');
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    const { V1Transport, V2Transport } = require('../lib/influx/transport') as Transports;
    const setting = (p: 'url' | 'database' | 'org' | 'bucket') =>
      valueOrEnv(RED, node, config[p], config[`${p}Type`]);
    const url = setting('url');
    if (!/^https?:\/\//.test(url))
      throw new Error(`the URL must start with http:// or https://, got "${url}"`);
    const read = (file: string, what: string) => {
      if (!file) return undefined;
      try {
        return fs.readFileSync(file, 'utf8');
      } catch (e) {
        throw new Error(`cannot read the ${what} file ${file}: ${(e as Error).message}`);
      }
    };
    const tls: TlsOptions = {
      ca: read(config.caFile, 'CA'),
      cert: read(config.certFile, 'client certificate'),
      key: read(config.keyFile, 'client key'),
      rejectUnauthorized: !config.selfSigned,
    };
    const timeoutMs = Math.max(1000, Number(config.timeout) || 10_000);
    const cred = (v: string | undefined) => resolveCredential(RED, node, v);
    if (config.api === '2') {
      const bucket = setting('bucket');
      if (!bucket) throw new Error('the 2.x API needs a bucket');
      return new V2Transport({
        url,
        org: setting('org'),
        bucket,
        token: cred(node.credentials.token),
        tls,
        timeoutMs,
      });
    }
    const database = setting('database');
    if (!database) throw new Error('the 1.x API needs a database');
    return new V1Transport({
      url,
      database,
      retentionPolicy: config.retentionPolicy,
      user: cred(node.credentials.user),
      password: cred(node.credentials.password),
      tls,
      timeoutMs,
      connections: WRITES_IN_FLIGHT,
    });
  }

  RED.nodes.registerType<Node<Credentials>, InfluxServerDef, unknown, Credentials>(
    'influxdb-teleinfo-server',
    InfluxServer,
    {
      credentials: { user: { type: 'text' }, password: { type: 'password' }, token: { type: 'password' } },
    },
  );
};
