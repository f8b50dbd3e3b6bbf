import assert from 'node:assert/strict';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { EcoDevicesSimulator, SimClock } from '../../nodes/lib/simulator/ecodevices-server';
import { simulatedBox } from '../../nodes/lib/simulator/cli';
import type { Contract } from '../../nodes/lib/simulator/meter';
import { ROOT } from './fixtures';
import { startInstance, type NodeRedProcess } from './node-red-process';
import { clientId, startShippedBroker, type BrokerAccounts, type ShippedBroker } from './shipped-broker';
import {
  createStackDatabase,
  freePort,
  startInfluxd,
  startMosquitto,
  tempDir,
  waitFor,
  type Influxd,
  type Mosquitto,
} from './services';

/** The broker settings of the shipped mosquitto.conf (queues, persistence), for a local mosquitto. */
export function projectBrokerSettings(): string[] {
  return fs
    .readFileSync(path.join(ROOT, 'docker', 'mosquitto', 'mosquitto.conf'), 'utf8')
    .split('\n')
    .filter((l) =>
      /^(autosave_interval|max_queued_messages|max_packet_size|max_inflight_messages|persistent_client_expiration) /.test(
        l,
      ),
    );
}

/**
 * A TCP proxy in front of the broker: cutting it is a Pi losing its network, the broker staying up. A partition
 * drops every byte both ways without closing anything (a cable pulled further away): each end finds out by its own
 * keepalive, and a connection made meanwhile hangs. When it heals, connections one end closed meanwhile are closed.
 */
export class LinkCutter {
  private server: net.Server | null = null;
  private readonly sockets = new Set<net.Socket>();
  private partitioned = false;
  /** Sockets whose other end closed during the partition. */
  private readonly orphans = new Set<net.Socket>();
  constructor(
    readonly port: number,
    private readonly target: number,
  ) {}

  async open(): Promise<void> {
    this.server = net.createServer((client) => {
      this.track(client);
      if (this.partitioned) return; // the connection hangs: nothing reaches the broker
      const upstream = net.connect(this.target, '127.0.0.1');
      this.track(upstream);
      client.on('data', (d) => this.partitioned || upstream.write(d));
      upstream.on('data', (d) => this.partitioned || client.write(d));
      client.on('close', () => (this.partitioned ? this.orphans.add(upstream) : upstream.destroy()));
      upstream.on('close', () => (this.partitioned ? this.orphans.add(client) : client.destroy()));
    });
    await new Promise<void>((r) => this.server!.listen(this.port, '127.0.0.1', r));
  }

  private lastError = '';

  private track(s: net.Socket): void {
    this.sockets.add(s);
    s.on('close', () => this.sockets.delete(s));
    s.on('error', (e) => {
      // Once per kind: a broker that is down refuses every retry alike.
      if (e.message !== this.lastError) console.log(`# LinkCutter ${this.port}→${this.target}: ${e.message}`);
      this.lastError = e.message;
    });
  }

  /** Drop everything both ways, closing nothing, until `heal`. */
  partition(): void {
    this.partitioned = true;
  }

  heal(): void {
    this.partitioned = false;
    for (const s of this.orphans) s.destroy();
    this.orphans.clear();
  }

  async cut(): Promise<void> {
    const server = this.server;
    this.server = null;
    for (const s of this.sockets) s.destroy();
    if (server) await new Promise((r) => server.close(r));
  }
}

const PASSWORD = 'e2e-influx-pass';
/** The site's influxd admin, for a test's own queries. */
export const INFLUX_ADMIN = `admin:${PASSWORD}`;

/** Mosquitto, influxd, a simulated box (real clock), a Pi and a server instance, each on its own ports. */
export interface Site {
  mosquitto: Mosquitto;
  influxd: Influxd;
  readonly mosquittoDir: string;
  readonly influxDir: string;
  readonly box: EcoDevicesSimulator;
  pi: NodeRedProcess;
  readonly servers: NodeRedProcess[];
  readonly piDir: string;
  readonly serverDirs: string[];
  readonly database: string;
  /** The Pi's MQTT path goes through this proxy. */
  readonly link: LinkCutter;
  /** Each server's MQTT path goes through its own proxy. */
  readonly serverLinks: LinkCutter[];
  readonly options: SiteOptions;
}

export interface SiteOptions {
  readonly servers?: number;
  /** The box's meters on T1 and T2 (default HC and BASE). */
  readonly contracts?: [Contract, Contract | null];
  /** The simulated clock's start (default now): the meters' calendar (Tempo colours, EJP days). */
  readonly simStart?: number;
  /** Settings of the server flow's teleinfo-alert node (shorter delays for a test). */
  readonly alert?: Record<string, string>;
  /** Other changes to the server flow (its node settings) for a test. */
  readonly serverFlow?: (nodes: { id: string; [setting: string]: unknown }[]) => void;
  /** The servers use the account docker/influxdb/init.sh gives them: ALL on the database, no admin. */
  readonly serverAccount?: boolean;
  readonly readingsTopic?: string;
  /** Changes to the Pi's teleinfo-spool settings (e.g. a Pi of before end-to-end acknowledgement). */
  readonly piSpool?: Record<string, string>;
  /** Changes to the Pi's teleinfo-health settings (e.g. a shorter interval). */
  readonly piHealth?: Record<string, string>;
  /** A TLS listener with a password file: its mosquitto lines, and what the Pi and the servers are given. */
  /**
   * The shipped broker (docker/mosquitto: TLS, one account each, the ACL) with these accounts and certificates,
   * and what the Pi and the servers are given to reach it.
   */
  readonly secure?: {
    readonly certsDir: string;
    readonly accounts: BrokerAccounts;
    readonly pi: Record<string, string>;
    readonly server: Record<string, string>;
  };
}

export async function startSite(database: string, options: SiteOptions = {}): Promise<Site> {
  const mosquittoDir = tempDir('e2e-mosquitto');
  const mosquitto = options.secure
    ? await startShippedBroker(mosquittoDir, options.secure.certsDir, options.secure.accounts)
    : await startMosquitto({ dir: mosquittoDir, global: projectBrokerSettings() });
  const influxDir = tempDir('e2e-influxd');
  const influxd = await startInfluxd({ adminPassword: PASSWORD, dir: influxDir });
  await createStackDatabase(influxd, database, `admin:${PASSWORD}`);
  if (options.serverAccount)
    for (const q of [`CREATE USER writer WITH PASSWORD '${PASSWORD}'`, `GRANT ALL ON ${database} TO writer`])
      await influxd.query(q, undefined, `admin:${PASSWORD}`);
  const [contract, contract2] = options.contracts ?? ['HC', 'BASE'];
  const simStart = options.simStart ?? Date.now();
  const box = simulatedBox(
    { boxes: 1, contract, contract2, phases: 1, isousc: 45, seed: 11, start: simStart },
    0,
    new SimClock(simStart, 1),
  );
  await box.listen(0);
  const link = new LinkCutter(await freePort(), mosquitto.port);
  await link.open();
  const piDir = tempDir('e2e-pi');
  const serverDirs = Array.from({ length: options.servers ?? 1 }, () => tempDir('e2e-server'));
  const serverLinks: LinkCutter[] = [];
  while (serverLinks.length < serverDirs.length) {
    const link = new LinkCutter(await freePort(), mosquitto.port);
    await link.open();
    serverLinks.push(link);
  }
  const site: Site = {
    mosquitto,
    influxd,
    mosquittoDir,
    influxDir,
    box,
    piDir,
    serverDirs,
    database,
    link,
    serverLinks,
    options,
    servers: [],
    pi: null as unknown as NodeRedProcess, // started last, once the servers subscribed
  };
  for (const i of serverDirs.keys()) site.servers.push(await startServer(site, i));
  site.pi = await startPi(
    piDir,
    mqttUrl(site, link.port),
    box.port,
    options.secure?.pi,
    options.piSpool,
    options.piHealth,
  );
  return site;
}

/** The broker's URL on `port`: mqtts:// for a secure site. */
export function mqttUrl(site: Pick<Site, 'options'>, port: number): string {
  return `${site.options.secure ? 'mqtts' : 'mqtt'}://127.0.0.1:${port}`;
}

/** Start mosquitto again on the same port and persistence directory. */
export async function restartMosquitto(site: Site): Promise<void> {
  const { secure } = site.options;
  site.mosquitto = secure
    ? await startShippedBroker(
        site.mosquittoDir,
        secure.certsDir,
        secure.accounts,
        site.mosquitto as ShippedBroker,
      )
    : await startMosquitto({
        dir: site.mosquittoDir,
        port: site.mosquitto.port,
        global: projectBrokerSettings(),
      });
}

/** Start influxd again on the same port and data directory. */
export async function restartInfluxd(site: Site): Promise<void> {
  site.influxd = await startInfluxd({
    adminPassword: PASSWORD,
    dir: site.influxDir,
    port: site.influxd.port,
  });
}

export function serverEnv(site: Site, index: number): Record<string, string> {
  const { readingsTopic, secure } = site.options;
  // Servers after the first have their own account, server-<n>, when the broker has one.
  const own = `server-${index + 1}`;
  const account: Record<string, string> =
    secure && index > 0 && secure.accounts.servers[own] !== undefined
      ? { MQTT_USER: own, MQTT_PASSWORD: secure.accounts.servers[own] }
      : {};
  return {
    ...(readingsTopic ? { MQTT_READINGS_TOPIC: readingsTopic } : {}),
    ...secure?.server,
    ...account,
    MQTT_URL: mqttUrl(site, site.serverLinks[index].port),
    // The shipped broker binds an account to its client id.
    MQTT_CLIENT_ID: secure
      ? clientId(account.MQTT_USER ?? secure.server.MQTT_USER)
      : `teleinfo-e2e-server-${index + 1}`,
    INFLUX_URL: site.influxd.url,
    INFLUX_DB: site.database,
    INFLUX_USER: site.options.serverAccount ? 'writer' : 'admin',
    INFLUX_PASSWORD: PASSWORD,
  };
}

/** Server instance `index` of the site, on its own userDir (the same one again after a kill). */
export function startServer(site: Site, index = 0) {
  const { alert, serverFlow } = site.options;
  let flows: { id: string }[] | undefined;
  if (alert || serverFlow) {
    flows = JSON.parse(fs.readFileSync(path.join(ROOT, 'flows', 'server.json'), 'utf8')) as { id: string }[];
    if (alert)
      Object.assign(
        flows.find((n) => n.id === 'srv-alert')!,
        alert,
      );
    serverFlow?.(flows);
  }
  return startInstance('server', { dir: site.serverDirs[index], env: serverEnv(site, index), flows });
}

/** The shipped Pi flow, plus a tap (a core file node) recording every reading ecodevices-in emitted. */
export function startPi(
  dir: string,
  brokerUrl: string,
  boxPort: number,
  env: Record<string, string> = {},
  /** Change the Pi's teleinfo-spool settings (e.g. its window) for a test. */
  buffer: Record<string, string> = {},
  /** Change the Pi's teleinfo-health settings (e.g. its interval). */
  health: Record<string, string> = {},
): Promise<NodeRedProcess> {
  const flows = JSON.parse(fs.readFileSync(path.join(ROOT, 'flows', 'pi.json'), 'utf8')) as {
    id: string;
    wires?: string[][];
  }[];
  Object.assign(
    flows.find((n) => n.id === 'pi-spool')!,
    buffer,
  );
  Object.assign(
    flows.find((n) => n.id === 'pi-health')!,
    health,
  );
  flows.find((n) => n.id === 'pi-poll')!.wires![0].push('test-tap');
  flows.push({
    id: 'test-tap',
    type: 'file',
    z: 'pi-tab',
    filename: path.join(dir, 'sent.jsonl'),
    filenameType: 'str',
    appendNewline: true,
    createDir: true,
    overwriteFile: 'false',
    encoding: 'none',
    wires: [[]],
  } as never);
  return startInstance('pi', {
    dir,
    env: {
      MQTT_URL: brokerUrl,
      PI_ID: 'pi-e2e',
      ECODEVICES_HOST: '127.0.0.1',
      ECODEVICES_PORT: String(boxPort),
      POLL_SECONDS: '2',
      ...env,
    },
    flows,
  });
}

/** `meter time` → energy total (Wh, rounded) of every reading the Pi's ecodevices-in emitted. */
export function sentKeys(piDir: string): Map<string, number | null> {
  const file = path.join(piDir, 'sent.jsonl');
  const keys = new Map<string, number | null>();
  if (!fs.existsSync(file)) return keys;
  for (const line of fs.readFileSync(file, 'utf8').split('\n')) {
    if (!line) continue;
    const r = JSON.parse(line) as { meter: string; time: string; energyTotal: number | null };
    keys.set(`${r.meter} ${Date.parse(r.time)}`, r.energyTotal === null ? null : Math.round(r.energyTotal));
  }
  return keys;
}

/** `meter time` → energy_total of every point in InfluxDB. */
export async function storedKeys(
  site: Pick<Site, 'influxd' | 'database'>,
): Promise<Map<string, number | null>> {
  const r = await site.influxd.query(
    // A counter's points have neither phases nor energy_total: its index finds them.
    'SELECT "phases", "energy_total", "index" FROM teleinfo GROUP BY "meter"',
    site.database,
    `admin:${PASSWORD}`,
  );
  const keys = new Map<string, number | null>();
  for (const series of r.results[0]?.series ?? [])
    for (const [time, , energy] of series.values)
      keys.set(`${series.tags!.meter} ${time as number}`, (energy as number | null) ?? null);
  return keys;
}

/** The last state of each Pi the server wrote for Grafana's "Pis online" (measurement teleinfo_pi). */
export async function pisOnline(site: Pick<Site, 'influxd' | 'database'>): Promise<Record<string, boolean>> {
  const r = await site.influxd.query(
    'SELECT last("online") FROM teleinfo_pi GROUP BY "pi"',
    site.database,
    `admin:${PASSWORD}`,
  );
  return Object.fromEntries((r.results[0]?.series ?? []).map((s) => [s.tags!.pi, s.values[0][1] as boolean]));
}

/**
 * Wait until a reading the Pi emitted after `before` was taken is in InfluxDB: the Pi is back on the broker (its
 * client retries every 5 s) and the path to the server works again. Settling earlier would stop the Pi with its
 * backlog still in its journal.
 */
export async function storedSince(
  site: Site,
  before: ReadonlySet<string>,
  timeoutMs = 60_000,
): Promise<void> {
  await waitFor(
    'a reading emitted since then in InfluxDB',
    async () => {
      const stored = await storedKeys(site);
      return [...sentKeys(site.piDir).keys()].some((k) => !before.has(k) && stored.has(k));
    },
    timeoutMs,
  );
}

/**
 * No more readings (the box stops answering), wait for every reading the Pi sent in InfluxDB (and `drained`), stop
 * the Pi, and count. The Pi runs while its spool drains: stopped first, it would keep the readings of its last poll for its
 * next start (not lost, but never stored in this test).
 */
export async function settle(site: Site, timeoutMs = 120_000, drained?: () => Promise<boolean>) {
  site.box.setFaults({ offlineMs: timeoutMs + 60_000 });
  let sent = sentKeys(site.piDir);
  let stored = new Map<string, number | null>();
  const allStored = async () => {
    sent = sentKeys(site.piDir);
    stored = await storedKeys(site);
    return [...sent.keys()].every((k) => stored.has(k));
  };
  await waitFor('every sent reading in InfluxDB', allStored, timeoutMs).catch(() => undefined);
  // What the Pi must have done before it stops (its spool released what the servers acknowledged).
  if (drained) await waitFor('the Pi drained', drained, 30_000).catch(() => undefined);
  await site.pi.stop();
  // A poll answered just before the box went away: its readings too.
  await waitFor('every sent reading in InfluxDB', allStored, 10_000).catch(() => undefined);
  const missing = [...sent.keys()].filter((k) => !stored.has(k));
  const extra = [...stored.keys()].filter((k) => !sent.has(k));
  const wrong = [...sent].filter(([k, v]) => stored.has(k) && stored.get(k) !== v).map(([k]) => k);
  return { sent: sent.size, stored: stored.size, missing, extra, wrong };
}

export async function stopSite(site: Site): Promise<void> {
  await site.pi.stop();
  for (const s of site.servers) await s.stop();
  await site.link.cut();
  for (const link of site.serverLinks) await link.cut();
  await site.box.close();
  await site.mosquitto.stop();
  await site.influxd.stop();
  for (const dir of [site.piDir, ...site.serverDirs, site.mosquittoDir, site.influxDir])
    fs.rmSync(dir, { recursive: true, force: true });
}

/** Print sent / stored / missing / extra / wrong, and assert that every reading sent is stored once with its value. */
export function report(name: string, r: Awaited<ReturnType<typeof settle>>) {
  console.log(
    `# ${name}: sent ${r.sent}, stored ${r.stored}, missing ${r.missing.length}, extra or duplicated ${r.extra.length}, wrong value ${r.wrong.length}`,
  );
  assert.ok(r.sent > 0, 'the Pi sent readings');
  assert.deepEqual(r.missing, []);
  assert.deepEqual(r.extra, []);
  assert.deepEqual(r.wrong, []);
}

/** Let the Pi run until it has emitted `n` more readings. */
export async function readings(site: Site, n: number, timeoutMs = 60_000) {
  const start = sentKeys(site.piDir).size;
  await waitFor(`${n} readings from the Pi`, () => sentKeys(site.piDir).size >= start + n, timeoutMs);
}
