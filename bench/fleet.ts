/**
 * npm run bench:fleet — a fleet on one machine: FLEET_METERS simulated meters (default 10,000, mixed contracts, one
 * reading every 10 s each) behind FLEET_PIS Pis (default 50), played by one load generator in which each Pi runs the
 * Pi's own spool and forwarder (teleinfo-spool's SpoolForwarder on a spool on disk, released as FLEET_RELEASE says:
 * `server`, the shipped flows, or `broker` with a 10-minute overlap, as before end-to-end acknowledgement) and speaks
 * its MQTT protocol (MQTT 5, a session and a will per Pi, its retained status, QoS 1 JSON readings on
 * teleinfo/<pi>/<meter>/reading with their numbers, its acknowledgements and the replay requests) → mosquitto
 * (project settings) → 1, 2, then 3 server instances (flows/server.json; with `broker`, their sessions persistent as
 * they were) on the shared subscription → influxd. For each server count:
 *   paced: FLEET_SECONDS (default 600) at the fleet's rate: stored = sent, latency p50/p99 from a reading's own
 *          time to its point being queryable, CPU of each component and per 1,000 readings, broker peak RSS;
 *   burst: FLEET_BURST readings (default 30,000) as fast as the Pis' MQTT sessions take them: the chain's readings/s,
 *          the curve against the server count;
 *   restarts (one server): the fleet's pace while the servers restart, then the broker: the readings the Pis sent
 *          again after each, and stored = sent.
 * First, influxd's ceiling for these points: the burst's readings as raw line protocol with nothing else running.
 */
import fs from 'node:fs';
import path from 'node:path';
import { connectAsync, type MqttClient } from 'mqtt';
import { readingToLine, type Reading } from '../nodes/lib';
import type { PiHealth } from '../nodes/lib/health';
import { PACKAGE_VERSION } from '../nodes/node-red';
import { parseAck } from '../nodes/lib/acknowledgement';
import { messageRecord, recordMessages, Spool } from '../nodes/lib/spool';
import { isReplayRequest, SpoolForwarder, type ReleaseOn } from '../nodes/lib/spool-forwarder';
import { TeleinfoParser } from '../nodes/lib/teleinfo-parser';
import { SimulatedMeter, type Contract } from '../nodes/lib/simulator/meter';
import { encodeTicFrame } from '../nodes/lib/tic/encoder';
import { projectBrokerSettings } from '../test/support/end-to-end';
import { ROOT } from '../test/support/fixtures';
import { startInstance, type NodeRedProcess } from '../test/support/node-red-process';
import {
  createStackDatabase,
  startInfluxd,
  startMosquitto,
  tempDir,
  waitFor,
  type Influxd,
} from '../test/support/services';
import { cpuSeconds, rssMiB } from './support/process-stats';
import { benchNodeArgs } from './support/rounds';

const METERS = Number(process.env.FLEET_METERS) || 10_000;
const PIS = Number(process.env.FLEET_PIS) || 50;
const SECONDS = Number(process.env.FLEET_SECONDS) || 600;
const BURST = Number(process.env.FLEET_BURST) || 30_000;
const SERVERS = (process.env.FLEET_SERVERS ?? '1,2,3').split(',').map(Number);
const CONTRACTS: Contract[] = ['BASE', 'HC', 'EJP', 'TEMPO'];
/** FLEET_HA=on enables the server flow's Home Assistant discovery node (disabled as shipped; ~25 retained configs per meter). */
const HA = process.env.FLEET_HA === 'on';
/** How long the fleet runs before the servers restart, and after each restart. */
const RESTART_SECONDS = Number(process.env.FLEET_RESTART_SECONDS) || 30;
const RELEASE: ReleaseOn = process.env.FLEET_RELEASE === 'broker' ? 'broker' : 'server';
/** Each Pi's health every this many seconds (retained, as teleinfo-health sends it); 0: none. The shipped Pi: 60. */
const HEALTH_SECONDS = Number(process.env.FLEET_HEALTH_SECONDS ?? 60);
/** Added to each server's Node flags. */
const SERVER_NODE_ARGS = benchNodeArgs();

function serverFlows(): unknown[] {
  const flows = JSON.parse(fs.readFileSync(path.join(ROOT, 'flows', 'server.json'), 'utf8')) as {
    id: string;
    d?: boolean;
    qos?: string;
  }[];
  const ha = flows.find((n) => n.id === 'srv-ha')!;
  if (HA) delete ha.d;
  else ha.d = true;
  // FLEET_SERVER_QOS=0: the servers subscribe at QoS 0 (what the broker's per-message acknowledgements cost).
  if (process.env.FLEET_SERVER_QOS === '0') flows.find((n) => n.id === 'srv-readings')!.qos = '0';
  // As before end-to-end acknowledgement: the broker kept readings for a server that was down.
  if (RELEASE === 'broker')
    Object.assign(
      flows.find((n) => n.id === 'srv-broker')!,
      { cleansession: false, sessionExpiry: '604800' },
    );
  // The load generator's Pis each carry METERS / PIS meters, more than a real Pi's few.
  Object.assign(
    flows.find((n) => n.id === 'srv-admit')!,
    { metersPerPi: String(Math.ceil(METERS / PIS)) },
  );
  return flows;
}

/** One reading per meter, decoded from the simulator's frames: the template each message is made from. */
function templates(): Reading[] {
  const parser = new TeleinfoParser({
    mode: 'auto',
    emit: 'all',
    intervalSeconds: 0,
    labels: [],
    device: 'x',
  });
  const now = Date.now();
  return Array.from({ length: METERS }, (_, i) => {
    const meter = new SimulatedMeter({
      adco: String(30_000_000_000 + i).padStart(12, '0'),
      contract: CONTRACTS[i % 4],
      phases: i % 5 === 0 ? 3 : 1,
      isousc: 45,
      seed: i,
      origin: now,
    });
    return parser.parse(encodeTicFrame('historic', meter.historicGroups(now)), String(i), new Date(now))
      .readings[0];
  });
}

class Fleet {
  /** Readings offered to the Pis' spools. */
  sent = 0;
  private readonly pis: { client: MqttClient; forwarder: SpoolForwarder }[] = [];
  private readonly lastTime: number[] = [];
  constructor(
    private readonly readings: Reading[],
    private readonly dir: string,
  ) {}

  async connect(url: string): Promise<void> {
    for (let p = 0; p < PIS; p++) {
      const pi = `fleet-${p}`;
      const status = `teleinfo/${pi}/status`;
      const client = await connectAsync(url, {
        protocolVersion: 5,
        clientId: `teleinfo-${pi}`,
        clean: true,
        reconnectPeriod: 1000,
        will: { topic: status, payload: Buffer.from('offline'), qos: 1, retain: true },
      });
      const spool = new Spool(path.join(this.dir, pi), {
        maxBytes: 500 * 1024 * 1024,
        durability: 'process',
      });
      // The shipped Pi flow's settings: 100 readings a message, 1,000 in flight.
      const forwarder = new SpoolForwarder(
        spool,
        { release: RELEASE, overlapMs: 600_000, stallMs: 120_000, window: 1000, replayBatch: 1000 },
        (records, seqs, token) => {
          const { messages, refused } = recordMessages(
            records,
            100,
            RELEASE === 'server' ? { stream: spool.stream, seqs } : null,
          );
          for (const m of messages)
            client.publish(
              m.topic,
              m.payload,
              { qos: 1, properties: m.userProperties ? { userProperties: m.userProperties } : undefined },
              (err) => {
                if (!err) forwarder.acknowledged(token);
              },
            );
          return { messages: messages.length, refused };
        },
      );
      client.on('message', (topic, payload) => {
        if (topic === 'teleinfo/replay') {
          const request = JSON.parse(payload.toString()) as unknown;
          if (isReplayRequest(request)) forwarder.replayRequested();
          return;
        }
        const acks = parseAck(payload, 10_000);
        if (typeof acks !== 'string') for (const a of acks) forwarder.serverAcked(a.stream, a.ranges);
      });
      const subscribe = () => client.subscribe([`teleinfo/${pi}/ack`, 'teleinfo/replay'], { qos: 1 });
      client.on('connect', () => {
        subscribe();
        void client.publishAsync(status, 'online', { qos: 1, retain: true }).catch(() => undefined);
        forwarder.setLink(true);
      });
      client.on('close', () => forwarder.setLink(false));
      subscribe();
      await client.publishAsync(status, 'online', { qos: 1, retain: true });
      forwarder.setLink(true);
      this.pis.push({ client, forwarder });
    }
  }

  /** Health messages the Pis published. */
  healthSent = 0;
  private healthTimer: NodeJS.Timeout | null = null;

  /** Every Pi's health every HEALTH_SECONDS, spread over the period as Pis started at different times are. */
  startHealth(): void {
    if (!(HEALTH_SECONDS > 0)) return;
    let next = 0;
    const tick = (HEALTH_SECONDS * 1000) / this.pis.length;
    this.healthTimer = setInterval(() => {
      const p = next++ % this.pis.length;
      const { client, forwarder } = this.pis[p];
      const health: PiHealth = {
        pi: `fleet-${p}`,
        at: new Date().toISOString(),
        uptimeS: Math.round(process.uptime()),
        versions: { package: PACKAGE_VERSION, nodeRed: '4.1.2', node: process.version.slice(1) },
        spool: forwarder.health(Date.now()),
        errors: { checksum: 0 },
        diskFreeMB: 10_000,
        diskTotalMB: 30_000,
      };
      this.healthSent++;
      client.publish(`teleinfo/fleet-${p}/health`, JSON.stringify(health), { qos: 1, retain: true });
    }, tick);
  }

  /** Readings the Pis sent again (a replay after a link drop, a replay request or a stall). */
  get resent(): number {
    return this.pis.reduce((n, p) => n + p.forwarder.counters.replayed, 0);
  }

  /** Readings offered and not yet acknowledged by the broker (the burst's flow control). */
  get inFlight(): number {
    return this.pis.reduce((n, p) => n + p.forwarder.inFlight, 0);
  }

  /** Reading number `k` of the run: meter k mod METERS, at this instant, offered to its Pi's spool. */
  publish(k: number): void {
    const i = k % this.readings.length;
    const r = this.readings[i];
    // Its own time, never twice the same for a meter: the same series and time would overwrite a point.
    const time = Math.max(Date.now(), (this.lastTime[i] ?? 0) + 1);
    this.lastTime[i] = time;
    // The server derives apparentPower from PAPP again, as it admits the reading.
    const papp = 100 + (k % 50) * 10;
    const reading = {
      ...r,
      time: new Date(time).toISOString(),
      apparentPower: papp,
      values: { ...r.values, PAPP: papp },
    };
    const pi = i % PIS;
    this.sent++;
    this.pis[pi].forwarder.offer([messageRecord(`teleinfo/fleet-${pi}/${r.meter}/reading`, reading)]);
  }

  async close(): Promise<void> {
    if (this.healthTimer) clearInterval(this.healthTimer);
    for (const { client, forwarder } of this.pis) {
      forwarder.close();
      await client.endAsync();
    }
  }
}

async function count(influxd: Influxd, db: string): Promise<number> {
  const r = await influxd.query('SELECT count("phases") FROM teleinfo', db);
  return (r.results[0]?.series?.[0]?.values[0]?.[1] as number | undefined) ?? 0;
}

/**
 * influxd's ceiling for this fleet's points: the burst's readings as raw line protocol, 5,000 lines a request, one
 * request at a time, with nothing else running (the first pass creates the series, the second writes to them).
 */
async function rawCeiling(influxd: Influxd, readings: Reading[]): Promise<string> {
  await influxd.query('CREATE DATABASE fleet_raw');
  const passes: string[] = [];
  for (const pass of [0, 1]) {
    const base = Date.now() + pass;
    const lines = Array.from({ length: BURST }, (_, k) =>
      readingToLine({
        ...readings[k % readings.length],
        time: new Date(base + 2 * Math.floor(k / readings.length)).toISOString(),
      }),
    );
    const start = Date.now();
    for (let i = 0; i < lines.length; i += 5000) {
      const res = await fetch(`${influxd.url}/write?db=fleet_raw&precision=ms`, {
        method: 'POST',
        body: lines.slice(i, i + 5000).join('\n'),
      });
      await res.arrayBuffer();
      if (res.status !== 204) throw new Error(`raw write: HTTP ${res.status}`);
    }
    passes.push(
      `${Math.round(BURST / ((Date.now() - start) / 1000))}/s ${pass === 0 ? 'new series' : 'existing series'}`,
    );
  }
  return passes.join(', ');
}

const pct = (xs: number[], p: number) => xs[Math.min(xs.length - 1, Math.floor(p * xs.length))] ?? NaN;

async function main(): Promise<void> {
  const readings = templates();
  const brokerDir = tempDir('fleet-mosquitto');
  let mosquitto = await startMosquitto({ dir: brokerDir, global: projectBrokerSettings() });
  const influxd = await startInfluxd();
  const dirs: string[] = [brokerDir];
  const rows: string[] = [];
  const restarts: string[] = [];
  const startServer = (s: number, db: string, dir: string) =>
    startInstance('server', {
      nodeArgs: SERVER_NODE_ARGS,
      dir,
      flows: serverFlows(),
      env: {
        MQTT_URL: mosquitto.url,
        // The same session for server s in every phase: a stopped server's session would keep its share of the group.
        MQTT_CLIENT_ID: `teleinfo-fleet-server-${s}`,
        INFLUX_URL: influxd.url,
        INFLUX_DB: db,
      },
    });
  try {
    const ceiling = await rawCeiling(influxd, readings);
    console.log(`influxd alone, raw line protocol of the burst's ${BURST} readings: ${ceiling}`);
    for (const n of SERVERS) {
      const servers: NodeRedProcess[] = [];
      for (const phase of ['paced', 'burst'] as const) {
        const db = `fleet_${n}_${phase}`;
        await createStackDatabase(influxd, db);
        for (let s = 0; s < n; s++) {
          const server = await startServer(s, db, dirs[dirs.push(tempDir('fleet-server')) - 1]);
          servers.push(server);
          await waitFor('a server link', () => server.log().includes('Connected to broker'), 30_000);
        }
        const fleet = new Fleet(readings, dirs[dirs.push(tempDir('fleet-pis')) - 1]);
        await fleet.connect(mosquitto.url);
        fleet.startHealth();
        const pids = { mosquitto: mosquitto.pid, influxd: influxd.pid, servers: servers.map((s) => s.pid) };
        const cpu0 = {
          mosquitto: cpuSeconds(pids.mosquitto),
          influxd: cpuSeconds(pids.influxd),
          servers: pids.servers.map(cpuSeconds),
          generator: process.cpuUsage(),
        };
        let brokerPeak = rssMiB(pids.mosquitto);
        const sentAt: { at: number; sent: number }[] = [];
        const storedAt: { at: number; stored: number }[] = [];
        const start = Date.now();
        let k = 0;
        if (phase === 'paced') {
          // The fleet's own pace: METERS / 10 readings/s, every 100 ms a tenth of a second's worth.
          const perTick = METERS / 100;
          let due = 0;
          await new Promise<void>((resolve) => {
            const timer = setInterval(() => {
              due += perTick;
              while (k < due) fleet.publish(k++);
              sentAt.push({ at: Date.now(), sent: fleet.sent });
              brokerPeak = Math.max(brokerPeak, rssMiB(pids.mosquitto));
              if (Date.now() - start >= SECONDS * 1000) {
                clearInterval(timer);
                resolve();
              }
            }, 100);
            const sampler = setInterval(() => {
              void count(influxd, db).then((stored) => storedAt.push({ at: Date.now(), stored }));
              if (Date.now() - start >= SECONDS * 1000) clearInterval(sampler);
            }, 500);
          });
        } else {
          // As fast as the Pis' spools and MQTT sessions take it: each Pi at most 1,000 readings in flight.
          while (k < BURST) {
            for (const until = Math.min(BURST, k + 2000); k < until;) fleet.publish(k++);
            await new Promise((r) => setImmediate(r));
          }
        }
        const total = fleet.sent;
        let stored = 0;
        await waitFor(
          `${total} points in ${db}`,
          async () => {
            stored = await count(influxd, db);
            storedAt.push({ at: Date.now(), stored });
            brokerPeak = Math.max(brokerPeak, rssMiB(pids.mosquitto));
            return stored >= total;
          },
          10 * 60_000,
        ).catch(() => undefined);
        const end = storedAt.find((s) => s.stored >= stored)!.at;
        const seconds = (end - start) / 1000;
        const cpu = (now: number, before: number) => `${(((now - before) / seconds) * 100).toFixed(0)} %`;
        const gen = process.cpuUsage(cpu0.generator);
        const perThousand = (now: number, before: number) =>
          `${(((now - before) * 1e6) / stored).toFixed(0)} ms`;
        const costs = `${perThousand(cpuSeconds(pids.mosquitto), cpu0.mosquitto)} / ${pids.servers
          .map((p, i) => perThousand(cpuSeconds(p), cpu0.servers[i]))
          .join(' + ')}`;
        const cpus = [
          `broker ${cpu(cpuSeconds(pids.mosquitto), cpu0.mosquitto)}`,
          `influxd ${cpu(cpuSeconds(pids.influxd), cpu0.influxd)}`,
          `servers ${pids.servers.map((p, i) => cpu(cpuSeconds(p), cpu0.servers[i])).join(' + ')}`,
          `generator ${(((gen.user + gen.system) / 1e6 / seconds) * 100).toFixed(0)} %`,
        ].join(', ');
        let latency = '';
        if (phase === 'paced') {
          // The k-th reading was sent at the first sample counting k sent, and queryable at the first counting k stored.
          const lat: number[] = [];
          for (let q = 1; q <= 200; q++) {
            const target = Math.floor((q / 200) * stored);
            const s = sentAt.find((x) => x.sent >= target);
            const t = storedAt.find((x) => x.stored >= target);
            if (s && t) lat.push(t.at - s.at);
          }
          lat.sort((a, b) => a - b);
          latency = `${pct(lat, 0.5)} ms / ${pct(lat, 0.99)} ms`;
        }
        const rate = Math.round(stored / seconds);
        rows.push(
          `| ${n} | ${phase === 'paced' ? `${METERS / 10}/s × ${SECONDS} s` : `burst ${BURST}`} | ${stored}/${total} | ${rate} | ${latency || '–'} | ${cpus} | ${costs} | ${fleet.resent} | ${brokerPeak.toFixed(0)} MiB |`,
        );
        console.log(rows[rows.length - 1]);
        await fleet.close();
        while (servers.length > 0) await servers.pop()!.stop();
      }
    }
    {
      // Restarts: the servers, then the broker, each while the fleet keeps its pace.
      const n = SERVERS[0];
      const db = 'fleet_restarts';
      await createStackDatabase(influxd, db);
      const serverDirs = Array.from({ length: n }, () => dirs[dirs.push(tempDir('fleet-server')) - 1]);
      const servers = await Promise.all(serverDirs.map((dir, s) => startServer(s, db, dir)));
      for (const server of servers)
        await waitFor('a server link', () => server.log().includes('Connected to broker'), 30_000);
      const fleet = new Fleet(readings, dirs[dirs.push(tempDir('fleet-pis')) - 1]);
      await fleet.connect(mosquitto.url);
      fleet.startHealth();
      let k = 0;
      const start = Date.now();
      const pace = setInterval(() => {
        const due = ((Date.now() - start) / 1000) * (METERS / 10);
        while (k < due) fleet.publish(k++);
      }, 100);
      const settleFor = async (ms: number) => new Promise((r) => setTimeout(r, ms));
      try {
        await settleFor(RESTART_SECONDS * 1000);
        let before = fleet.resent;
        for (const [s, server] of servers.entries()) {
          await server.stop();
          servers[s] = await startServer(s, db, serverDirs[s]);
        }
        await settleFor(RESTART_SECONDS * 1000);
        const afterServers = fleet.resent - before;
        before = fleet.resent;
        await mosquitto.stop();
        mosquitto = await startMosquitto({
          dir: brokerDir,
          port: mosquitto.port,
          global: projectBrokerSettings(),
        });
        await settleFor(RESTART_SECONDS * 1000);
        const afterBroker = fleet.resent - before;
        clearInterval(pace);
        let stored = 0;
        await waitFor(
          `${fleet.sent} points in ${db}`,
          async () => (stored = await count(influxd, db)) >= fleet.sent,
          10 * 60_000,
        ).catch(() => undefined);
        restarts.push(
          `| ${RELEASE} | ${n} | ${stored}/${fleet.sent} | ${afterServers} | ${afterBroker} | ${Math.round((RESTART_SECONDS * METERS) / 10)} |`,
        );
        console.log(restarts[0]);
      } finally {
        clearInterval(pace);
        await fleet.close();
        for (const server of servers) await server.stop();
      }
    }
    console.log(
      `\n${METERS} meters (one reading / 10 s each) behind ${PIS} Pis → mosquitto → N servers ($share) → influxd, one 2-core machine; Home Assistant discovery ${HA ? 'on' : 'off'}`,
    );
    console.log(
      `Released: ${RELEASE}; servers' subscription QoS ${process.env.FLEET_SERVER_QOS === '0' ? 0 : 1}; each Pi's health every ${HEALTH_SECONDS > 0 ? `${HEALTH_SECONDS} s` : 'never'} (FLEET_HEALTH_SECONDS)`,
    );
    console.log(
      '| Servers | Load | Stored/sent | Readings/s | Latency p50 / p99 | CPU (of one core) | CPU per 1,000 readings (broker / servers) | Re-sent | Broker peak RSS |',
    );
    console.log('|---|---|---|---|---|---|---|---|---|');
    for (const r of rows) console.log(r);
    console.log(
      `\nRestarts, at the fleet's pace, each followed by ${RESTART_SECONDS} s (readings the Pis sent again after it):`,
    );
    console.log(
      '| Released | Servers | Stored/sent | After the servers restarted | After the broker restarted | Readings in that time |',
    );
    console.log('|---|---|---|---|---|---|');
    for (const r of restarts) console.log(r);
    console.log(`influxd alone, raw line protocol of the burst's ${BURST} readings: ${ceiling}`);
  } finally {
    await mosquitto.stop();
    await influxd.stop();
    for (const d of dirs) fs.rmSync(d, { recursive: true, force: true });
  }
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
