/**
 * npm run bench:influx — readings/s into one local influxd 1.6, in one run:
 *   raw baseline: the same line protocol POSTed directly to /write in 5000-line batches, one request at a time,
 *   and 2 at a time (what influx-teleinfo-out does while InfluxDB keeps up);
 *   ours: influx-teleinfo-out in a Node-RED flow (inject → function that emits the readings → node), one
 *   reading per message and 100 per message (what the server's mqtt in gets from a Pi's teleinfo-spool);
 *   node-red-contrib-influxdb 0.7 "influxdb out" in the same flow shapes (an array of points for 100).
 * Raw and ours alternate for BENCH_ROUNDS rounds (default 3); the table gives the median round.
 * A run ends when InfluxDB counts every point (queryable), so spooling alone does not count as written.
 * Each writer run has a Node-RED process of its own; peak RSS is that process's. BENCH_READINGS (default 300000)
 * sets the size; the contrib run one per message uses a third of it (100,000), since it is slow, or
 * BENCH_CONTRIB_READINGS. Points a writer lost are printed.
 */
import path from 'node:path';
import { readingToLine } from '../nodes/lib';
import { ROOT } from '../test/support/fixtures';
import { startNodeRed, type NodeRedProcess } from '../test/support/node-red-process';
import { hcReading } from '../test/support/readings';
import { startInfluxd, waitFor, type Influxd } from '../test/support/services';
import { READING_FUNCTION } from './support/function-readings';
import { cpuSeconds, rssMiB } from './support/process-stats';
import { benchNodeArgs, medianRound } from './support/rounds';

const N = Number(process.env.BENCH_READINGS) || 300_000;
const T0 = Date.parse('2026-01-20T00:00:00Z');

/**
 * Function-node code. A request to POST /prepare (answered on output 2) builds the `count` payloads, so
 * that the timed run measures delivery and writing, not the making of test data; any other message emits them,
 * 1000 per timer turn (the function sandbox has no setImmediate). Each message is new, so it is sent without the
 * function node's defensive clone, for both writers.
 */
function generator(count: number, shape: 'reading' | 'contrib', perMessage: number): string {
  return `
const count = ${count}, T0 = ${T0}, perMessage = ${perMessage};
${READING_FUNCTION}
function payload(i) {
  const r = reading('m' + (i % 50), T0 + Math.floor(i / 50) * 1000, i);
  ${
    shape === 'reading'
      ? 'return r;'
      : `const fields = { time: new Date(Date.parse(r.time)), apparent_power: r.apparentPower, energy_total: r.energyTotal, phases: r.phases, overrun: r.overrun };
  for (const [key, value] of Object.entries(r.values)) fields[key] = value;
  return [fields, { meter: r.meter, source: r.source, tariff_option: r.tariffOption, tariff_period: r.tariffPeriod }];`
  }
}
if (msg.req) {
  context.set('payloads', Array.from({ length: count }, (_, i) => payload(i)));
  return [null, msg];
}
const payloads = context.get('payloads');
let i = 0;
function burst() {
  for (let k = 0; k < 1000 && i < count; k += perMessage, i += perMessage)
    node.send([{ payload: perMessage === 1 ? payloads[i] : payloads.slice(i, i + perMessage) }, null], false);
  if (i < count) setTimeout(burst, 0);
  else context.set('payloads', null);
}
burst();
return null;`;
}

function flow(
  database: string,
  influx: Influxd,
  count: number,
  writer: 'ours' | 'contrib',
  perMessage: number,
): unknown[] {
  const url = new URL(influx.url);
  const config =
    writer === 'ours'
      ? {
          id: 'dbconfig',
          type: 'influxdb-teleinfo-server',
          url: influx.url,
          api: '1',
          database,
          batchSize: '5000',
          flushMs: '1000',
        }
      : {
          id: 'dbconfig',
          type: 'influxdb',
          hostname: url.hostname,
          port: url.port,
          database,
          influxdbVersion: '1.x',
        };
  const out =
    writer === 'ours'
      ? { id: 'out', z: 'tab', type: 'influx-teleinfo-out', server: 'dbconfig', measurement: 'teleinfo' }
      : {
          id: 'out',
          z: 'tab',
          type: 'influxdb out',
          influxdb: 'dbconfig',
          measurement: 'teleinfo',
          precision: 'ms',
        };
  return [
    { id: 'tab', type: 'tab', label: 'bench' },
    config,
    { id: 'go', z: 'tab', type: 'inject', once: false, wires: [['gen']] },
    { id: 'prepare', z: 'tab', type: 'http in', url: '/prepare', method: 'post', wires: [['gen']] },
    {
      id: 'gen',
      z: 'tab',
      type: 'function',
      func: generator(count, writer === 'ours' ? 'reading' : 'contrib', perMessage),
      outputs: 2,
      libs: [],
      wires: [['out'], ['prepared']],
    },
    { id: 'prepared', z: 'tab', type: 'http response', statusCode: '200' },
    out,
  ];
}

/**
 * Counting every point costs influxd more the more there are: polling it during a run would slow the writer
 * under test. The last reading's point is checked first (cheap), then the full count confirms.
 */
async function complete(influx: Influxd, db: string, n: number): Promise<boolean> {
  const last = T0 + Math.floor((n - 1) / 50) * 1000;
  const r = await influx.query(`SELECT count("PAPP") FROM teleinfo WHERE time = ${last}ms`, db);
  if (!r.results[0]?.series) return false;
  return (await count(influx, db)) >= n;
}

async function count(influx: Influxd, db: string): Promise<number> {
  const r = await influx.query('SELECT count("PAPP") FROM teleinfo', db);
  return (r.results[0]?.series?.[0]?.values[0]?.[1] as number | undefined) ?? 0;
}

/**
 * One timed run, in a Node-RED process of its own: the generator's 300,000 prepared readings are a few hundred MB
 * of heap, and those of the runs before it, garbage V8 had not collected yet, made every third run in one process
 * pay full collections of a heap near 1 GB (at half the speed of the others).
 */
async function throughNodeRed(
  influx: Influxd,
  nodeArgs: string[],
  writer: 'ours' | 'contrib',
  n: number,
  db: string,
  perMessage = 1,
) {
  const nr = await startNodeRed({ env: { NODE_PATH: path.join(ROOT, 'node_modules') }, nodeArgs });
  try {
    return await timedRun(influx, nr, writer, n, db, perMessage);
  } finally {
    await nr.stop();
  }
}

async function timedRun(
  influx: Influxd,
  nr: NodeRedProcess,
  writer: 'ours' | 'contrib',
  n: number,
  db: string,
  perMessage: number,
) {
  await influx.query(`CREATE DATABASE ${db}`);
  await nr.deploy(flow(db, influx, n, writer, perMessage));
  const prepared = await fetch(`${nr.url}/prepare`, { method: 'POST' });
  if (prepared.status !== 200) throw new Error(`prepare failed: ${prepared.status}`);
  let peak = rssMiB(nr.pid);
  const cpu0 = { nr: cpuSeconds(nr.pid), influxd: cpuSeconds(influx.pid) };
  const start = process.hrtime.bigint();
  const res = await fetch(`${nr.url}/inject/go`, { method: 'POST' });
  if (res.status !== 200) throw new Error(`inject failed: ${res.status}`);
  // Done when every point is there, or when the count has not moved for 10 s (a writer that lost points).
  let stored = 0;
  let movedAt = Date.now();
  let lastCheck = 0;
  let end = start;
  await waitFor(
    `${n} points from ${writer}`,
    async () => {
      peak = Math.max(peak, rssMiB(nr.pid));
      if (await complete(influx, db, n)) {
        stored = n;
        end = process.hrtime.bigint();
        return true;
      }
      if (Date.now() - lastCheck < 1000) return false;
      lastCheck = Date.now();
      const now = await count(influx, db);
      if (now > stored) {
        stored = now;
        movedAt = Date.now();
        end = process.hrtime.bigint();
      }
      return Date.now() - movedAt > 10_000;
    },
    Number(process.env.BENCH_TIMEOUT_MS) || 30 * 60_000,
  ).catch((e: Error) => {
    console.error(nr.log().slice(-3000));
    throw e;
  });
  if (stored < n) console.log(`${writer}: only ${stored} of ${n} points stored; ${n - stored} lost`);
  const seconds = Number(end - start) / 1e9;
  const cpu = { nr: cpuSeconds(nr.pid) - cpu0.nr, influxd: cpuSeconds(influx.pid) - cpu0.influxd };
  return { rate: stored / seconds, seconds, peak, cpu, stored };
}

/** The same lines POSTed straight to /write in 5000-line batches, `inFlight` requests at a time. */
async function raw(influx: Influxd, n: number, db: string, inFlight: number) {
  await influx.query(`CREATE DATABASE ${db}`);
  const lines = Array.from({ length: n }, (_, i) =>
    readingToLine(hcReading(`m${i % 50}`, T0 + Math.floor(i / 50) * 1000, i)),
  );
  const bodies: string[] = [];
  for (let i = 0; i < n; i += 5000) bodies.push(lines.slice(i, i + 5000).join('\n'));
  const cpu0 = cpuSeconds(influx.pid);
  const start = process.hrtime.bigint();
  let next = 0;
  const post = async () => {
    while (next < bodies.length) {
      const body = bodies[next++];
      const res = await fetch(`${influx.url}/write?db=${db}&precision=ms`, { method: 'POST', body });
      if (res.status !== 204) throw new Error(`raw write: ${res.status} ${await res.text()}`);
    }
  };
  await Promise.all(Array.from({ length: inFlight }, post));
  await waitFor('raw points', () => complete(influx, db, n), 120_000);
  const seconds = Number(process.hrtime.bigint() - start) / 1e9;
  return { rate: n / seconds, seconds, cpu: { influxd: cpuSeconds(influx.pid) - cpu0 } };
}

type RawResult = Awaited<ReturnType<typeof raw>>;
type WriterResult = Awaited<ReturnType<typeof timedRun>>;

async function main(): Promise<void> {
  const influx = await startInfluxd();
  // node-red-contrib-influxdb is a dev dependency: Node-RED finds it through nodesDir.
  // eslint-disable-next-line @typescript-eslint/no-require-imports -- the launcher is plain JS shared with npm start
  const { NODE_ARGS } = require(path.join(ROOT, 'scripts', 'instance.js')) as {
    NODE_ARGS: { server: string[] };
  };
  // The server instance's Node flags, as the launcher runs it; BENCH_NODE_ARGS adds some
  // ("--cpu-prof --cpu-prof-dir=/tmp/prof" profiles the Node-RED process).
  const nodeArgs = [...NODE_ARGS.server, ...benchNodeArgs()];
  console.log(
    `Node-RED runs with ${nodeArgs.join(' ') || "Node's default flags"}, a new process for each run`,
  );
  try {
    // influxd's own speed drifts within a run (by a third between two raw runs): raw and ours alternate, in
    // fresh databases, and each round's ratio is taken against its own raw run.
    const rounds = Number(process.env.BENCH_ROUNDS) || 3;
    const results: { raw: RawResult; raw2: RawResult; ours: WriterResult; ours100: WriterResult }[] = [];
    for (let round = 1; round <= rounds; round++) {
      const baseline = await raw(influx, N, `bench_raw_${round}`, 1);
      const raw2 = await raw(influx, N, `bench_raw2_${round}`, 2);
      const ours = await throughNodeRed(influx, nodeArgs, 'ours', N, `bench_ours_${round}`);
      const ours100 = await throughNodeRed(influx, nodeArgs, 'ours', N, `bench_ours100_${round}`, 100);
      results.push({ raw: baseline, raw2, ours, ours100 });
      const pct = (a: number, b: number) => `${((a / b) * 100).toFixed(0)} %`;
      console.log(
        `round ${round}: raw ${Math.round(baseline.rate)}/s (influxd CPU ${baseline.cpu.influxd.toFixed(2)} s), raw 2 in flight ${Math.round(raw2.rate)}/s; influx-teleinfo-out one reading per message ${Math.round(ours.rate)}/s (${pct(ours.rate, baseline.rate)} of raw, Node-RED CPU ${ours.cpu.nr.toFixed(2)} s, influxd ${ours.cpu.influxd.toFixed(2)} s, peak RSS ${ours.peak.toFixed(0)} MiB), 100 per message ${Math.round(ours100.rate)}/s (${pct(ours100.rate, baseline.rate)} of raw, ${pct(ours100.rate, raw2.rate)} of raw 2 in flight, Node-RED CPU ${ours100.cpu.nr.toFixed(2)} s)`,
      );
    }
    // Contrib one per message takes a burst of 100,000 readings (a third of ours: it is slow);
    // BENCH_CONTRIB_READINGS=300000 gives it the same burst as ours (a few minutes).
    const nContrib = Number(process.env.BENCH_CONTRIB_READINGS) || Math.max(1000, Math.round(N / 3));
    const contrib = await throughNodeRed(influx, nodeArgs, 'contrib', nContrib, 'bench_contrib');
    const contrib100 = await throughNodeRed(influx, nodeArgs, 'contrib', N, 'bench_contrib100', 100);
    for (const [name, c, n] of [
      ['one per message', contrib, nContrib],
      ['100 per message', contrib100, N],
    ] as const)
      console.log(
        `node-red-contrib-influxdb 0.7, ${name}: ${n} readings in ${c.seconds.toFixed(2)} s = ${Math.round(c.rate)} readings/s, peak RSS ${c.peak.toFixed(0)} MiB; CPU Node-RED ${c.cpu.nr.toFixed(2)} s, influxd ${c.cpu.influxd.toFixed(2)} s`,
      );
    const ratio = (r: (typeof results)[number]) => r.ours.rate / r.raw.rate;
    const mid = medianRound(results, ratio);
    const ratio100 = (r: (typeof results)[number]) => r.ours100.rate / r.raw.rate;
    const mid100 = medianRound(results, ratio100);
    const perK = (cpu: number, n: number) => `${((cpu / n) * 1e6).toFixed(1)} ms`;
    console.log(
      `\n| Writer (same local influxd 1.6; median rounds of ${rounds}) | Sent | Stored | Readings/s | vs raw | Node-RED CPU per 1,000 | Peak RSS of Node-RED |`,
    );
    console.log('|---|---|---|---|---|---|---|');
    const row = (
      name: string,
      n: number,
      stored: number,
      rate: number,
      base: number,
      cpu: string,
      peak: string,
    ) =>
      console.log(
        `| ${name} | ${n} | ${stored} | ${Math.round(rate)} | ${((rate / base) * 100).toFixed(rate / base < 0.1 ? 1 : 0)} % | ${cpu} | ${peak} |`,
      );
    row('raw line protocol, 5000-line batches, one at a time', N, N, mid.raw.rate, mid.raw.rate, '–', '–');
    row('raw line protocol, 5000-line batches, 2 in flight', N, N, mid.raw2.rate, mid.raw.rate, '–', '–');
    for (const [name, r, base] of [
      ['influx-teleinfo-out, one reading per message', mid.ours, mid.raw.rate],
      ['influx-teleinfo-out, 100 readings per message', mid100.ours100, mid100.raw.rate],
    ] as const)
      row(name, N, r.stored, r.rate, base, perK(r.cpu.nr, N), `${r.peak.toFixed(0)} MiB`);
    for (const [name, c, n] of [
      ['node-red-contrib-influxdb 0.7, one per message', contrib, nContrib],
      ['node-red-contrib-influxdb 0.7, 100 per message', contrib100, N],
    ] as const)
      row(name, n, c.stored, c.rate, mid.raw.rate, perK(c.cpu.nr, n), `${c.peak.toFixed(0)} MiB`);
    const lost = results.reduce((n, r) => n + 2 * N - r.ours.stored - r.ours100.stored, 0);
    console.log(
      `\nours / raw = ${ratio(mid).toFixed(2)} one per message, ${ratio100(mid100).toFixed(2)} 100 per message (goal ≥ 0.90; rounds ${results.map((r) => `${ratio(r).toFixed(2)}/${ratio100(r).toFixed(2)}`).join(', ')})`,
    );
    console.log(
      `ours / node-red-contrib-influxdb = ${(mid.ours.rate / contrib.rate).toFixed(1)}× one per message, ${(mid100.ours100.rate / contrib100.rate).toFixed(1)}× 100 per message (goal ≥ 25×); ours lost ${lost} in ${rounds * 2} runs, contrib lost ${nContrib - contrib.stored} and ${N - contrib100.stored}`,
    );
  } finally {
    await influx.stop();
  }
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
