/**
 * npm run bench:rollup — what teleinfo-rollup costs a fleet's InfluxDB. Live, every stored reading marks its meter's
 * current hour, and a pass recomputes that hour for every meter from the raw readings (at most every `currentEvery`
 * seconds: 600 as shipped). ROLLUP_METERS meters (default 10,000, one HC reading every 10 s each, written by the
 * shipped schema's line writer) fill one hour of influxd with the stack's policies, a quarter at a time; after each
 * quarter, one pass over every meter, as at that minute of the hour: its time, influxd's CPU for it, and that CPU as
 * a share of a core when it recurs every minute and every ten minutes. Beside it, influxd's CPU for storing the
 * quarter's readings, for scale.
 */
import { readingToLine } from '../nodes/lib';
import { V1Transport } from '../nodes/lib/influx/transport';
import { HOUR_MS, hourStart } from '../nodes/lib/rollup/paris-time';
import { Rollup } from '../nodes/lib/rollup/rollup';
import { hcReading } from '../test/support/readings';
import { createStackDatabase, startInfluxd } from '../test/support/services';
import { cpuSeconds } from './support/process-stats';

const METERS = Number(process.env.ROLLUP_METERS) || 10_000;
const STEP_MS = 10_000;
const DB = 'teleinfo';
const ADMIN = 'admin:adminpw';
const BATCH = 5_000;

async function main(): Promise<void> {
  const influxd = await startInfluxd({ adminPassword: 'adminpw' });
  const transport = new V1Transport({
    url: influxd.url,
    database: DB,
    user: 'server',
    password: 'serverpw',
    tls: { rejectUnauthorized: true },
    timeoutMs: 300_000,
    connections: 2,
  });
  try {
    await createStackDatabase(influxd, DB, ADMIN, '90d');
    for (const q of ["CREATE USER server WITH PASSWORD 'serverpw'", `GRANT ALL ON ${DB} TO server`])
      await influxd.query(q, undefined, ADMIN);
    // Every pass recomputes the current hour here: each is measured.
    const rollup = new Rollup(transport.database, { currentHourEveryMs: 0 });
    const meters = Array.from({ length: METERS }, (_, i) => `0218${String(i).padStart(8, '0')}`);
    // The last full hour: a pass marks it as the current one would be at that minute.
    const hour = hourStart(Date.now()) - HOUR_MS;
    const write = async (lines: string[]) => {
      const res = await fetch(`${influxd.url}/write?db=${DB}&precision=ms`, {
        method: 'POST',
        headers: { authorization: `Basic ${Buffer.from('server:serverpw').toString('base64')}` },
        body: lines.join('\n'),
      });
      if (res.status !== 204) throw new Error(`write: ${res.status} ${await res.text()}`);
    };

    console.log(
      `teleinfo-rollup at a fleet's scale: ${METERS.toLocaleString('en')} meters, a reading every ${STEP_MS / 1000} s each, influxd ${influxd.pid}`,
    );
    console.log(
      '| minute of the hour | points in the hour | pass | influxd CPU per pass | share of a core, a pass a minute | share of a core, every 10 minutes | influxd CPU storing the quarter |',
    );
    console.log('|---|---|---|---|---|---|---|');
    const quarter = HOUR_MS / 4;
    let points = 0;
    for (let q = 0; q < 4; q++) {
      const cpuWrite = cpuSeconds(influxd.pid);
      let lines: string[] = [];
      for (let t = hour + q * quarter; t < hour + (q + 1) * quarter; t += STEP_MS)
        for (let m = 0; m < METERS; m++) {
          lines.push(readingToLine(hcReading(meters[m], t + (m % STEP_MS), Math.floor(t / STEP_MS))));
          if (lines.length === BATCH) {
            await write(lines);
            points += lines.length;
            lines = [];
          }
        }
      if (lines.length > 0) await write(lines);
      points += lines.length;
      const storing = cpuSeconds(influxd.pid) - cpuWrite;

      const minute = ((q + 1) * quarter) / 60_000;
      const now = hour + (q + 1) * quarter - 1;
      for (const meter of meters) rollup.mark(meter, now, now);
      const cpu0 = cpuSeconds(influxd.pid);
      const t0 = performance.now();
      // As the shipped node's pass at that minute, when the current hour is due.
      while (await rollup.pass(AbortSignal.timeout(600_000), now));
      const ms = performance.now() - t0;
      const cpu = cpuSeconds(influxd.pid) - cpu0;
      if (rollup.counters.hours < METERS) throw new Error(`only ${rollup.counters.hours} hours rolled up`);
      rollup.counters.hours = 0;
      console.log(
        `| ${minute} | ${points.toLocaleString('en')} | ${(ms / 1000).toFixed(2)} s | ${cpu.toFixed(2)} s | ${((100 * cpu) / 60).toFixed(1)} % | ${((100 * cpu) / 600).toFixed(1)} % | ${storing.toFixed(1)} s |`,
      );
    }
  } finally {
    await transport.close();
    await influxd.stop();
  }
}

main().catch((err: unknown) => {
  console.error(err);
  process.exit(1);
});
