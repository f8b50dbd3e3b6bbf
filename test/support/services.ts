import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';

/**
 * Private instances of the real services, on free loopback ports, in throw-away directories,
 * stopped by PID. A test asks `serviceSkip(bin)` first: under CI=true a missing service fails the run,
 * elsewhere the test is skipped and the reason printed.
 */

export function serviceSkip(bin: string): string | false {
  const found = spawnSync('sh', ['-c', `command -v ${bin}`]).status === 0;
  if (found) return false;
  const reason = `${bin} is not installed (apt-get install -y ${aptPackage(bin)})`;
  if (process.env.CI === 'true') throw new Error(`CI=true and ${reason}`);
  console.log(`# skipped: ${reason}`);
  return reason;
}

function aptPackage(bin: string): string {
  return bin === 'influxd' ? 'influxdb' : bin;
}

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.unref();
    srv.on('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address() as net.AddressInfo;
      srv.close(() => resolve(port));
    });
  });
}

export function tempDir(prefix: string): string {
  return fs.mkdtempSync(path.join(os.tmpdir(), `teleinfo-${prefix}-`));
}

export interface Service {
  readonly pid: number;
  readonly port: number;
  readonly dir: string;
  stop(signal?: NodeJS.Signals): Promise<void>;
}

/** Wait for `ready()` to hold, checking every 25 ms: the service answering is the event waited for. */
/** An outage's length or a scenario's wait: the time itself is what the test is about. */
export async function pause(ms: number): Promise<void> {
  const until = Date.now() + ms;
  await waitFor(`${Math.round(ms / 1000)} s`, () => Date.now() >= until, ms + 5000);
}

export async function waitFor(
  what: string,
  ready: () => Promise<boolean> | boolean,
  timeoutMs = 15_000,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (
      await Promise.resolve()
        .then(ready)
        .catch(() => false)
    )
      return;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

export function tcpOpen(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = net.connect(port, '127.0.0.1');
    s.once('connect', () => {
      s.destroy();
      resolve(true);
    });
    s.once('error', () => resolve(false));
  });
}

export async function httpStatus(url: string, init?: RequestInit): Promise<number> {
  const res = await fetch(url, init);
  await res.arrayBuffer();
  return res.status;
}

export function launch(cmd: string, args: string[], dir: string): ChildProcess {
  const log = fs.openSync(path.join(dir, 'service.log'), 'a');
  const child = spawn(cmd, args, { stdio: ['ignore', log, log] });
  fs.closeSync(log);
  return child;
}

/** Stop by PID: the signal, then SIGKILL if it has not exited within 10 s. */
export function stopper(child: ChildProcess, dir: string | null): (signal?: NodeJS.Signals) => Promise<void> {
  return async (signal = 'SIGTERM') => {
    if (child.exitCode === null && child.signalCode === null) {
      const exited = new Promise<void>((r) => child.once('exit', () => r()));
      process.kill(child.pid as number, signal);
      const timer = setTimeout(() => child.kill('SIGKILL'), 10_000);
      await exited;
      clearTimeout(timer);
    }
    if (dir) fs.rmSync(dir, { recursive: true, force: true });
  };
}

export interface MosquittoOptions {
  /** Extra lines for the listener (e.g. `password_file`, TLS) and the broker. */
  readonly listener?: string[];
  readonly global?: string[];
  readonly port?: number;
  readonly dir?: string;
}

export interface Mosquitto extends Service {
  readonly url: string;
}

export async function startMosquitto(options: MosquittoOptions = {}): Promise<Mosquitto> {
  const dir = options.dir ?? tempDir('mosquitto');
  const port = options.port ?? (await freePort());
  const conf = path.join(dir, 'mosquitto.conf');
  fs.writeFileSync(
    conf,
    [
      // Running as root, mosquitto would drop to user `mosquitto` and fail to write its files here.
      'user root',
      `pid_file ${path.join(dir, 'mosquitto.pid')}`,
      'persistence true',
      `persistence_location ${dir}/`,
      'per_listener_settings true',
      ...(options.global ?? []),
      `listener ${port} 127.0.0.1`,
      ...(options.listener ?? ['allow_anonymous true']),
      '',
    ].join('\n'),
  );
  const child = launch('mosquitto', ['-c', conf], dir);
  await waitFor(`mosquitto on ${port}`, () => tcpOpen(port));
  return {
    pid: child.pid as number,
    port,
    dir,
    url: `mqtt://127.0.0.1:${port}`,
    stop: stopper(child, options.dir ? null : dir),
  };
}

export interface Influxd extends Service {
  readonly url: string;
  /** Its RPC address (host:port), which `influxd backup` and `influxd restore` reach. */
  readonly rpc: string;
  /** InfluxQL, with `epoch=ms`; returns the parsed JSON. */
  query(q: string, db?: string, auth?: string): Promise<InfluxQueryResult>;
}

export interface InfluxQueryResult {
  results: {
    series?: { name: string; columns: string[]; values: unknown[][]; tags?: Record<string, string> }[];
    error?: string;
  }[];
}

export interface InfluxdOptions {
  /** Enable auth and create an admin user `admin` with this password. */
  readonly adminPassword?: string;
  readonly dir?: string;
  readonly port?: number;
  /** How often influxd drops data past its retention policies (its default: 30 minutes). */
  readonly retentionCheck?: string;
}

export async function startInfluxd(options: InfluxdOptions = {}): Promise<Influxd> {
  const dir = options.dir ?? tempDir('influxd');
  const port = options.port ?? (await freePort());
  const rpcPort = await freePort();
  const conf = path.join(dir, 'influxdb.conf');
  fs.writeFileSync(
    conf,
    `reporting-enabled = false
bind-address = "127.0.0.1:${rpcPort}"
[meta]
  dir = "${dir}/meta"
[data]
  dir = "${dir}/data"
  wal-dir = "${dir}/wal"
  query-log-enabled = false
[monitor]
  store-enabled = false
[http]
  enabled = true
  bind-address = "127.0.0.1:${port}"
  auth-enabled = ${options.adminPassword !== undefined}
  log-enabled = false
[logging]
  level = "warn"
  suppress-logo = true
${options.retentionCheck ? `[retention]\n  check-interval = "${options.retentionCheck}"\n` : ''}`,
  );
  const child = launch('influxd', ['-config', conf], dir);
  const url = `http://127.0.0.1:${port}`;
  await waitFor(`influxd on ${port}`, async () => (await httpStatus(`${url}/ping`)) === 204);
  const query = async (q: string, db?: string, auth?: string) => {
    const body = new URLSearchParams({ q, epoch: 'ms', ...(db ? { db } : {}) });
    const headers: Record<string, string> = { 'content-type': 'application/x-www-form-urlencoded' };
    if (auth) headers.authorization = `Basic ${Buffer.from(auth).toString('base64')}`;
    const res = await fetch(`${url}/query`, { method: 'POST', body, headers });
    return (await res.json()) as InfluxQueryResult;
  };
  if (options.adminPassword !== undefined) {
    await query(`CREATE USER admin WITH PASSWORD '${options.adminPassword}' WITH ALL PRIVILEGES`);
  }
  return {
    pid: child.pid as number,
    port,
    dir,
    url,
    rpc: `127.0.0.1:${rpcPort}`,
    query,
    stop: stopper(child, options.dir ? null : dir),
  };
}

/**
 * The database as docker/influxdb/init.sh makes it: raw readings in the default policy, kept `raw` (90d), and the
 * policy teleinfo-rollup writes to, kept forever.
 */
export async function createStackDatabase(
  influxd: Influxd,
  db: string,
  auth?: string,
  raw = '90d',
): Promise<void> {
  for (const q of [
    `CREATE DATABASE "${db}"`,
    `ALTER RETENTION POLICY "autogen" ON "${db}" DURATION ${raw} SHARD DURATION ${raw === 'INF' ? '7d' : '1d'} DEFAULT`,
    `CREATE RETENTION POLICY "forever" ON "${db}" DURATION INF REPLICATION 1`,
  ]) {
    const r = await influxd.query(q, undefined, auth);
    if (r.results[0]?.error) throw new Error(`${q}: ${r.results[0].error}`);
  }
}

export interface VictoriaMetrics extends Service {
  readonly url: string;
  /** Every sample of the series matching `match`, after a forced flush. */
  exportSeries(
    match: string,
  ): Promise<{ metric: Record<string, string>; values: number[]; timestamps: number[] }[]>;
}

export async function startVictoriaMetrics(): Promise<VictoriaMetrics> {
  const dir = tempDir('vm');
  const port = await freePort();
  const child = launch(
    'victoria-metrics',
    [
      `-httpListenAddr=127.0.0.1:${port}`,
      `-storageDataPath=${dir}/data`,
      '-retentionPeriod=100y',
      '-loggerLevel=WARN',
    ],
    dir,
  );
  const url = `http://127.0.0.1:${port}`;
  await waitFor(`victoria-metrics on ${port}`, async () => (await httpStatus(`${url}/health`)) === 200);
  const exportSeries = async (match: string) => {
    await httpStatus(`${url}/internal/force_flush`);
    const res = await fetch(`${url}/api/v1/export`, {
      method: 'POST',
      body: new URLSearchParams({ 'match[]': match }),
    });
    const text = await res.text();
    return text
      .split('\n')
      .filter(Boolean)
      .map(
        (l) => JSON.parse(l) as { metric: Record<string, string>; values: number[]; timestamps: number[] },
      );
  };
  return { pid: child.pid as number, port, dir, url, exportSeries, stop: stopper(child, dir) };
}

/** Whether a process is running (signal 0 checks without touching it). */
export function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}
