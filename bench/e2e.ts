/**
 * npm run bench:e2e — readings through the whole chain on this machine: the Pi instance (flows/pi.json, with a
 * generator in place of ecodevices-in) → mosquitto (project settings) → the server instance (flows/server.json)
 * → influxd. Two loads, each with BENCH_METERS (default 200) simulated meters:
 *   burst:     BENCH_BURST readings (default 40,000) as fast as the Pi emits them: readings/s sustained (while
 *              10 to 90 % of the points are stored) and over the whole run (which adds the wait of the last batch);
 *   paced:     BENCH_RATE readings/s (default 500) for BENCH_SECONDS (default 20): latency p50/p99 from the
 *              reading's own time to the moment its point is queryable (sampled every 100 ms).
 * The same loads also go to the original design's shape instead of the server instance: a plain Node script
 * subscribing to the same topics and writing each MQTT message to InfluxDB on its own, one after the other, as the
 * seed's Java server did. The burst with the Pi as shipped (up to 100 readings of a meter per message, 1,000 in
 * flight) and the seed's burst alternate for BENCH_ROUNDS rounds (default 3), and the median round's ratio is
 * printed; then a burst with one reading per message (100 in flight) and the paced loads, once each. Every run has
 * a fresh Pi and server. RSS is the peak of each Node-RED process; BENCH_NODE_ARGS adds Node flags to both.
 */
import fs from 'node:fs';
import path from 'node:path';
import { connect, connectAsync } from 'mqtt';
import { readingToLine, type Reading } from '../nodes/lib';
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
  type Mosquitto,
} from '../test/support/services';
import { READING_FUNCTION } from './support/function-readings';
import { cpuSeconds, rssMiB } from './support/process-stats';
import { benchNodeArgs, medianRound } from './support/rounds';

const METERS = Number(process.env.BENCH_METERS) || 200;
const BURST = Number(process.env.BENCH_BURST) || 40_000;
const RATE = Number(process.env.BENCH_RATE) || 500;
const SECONDS = Number(process.env.BENCH_SECONDS) || 20;
const ROUNDS = Number(process.env.BENCH_ROUNDS) || 3;
/** Added to the Pi's and the server's Node flags. */
const NODE_ARGS = benchNodeArgs();
/** The server's MQTT session, ended between runs. */
const SERVER_CLIENT_ID = 'bench-server';

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
  // Meters' points have phases, water and gas counters' an index.
  const r = await influxd.query('SELECT count("phases"), count("index") FROM teleinfo', db);
  const [, meters, counters] = (r.results[0]?.series?.[0]?.values[0] ?? []) as (number | null)[];
  return (meters ?? 0) + (counters ?? 0);
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
  await createStackDatabase(influxd, db);
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
  const r = await influxd.query('SELECT "phases", "index" FROM teleinfo', db);
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
      nodeArgs: NODE_ARGS,
      dir: dirs[dirs.push(tempDir('bench-pi')) - 1],
      env: { ...env, PI_ID: 'bench' },
      flows: piFlows(single),
    });
    await waitFor('the Pi link', () => pi.log().includes('Connected to broker'), 30_000);
    return pi;
  };
  const running: { stop(): Promise<void> }[] = [];
  const stopRunning = async () => {
    while (running.length > 0) await running.pop()!.stop();
  };
  /** The load offered through `pi`: CPU of the chain's processes, peak RSS of those `watched`. */
  const measure = (
    pi: NodeRedProcess,
    db: string,
    n: number,
    rate: number,
    ingest: [string, number],
    watched: number[],
  ) =>
    run(pi, influxd, db, n, rate, watched, [
      ['Pi', pi.pid],
      ['broker', mosquitto.pid],
      ingest,
      ['influxd', influxd.pid],
    ]);
  /** The load through a fresh Pi and a fresh server instance, as shipped or one reading per message. */
  const throughOurs = async (db: string, n: number, rate: number, single: boolean) => {
    const server = await startInstance('server', {
      nodeArgs: NODE_ARGS,
      dir: dirs[dirs.push(tempDir('bench-server')) - 1],
      env: { ...env, INFLUX_DB: db, MQTT_CLIENT_ID: SERVER_CLIENT_ID },
    });
    running.push(server);
    await waitFor('the server link', () => server.log().includes('Connected to broker'), 30_000);
    const pi = await startPi(single);
    running.push(pi);
    const ours = await measure(pi, db, n, rate, ['server', server.pid], [pi.pid, server.pid]);
    await stopRunning();
    // The server's persistent session would queue the seed's run for the next server: end it.
    await connectAsync(mosquitto.url, {
      clientId: SERVER_CLIENT_ID,
      protocolVersion: 5,
      clean: true,
    }).then((c) => c.endAsync());
    const shape = single ? 'one reading per message' : 'up to 100 per message';
    const rss = `Pi ${ours.peaks[0].toFixed(0)} MiB, server ${ours.peaks[1].toFixed(0)} MiB`;
    return {
      result: ours.result,
      row: (load: string) => row(`ours (Node-RED server), Pi ${shape}`, load, ours.result, n, rss),
    };
  };
  /** The load through a fresh Pi (one reading per message) to the seed's shape. */
  const throughSeed = async (db: string, n: number, rate: number) => {
    const seed = await seedShapeServer(mosquitto, influxd, db);
    running.push(seed);
    const pi = await startPi(true);
    running.push(pi);
    const r = await measure(pi, db, n, rate, ['seed server (in this process)', process.pid], [pi.pid]);
    await stopRunning();
    return {
      result: r.result,
      row: (load: string) =>
        row("seed's shape (one write per message)", load, r.result, n, `Pi ${r.peaks[0].toFixed(0)} MiB`),
    };
  };
  const rows: string[] = [];
  const print = (line: string) => {
    rows.push(line);
    console.log(line);
  };
  try {
    // The bursts, ours as shipped (up to 100 readings of a meter per message) and the seed's shape, alternate for
    // BENCH_ROUNDS rounds: the machine's speed moves between two runs of the same chain, so each round's ratio is
    // taken against the seed's run beside it, and the median round is kept.
    const rounds: { ours: Run; seed: Run; rows: string[] }[] = [];
    for (let round = 1; round <= ROUNDS; round++) {
      const ours = await throughOurs(`ours_burst_${round}`, BURST, 0, false);
      const seed = await throughSeed(`seed_burst_${round}`, BURST, 0);
      rounds.push({ ours: ours.result, seed: seed.result, rows: [ours.row('burst'), seed.row('burst')] });
      console.log(`round ${round}:\n${rounds[round - 1].rows.join('\n')}`);
      console.log(
        `round ${round}: ours ${(ours.result.sustained / seed.result.sustained).toFixed(1)}× the seed's shape sustained, ${(ours.result.rate / seed.result.rate).toFixed(1)}× over the whole run`,
      );
    }
    const ratio = (r: (typeof rounds)[number]) => r.ours.sustained / r.seed.sustained;
    const mid = medianRound(rounds, ratio);
    const single = await throughOurs('ours_burst_single', BURST, 0, true);
    print(mid.rows[0]);
    print(single.row('burst'));
    const load = `${RATE}/s × ${SECONDS} s`;
    print((await throughOurs('ours_paced', paced, RATE, false)).row(load));
    print(mid.rows[1]);
    print((await throughSeed('seed_paced', paced, RATE)).row(load));
    console.log(
      `\n${METERS} simulated meters; Pi → mosquitto → server → influxd on one 2-core machine; bursts: the median round of ${ROUNDS}`,
    );
    console.log(
      '| Server | Load | Stored | Readings/s sustained (10–90 %) | Readings/s, whole run | Latency p50 | Latency p99 | CPU (of one core) | Peak RSS |',
    );
    console.log('|---|---|---|---|---|---|---|---|---|');
    for (const r of rows) console.log(r);
    console.log(
      `\nBurst, ours (as shipped) against the seed's shape: ${ratio(mid).toFixed(1)}× sustained, ${(mid.ours.rate / mid.seed.rate).toFixed(1)}× over the whole run (median round; rounds ${rounds.map((r) => `${ratio(r).toFixed(1)}×`).join(', ')}; goal ≥ 15×)`,
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
