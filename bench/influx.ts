/**
 * npm run bench:influx — readings/s into one local influxd 1.6, in one run:
 *   raw baseline: the same line protocol POSTed directly to /write in 5000-line batches, one request at a time;
 *   ours: influx-teleinfo-out in a Node-RED flow (inject → function that emits one message per reading → node);
 *   node-red-contrib-influxdb 0.7 "influxdb out" in the same flow shape (one message per reading).
 * A run ends when InfluxDB counts every point (queryable), so spooling alone does not count as written.
 * Peak RSS is that of the Node-RED process. BENCH_READINGS (default 100000) sets the size; the contrib run
 * uses a tenth of it, since it is slow, or BENCH_CONTRIB_READINGS. Points a writer lost are printed.
 */
import path from 'node:path';
import { readingToLine } from '../nodes/lib';
import { ROOT } from '../test/support/fixtures';
import { startNodeRed, type NodeRedProcess } from '../test/support/node-red-process';
import { hcReading } from '../test/support/readings';
import { startInfluxd, waitFor, type Influxd } from '../test/support/services';
import { READING_FUNCTION } from './support/function-readings';
import { cpuSeconds, rssMiB } from './support/process-stats';

const N = Number(process.env.BENCH_READINGS) || 100_000;
const T0 = Date.parse('2026-01-20T00:00:00Z');

/**
 * Function-node code. A request to POST /prepare (answered on output 2) builds the `count` payloads, so
 * that the timed run measures delivery and writing, not the making of test data; any other message emits them,
 * 1000 per timer turn (the function sandbox has no setImmediate). Each message is new, so it is sent without the
 * function node's defensive clone, for both writers.
 */
function generator(count: number, shape: 'reading' | 'contrib'): string {
  return `
const count = ${count}, T0 = ${T0};
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
  for (let k = 0; k < 1000 && i < count; k++, i++) node.send([{ payload: payloads[i] }, null], false);
  if (i < count) setTimeout(burst, 0);
  else context.set('payloads', null);
}
burst();
return null;`;
}

function flow(database: string, influx: Influxd, count: number, writer: 'ours' | 'contrib'): unknown[] {
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
      func: generator(count, writer === 'ours' ? 'reading' : 'contrib'),
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

async function throughNodeRed(influx: Influxd, nr: NodeRedProcess, writer: 'ours' | 'contrib', n: number) {
  const db = `bench_${writer}`;
  await influx.query(`CREATE DATABASE ${db}`);
  await nr.deploy(flow(db, influx, n, writer));
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

async function raw(influx: Influxd, n: number) {
  await influx.query('CREATE DATABASE bench_raw');
  const lines = Array.from({ length: n }, (_, i) =>
    readingToLine(hcReading(`m${i % 50}`, T0 + Math.floor(i / 50) * 1000, i)),
  );
  const cpu0 = cpuSeconds(influx.pid);
  const start = process.hrtime.bigint();
  for (let i = 0; i < n; i += 5000) {
    const res = await fetch(`${influx.url}/write?db=bench_raw&precision=ms`, {
      method: 'POST',
      body: lines.slice(i, i + 5000).join('\n'),
    });
    if (res.status !== 204) throw new Error(`raw write: ${res.status} ${await res.text()}`);
  }
  await waitFor('raw points', () => complete(influx, 'bench_raw', n), 120_000);
  const seconds = Number(process.hrtime.bigint() - start) / 1e9;
  return { rate: n / seconds, seconds, cpu: { influxd: cpuSeconds(influx.pid) - cpu0 } };
}

async function main(): Promise<void> {
  const influx = await startInfluxd();
  // node-red-contrib-influxdb is a dev dependency: Node-RED finds it through nodesDir.
  const nr = await startNodeRed({
    env: { NODE_PATH: path.join(ROOT, 'node_modules') },
    // BENCH_NODE_ARGS="--cpu-prof --cpu-prof-dir=/tmp/prof" profiles the Node-RED process.
    nodeArgs: process.env.BENCH_NODE_ARGS?.split(' ').filter(Boolean),
  });
  try {
    const baseline = await raw(influx, N);
    console.log(
      `raw /write, 5000-line batches: ${N} readings in ${baseline.seconds.toFixed(2)} s = ${Math.round(baseline.rate)} readings/s; influxd CPU ${baseline.cpu.influxd.toFixed(2)} s`,
    );
    const ours = await throughNodeRed(influx, nr, 'ours', N);
    console.log(
      `influx-teleinfo-out: ${N} readings in ${ours.seconds.toFixed(2)} s = ${Math.round(ours.rate)} readings/s, peak RSS ${ours.peak.toFixed(0)} MiB; CPU Node-RED ${ours.cpu.nr.toFixed(2)} s, influxd ${ours.cpu.influxd.toFixed(2)} s`,
    );
    // BENCH_CONTRIB_READINGS=100000: contrib under the same 100,000-reading burst as ours (about a minute).
    const nContrib = Number(process.env.BENCH_CONTRIB_READINGS) || Math.max(1000, Math.round(N / 10));
    const contrib = await throughNodeRed(influx, nr, 'contrib', nContrib);
    console.log(
      `node-red-contrib-influxdb 0.7: ${nContrib} readings in ${contrib.seconds.toFixed(2)} s = ${Math.round(contrib.rate)} readings/s, peak RSS ${contrib.peak.toFixed(0)} MiB; CPU Node-RED ${contrib.cpu.nr.toFixed(2)} s, influxd ${contrib.cpu.influxd.toFixed(2)} s`,
    );
    console.log(
      '\n| Writer (same local influxd 1.6) | Sent | Stored | Readings/s | vs raw | Node-RED CPU per 1,000 | Peak RSS of Node-RED |',
    );
    console.log('|---|---|---|---|---|---|---|');
    console.log(
      `| raw line protocol, 5000-line batches | ${N} | ${N} | ${Math.round(baseline.rate)} | 100 % | – | – |`,
    );
    const perK = (cpu: number, n: number) => `${((cpu / n) * 1e6).toFixed(1)} ms`;
    console.log(
      `| influx-teleinfo-out (Node-RED flow) | ${N} | ${ours.stored} | ${Math.round(ours.rate)} | ${((ours.rate / baseline.rate) * 100).toFixed(0)} % | ${perK(ours.cpu.nr, N)} | ${ours.peak.toFixed(0)} MiB |`,
    );
    console.log(
      `| node-red-contrib-influxdb 0.7 influxdb out (same flow shape) | ${nContrib} | ${contrib.stored} | ${Math.round(contrib.rate)} | ${((contrib.rate / baseline.rate) * 100).toFixed(1)} % | ${perK(contrib.cpu.nr, nContrib)} | ${contrib.peak.toFixed(0)} MiB |`,
    );
    console.log(
      `\nours / raw = ${(ours.rate / baseline.rate).toFixed(2)} (goal ≥ 0.90); ours / node-red-contrib-influxdb = ${(ours.rate / contrib.rate).toFixed(1)}× (goal ≥ 25×); ours lost ${N - ours.stored}, contrib lost ${nContrib - contrib.stored}`,
    );
  } finally {
    await nr.stop();
    await influx.stop();
  }
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
