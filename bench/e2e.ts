/**
 * npm run bench:e2e — readings through the whole chain on this machine: the Pi instance (flows/pi.json, with a
 * generator in place of ecodevices-in) → mosquitto (project settings) → the server instance (flows/server.json)
 * → influxd. Two loads, each with BENCH_METERS (default 200) simulated meters:
 *   burst:     BENCH_BURST readings (default 40,000) as fast as the Pi emits them: readings/s sustained (while
 *              10 to 90 % of the points are stored) and over the whole run (which adds the wait of the last batch);
 *   paced:     BENCH_RATE readings/s (default 500) for BENCH_SECONDS (default 20): latency p50/p99 from the
 *              reading's own time to the moment its point is queryable (sampled every 100 ms).
 * The burst runs twice: with the Pi as shipped (up to 100 readings of a meter per message, 1,000 in flight), then
 * with one reading per message (100 in flight).
 * The same loads then go to the original design's shape instead of the server instance: a plain Node script
 * subscribing to the same topics and writing each MQTT message to InfluxDB on its own, one after the other, as the
 * seed's Java server did, and the burst's ratio of ours to it is printed. RSS is the peak of each Node-RED process.
 */
import fs from 'node:fs';
import path from 'node:path';
import { connect } from 'mqtt';
import { readingToLine, type Reading } from '../nodes/lib';
import { projectBrokerSettings } from '../test/support/end-to-end';
import { ROOT } from '../test/support/fixtures';
import { startInstance, type NodeRedProcess } from '../test/support/node-red-process';
import {
  startInfluxd,
  startMosquitto,
  tempDir,
  waitFor,
  type Influxd,
  type Mosquitto,
} from '../test/support/services';
import { READING_FUNCTION } from './support/function-readings';
import { cpuSeconds, rssMiB } from './support/process-stats';

const METERS = Number(process.env.BENCH_METERS) || 200;
const BURST = Number(process.env.BENCH_BURST) || 40_000;
const RATE = Number(process.env.BENCH_RATE) || 500;
const SECONDS = Number(process.env.BENCH_SECONDS) || 20;

/** POST /load {count, rate, meters}: readings stamped with the time they are emitted (unique per meter). */
const GENERATOR = `
${READING_FUNCTION}
const { count, rate, meters } = msg.payload;
const perTick = rate > 0 ? Math.max(1, Math.round(rate / 100)) : 1000;
const last = {};
let i = 0;
function tick() {
  for (let k = 0; k < perTick && i < count; k++, i++) {
    const meter = 'bench-' + (i % meters);
    const time = Math.max(Date.now(), (last[meter] || 0) + 1);
    last[meter] = time;
    node.send([{ payload: reading(meter, time, i) }, null], false);
  }
  if (i < count) setTimeout(tick, rate > 0 ? 10 : 0);
}
tick();
return [null, msg];`;

/**
 * The shipped Pi flow with a generator in place of ecodevices-in; `single`: its spool sends one reading per message
 * with 100 in flight (the shipped settings before readings of one meter shared a message; the seed's Pi too).
 */
function piFlows(single: boolean): unknown[] {
  const flows = JSON.parse(fs.readFileSync(path.join(ROOT, 'flows', 'pi.json'), 'utf8')) as {
    id: string;
    type: string;
    z?: string;
    perMessage?: string;
    window?: string;
  }[];
  const spool = flows.find((n) => n.id === 'pi-spool')!;
  if (single) Object.assign(spool, { perMessage: '1', window: '100' });
  return [
    ...flows.filter((n) => n.id !== 'pi-poll' && n.z !== 'tic-tab' && n.id !== 'tic-tab'),
    { id: 'load', z: 'pi-tab', type: 'http in', url: '/load', method: 'post', wires: [['gen']] },
    {
      id: 'gen',
      z: 'pi-tab',
      type: 'function',
      func: GENERATOR,
      outputs: 2,
      libs: [],
      wires: [['pi-spool'], ['loaded']],
    },
    { id: 'loaded', z: 'pi-tab', type: 'http response', statusCode: '200' },
  ];
}

/** The seed's shape: one synchronous InfluxDB write per MQTT message, in arrival order. */
async function seedShapeServer(broker: Mosquitto, influxd: Influxd, db: string) {
  const client = connect(broker.url, { clientId: 'seed-shape', clean: true });
  await new Promise((r) => client.once('connect', r));
  let chain = Promise.resolve();
  client.on('message', (_topic, payload) => {
    chain = chain.then(async () => {
      const line = readingToLine(JSON.parse(payload.toString()) as Reading);
      const res = await fetch(`${influxd.url}/write?db=${db}&precision=ms`, { method: 'POST', body: line });
      await res.arrayBuffer();
    });
  });
  await client.subscribeAsync('teleinfo/+/+/reading', { qos: 1 });
  return { stop: () => client.endAsync() };
}

async function count(influxd: Influxd, db: string): Promise<number> {
  const r = await influxd.query('SELECT count("phases") FROM teleinfo', db);
  return (r.results[0]?.series?.[0]?.values[0]?.[1] as number | undefined) ?? 0;
}

interface Run {
  readonly seconds: number;
  /** Points stored over the whole run, from the load's start to the last point queryable. */
  readonly rate: number;
  /**
   * Points stored per second while the chain is full: between the first samples counting 10 % and 90 % of them, so
   * neither the start nor the wait of the last batch (the time to queryable, measured as latency) counts.
   */
  readonly sustained: number;
  readonly p50: number;
  readonly p99: number;
  readonly stored: number;
  /** CPU of each watched process over the run, as a share of one core. */
  readonly cpu: string;
}

/** Offer a load through the Pi, sample the stored count every 100 ms, and work out rate and latencies. */
async function run(
  pi: NodeRedProcess,
  influxd: Influxd,
  db: string,
  n: number,
  rate: number,
  watch: number[],
  /** Processes whose CPU over the run is printed, by name. */
  cpuOf: [string, number][],
) {
  await influxd.query(`CREATE DATABASE ${db}`);
  const peaks = watch.map(() => 0);
  const cpu0 = cpuOf.map(([, pid]) => cpuSeconds(pid));
  const samples: { at: number; stored: number }[] = [];
  const start = Date.now();
  const res = await fetch(`${pi.url}/load`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ count: n, rate, meters: METERS }),
  });
  if (res.status !== 200) throw new Error(`load: ${res.status}`);
  let stalledSince = Date.now();
  let last = 0;
  await waitFor(
    `${n} points in ${db}`,
    async () => {
      watch.forEach((pid, i) => (peaks[i] = Math.max(peaks[i], rssMiB(pid))));
      const stored = await count(influxd, db);
      samples.push({ at: Date.now(), stored });
      if (stored > last) stalledSince = Date.now();
      last = stored;
      return stored >= n || Date.now() - stalledSince > 15_000;
    },
    30 * 60_000,
  );
  const end = samples.find((s) => s.stored >= last)!.at;
  const cpu = cpuOf
    .map(
      ([name, pid], i) =>
        `${name} ${Math.round(((cpuSeconds(pid) - cpu0[i]) / ((end - start) / 1000)) * 100)} %`,
    )
    .join(', ');
  // The k-th point (by its own time) became queryable at the first sample counting at least k points.
  const r = await influxd.query('SELECT "phases" FROM teleinfo', db);
  const times = ((r.results[0]?.series?.[0]?.values ?? []) as [number][])
    .map(([t]) => t)
    .sort((a, b) => a - b);
  const latencies: number[] = [];
  let s = 0;
  times.forEach((t, k) => {
    while (s < samples.length - 1 && samples[s].stored < k + 1) s++;
    latencies.push(samples[s].at - t);
  });
  latencies.sort((a, b) => a - b);
  const pct = (p: number) =>
    latencies[Math.min(latencies.length - 1, Math.floor(p * latencies.length))] ?? NaN;
  const first = (share: number) => samples.find((x) => x.stored >= share * last)!;
  const [from, to] = [first(0.1), first(0.9)];
  const result: Run = {
    seconds: (end - start) / 1000,
    rate: last / ((end - start) / 1000),
    sustained: to.at > from.at ? (to.stored - from.stored) / ((to.at - from.at) / 1000) : NaN,
    p50: pct(0.5),
    p99: pct(0.99),
    stored: last,
    cpu,
  };
  return { result, peaks };
}

function row(name: string, load: string, r: Run, n: number, rss: string) {
  return `| ${name} | ${load} | ${r.stored}/${n} | ${Math.round(r.sustained)} | ${Math.round(r.rate)} | ${r.p50} ms | ${r.p99} ms | ${r.cpu} | ${rss} |`;
}

async function main(): Promise<void> {
  const mosquitto = await startMosquitto({ global: projectBrokerSettings() });
  const influxd = await startInfluxd();
  const dirs: string[] = [];
  const env = { MQTT_URL: mosquitto.url, INFLUX_URL: influxd.url };
  const paced = RATE * SECONDS;
  // A fresh Pi for each run: a server's start asks the Pis to replay their last 60 s, which would land in the
  // next run's database.
  const startPi = async (single: boolean) => {
    const pi = await startInstance('pi', {
      dir: dirs[dirs.push(tempDir('bench-pi')) - 1],
      env: { ...env, PI_ID: 'bench' },
      flows: piFlows(single),
    });
    await waitFor('the Pi link', () => pi.log().includes('Connected to broker'), 30_000);
    return pi;
  };
  const rows: string[] = [];
  const bursts: Record<string, Run> = {};
  const running: { stop(): Promise<void> }[] = [];
  const stopRunning = async () => {
    while (running.length > 0) await running.pop()!.stop();
  };
  try {
    // As shipped (up to 100 readings of a meter per message), then one reading per message, side by side.
    for (const [db, n, rate, load, single] of [
      ['ours_burst', BURST, 0, 'burst', false],
      ['ours_burst_single', BURST, 0, 'burst', true],
      ['ours_paced', paced, RATE, `${RATE}/s × ${SECONDS} s`, false],
    ] as const) {
      const server = await startInstance('server', {
        dir: dirs[dirs.push(tempDir('bench-server')) - 1],
        env: { ...env, INFLUX_DB: db },
      });
      running.push(server);
      await waitFor('the server link', () => server.log().includes('Connected to broker'), 30_000);
      const pi = await startPi(single);
      running.push(pi);
      const ours = await run(
        pi,
        influxd,
        db,
        n,
        rate,
        [pi.pid, server.pid],
        [
          ['Pi', pi.pid],
          ['broker', mosquitto.pid],
          ['server', server.pid],
          ['influxd', influxd.pid],
        ],
      );
      const rss = `Pi ${ours.peaks[0].toFixed(0)} MiB, server ${ours.peaks[1].toFixed(0)} MiB`;
      const shape = single ? 'one reading per message' : 'up to 100 per message';
      if (db === 'ours_burst') bursts.ours = ours.result;
      rows.push(row(`ours (Node-RED server), Pi ${shape}`, load, ours.result, n, rss));
      console.log(rows[rows.length - 1]);
      await stopRunning();
    }
    for (const [db, n, rate, load] of [
      ['seed_burst', BURST, 0, 'burst'],
      ['seed_paced', paced, RATE, `${RATE}/s × ${SECONDS} s`],
    ] as const) {
      const seed = await seedShapeServer(mosquitto, influxd, db);
      running.push(seed);
      const pi = await startPi(true);
      running.push(pi);
      const r = await run(
        pi,
        influxd,
        db,
        n,
        rate,
        [pi.pid],
        [
          ['Pi', pi.pid],
          ['broker', mosquitto.pid],
          ['seed server (in this process)', process.pid],
          ['influxd', influxd.pid],
        ],
      );
      await stopRunning();
      if (db === 'seed_burst') bursts.seed = r.result;
      rows.push(
        row("seed's shape (one write per message)", load, r.result, n, `Pi ${r.peaks[0].toFixed(0)} MiB`),
      );
      console.log(rows[rows.length - 1]);
    }
    console.log(`\n${METERS} simulated meters; Pi → mosquitto → server → influxd on one 2-core machine`);
    console.log(
      '| Server | Load | Stored | Readings/s sustained (10–90 %) | Readings/s, whole run | Latency p50 | Latency p99 | CPU (of one core) | Peak RSS |',
    );
    console.log('|---|---|---|---|---|---|---|---|---|');
    for (const r of rows) console.log(r);
    const { ours, seed } = bursts;
    console.log(
      `\nBurst, ours (as shipped) against the seed's shape: ${(ours.sustained / seed.sustained).toFixed(1)}× sustained, ${(ours.rate / seed.rate).toFixed(1)}× over the whole run`,
    );
  } finally {
    await stopRunning();
    await mosquitto.stop();
    await influxd.stop();
    for (const d of dirs) fs.rmSync(d, { recursive: true, force: true });
  }
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
