/**
 * npm run bench:influx — readings/s into one local influxd 1.6, in one run:
 *   raw baseline: the same line protocol POSTed directly to /write in 5000-line batches, one request at a time;
 *   ours: influx-teleinfo-out in a Node-RED flow (inject → function that emits one message per reading → node);
 *   node-red-contrib-influxdb 0.7 "influxdb out" in the same flow shape (one message per reading).
 * A run ends when InfluxDB counts every point (queryable), so spooling alone does not count as written.
 * Peak RSS is that of the Node-RED process. BENCH_READINGS (default 100000) sets the size; the contrib run
 * uses a tenth of it, since it is slow.
 */
import path from 'node:path';
import { readingToLine } from '../nodes/lib';
import { ROOT } from '../test/support/fixtures';
import { startNodeRed, type NodeRedProcess } from '../test/support/node-red-process';
import { hcReading } from '../test/support/readings';
import { startInfluxd, waitFor, type Influxd } from '../test/support/services';
import { rssMiB } from './support/process-stats';

const N = Number(process.env.BENCH_READINGS) || 100_000;
const T0 = Date.parse('2026-01-20T00:00:00Z');

/** Function-node code that emits `count` readings, 1000 per timer turn (the function sandbox has no setImmediate). */
function generator(count: number, shape: 'reading' | 'contrib'): string {
  return `
const count = ${count}, T0 = ${T0};
// The readings of test/support/readings.ts hcReading(), written out so that the function node needs no module.
function reading(meter, time, i) {
  const values = { ADCO: meter, OPTARIF: 'HC..', ISOUSC: 45, HCHC: 10000000 + i, HCHP: 20000000 + 2 * i,
    PTEC: i % 2 === 0 ? 'HC..' : 'HP..', IINST: 5 + (i % 7), IMAX: 90, PAPP: 1000 + (i % 100) * 10, HHPHC: 'A', MOTDETAT: '000000' };
  return { meter, source: 'tic-historic', time: new Date(time).toISOString(), tariffOption: 'HC',
    tariffPeriod: i % 2 === 0 ? 'HC' : 'HP', apparentPower: values.PAPP, energyTotal: values.HCHC + values.HCHP,
    energyIndexes: { HCHC: values.HCHC, HCHP: values.HCHP }, currents: [values.IINST], phases: 1, overrun: false, values };
}
let i = 0;
function burst() {
  for (let k = 0; k < 1000 && i < count; k++, i++) {
    const r = reading('m' + (i % 50), T0 + Math.floor(i / 50) * 1000, i);
    ${
      shape === 'reading'
        ? 'node.send({ payload: r });'
        : `const fields = { time: new Date(Date.parse(r.time)), apparent_power: r.apparentPower, energy_total: r.energyTotal, phases: r.phases, overrun: r.overrun };
    for (const [key, value] of Object.entries(r.values)) fields[key] = value;
    node.send({ payload: [fields, { meter: r.meter, source: r.source, tariff_option: r.tariffOption, tariff_period: r.tariffPeriod }] });`
    }
  }
  if (i < count) setTimeout(burst, 0);
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
    {
      id: 'gen',
      z: 'tab',
      type: 'function',
      func: generator(count, writer === 'ours' ? 'reading' : 'contrib'),
      outputs: 1,
      libs: [],
      wires: [['out']],
    },
    out,
  ];
}

async function count(influx: Influxd, db: string): Promise<number> {
  const r = await influx.query('SELECT count("PAPP") FROM teleinfo', db);
  return (r.results[0]?.series?.[0]?.values[0]?.[1] as number | undefined) ?? 0;
}

async function throughNodeRed(influx: Influxd, nr: NodeRedProcess, writer: 'ours' | 'contrib', n: number) {
  const db = `bench_${writer}`;
  await influx.query(`CREATE DATABASE ${db}`);
  await nr.deploy(flow(db, influx, n, writer));
  let peak = rssMiB(nr.pid);
  const start = process.hrtime.bigint();
  const res = await fetch(`${nr.url}/inject/go`, { method: 'POST' });
  if (res.status !== 200) throw new Error(`inject failed: ${res.status}`);
  await waitFor(
    `${n} points from ${writer}`,
    async () => {
      peak = Math.max(peak, rssMiB(nr.pid));
      return (await count(influx, db)) >= n;
    },
    Number(process.env.BENCH_TIMEOUT_MS) || 30 * 60_000,
  ).catch((e: Error) => {
    console.error(nr.log().slice(-3000));
    throw e;
  });
  const seconds = Number(process.hrtime.bigint() - start) / 1e9;
  return { rate: n / seconds, seconds, peak };
}

async function raw(influx: Influxd, n: number) {
  await influx.query('CREATE DATABASE bench_raw');
  const lines = Array.from({ length: n }, (_, i) =>
    readingToLine(hcReading(`m${i % 50}`, T0 + Math.floor(i / 50) * 1000, i)),
  );
  const start = process.hrtime.bigint();
  for (let i = 0; i < n; i += 5000) {
    const res = await fetch(`${influx.url}/write?db=bench_raw&precision=ms`, {
      method: 'POST',
      body: lines.slice(i, i + 5000).join('\n'),
    });
    if (res.status !== 204) throw new Error(`raw write: ${res.status} ${await res.text()}`);
  }
  await waitFor('raw points', async () => (await count(influx, 'bench_raw')) >= n, 120_000);
  const seconds = Number(process.hrtime.bigint() - start) / 1e9;
  return { rate: n / seconds, seconds };
}

async function main(): Promise<void> {
  const influx = await startInfluxd();
  // node-red-contrib-influxdb is a dev dependency: Node-RED finds it through nodesDir.
  const nr = await startNodeRed({ env: { NODE_PATH: path.join(ROOT, 'node_modules') } });
  try {
    const baseline = await raw(influx, N);
    console.log(
      `raw /write, 5000-line batches: ${N} readings in ${baseline.seconds.toFixed(2)} s = ${Math.round(baseline.rate)} readings/s`,
    );
    const ours = await throughNodeRed(influx, nr, 'ours', N);
    console.log(
      `influx-teleinfo-out: ${N} readings in ${ours.seconds.toFixed(2)} s = ${Math.round(ours.rate)} readings/s, peak RSS ${ours.peak.toFixed(0)} MiB`,
    );
    const nContrib = Math.max(1000, Math.round(N / 10));
    const contrib = await throughNodeRed(influx, nr, 'contrib', nContrib);
    console.log(
      `node-red-contrib-influxdb 0.7: ${nContrib} readings in ${contrib.seconds.toFixed(2)} s = ${Math.round(contrib.rate)} readings/s, peak RSS ${contrib.peak.toFixed(0)} MiB`,
    );
    console.log(
      '\n| Writer (same local influxd 1.6) | Readings | Readings/s | vs raw | Peak RSS of Node-RED |',
    );
    console.log('|---|---|---|---|---|');
    console.log(`| raw line protocol, 5000-line batches | ${N} | ${Math.round(baseline.rate)} | 100 % | – |`);
    console.log(
      `| influx-teleinfo-out (Node-RED flow) | ${N} | ${Math.round(ours.rate)} | ${((ours.rate / baseline.rate) * 100).toFixed(0)} % | ${ours.peak.toFixed(0)} MiB |`,
    );
    console.log(
      `| node-red-contrib-influxdb 0.7 influxdb out (same flow shape) | ${nContrib} | ${Math.round(contrib.rate)} | ${((contrib.rate / baseline.rate) * 100).toFixed(1)} % | ${contrib.peak.toFixed(0)} MiB |`,
    );
    console.log(
      `\nours / raw = ${(ours.rate / baseline.rate).toFixed(2)} (goal ≥ 0.80); ours / node-red-contrib-influxdb = ${(ours.rate / contrib.rate).toFixed(1)}× (goal ≥ 20×)`,
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
