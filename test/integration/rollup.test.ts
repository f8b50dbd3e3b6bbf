import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { V1Transport } from '../../nodes/lib/influx/transport';
import { Rollup } from '../../nodes/lib/rollup/rollup';
import { dashboard, expand } from '../support/dashboard';
import { createStackDatabase, serviceSkip, startInfluxd, waitFor, type Influxd } from '../support/services';

/**
 * A year of readings in influxd with the stack's policies, stored before there were rollups, then backfilled by
 * lib/rollup with the server's account (ALL on
 * its database, no admin): three contracts (HC, Tempo, a water counter), both DST changes, a meter swapped (its
 * indexes start again near zero), a day that arrives late. The daily and monthly rollups match the energy of the
 * raw readings Wh for Wh per Paris day and tariff period; then the raw policy is cut to 90 days, InfluxDB drops the
 * older readings, and the rollups stay.
 */

const ADMIN = 'admin:adminpw';
const DB = 'year';
const STEP = 15 * 60_000;
const DAY = 86_400_000;
const HOUR = 3_600_000;

const parisDate = new Intl.DateTimeFormat('sv-SE', { timeZone: 'Europe/Paris', dateStyle: 'short' });
const parisHour = new Intl.DateTimeFormat('en-GB', {
  timeZone: 'Europe/Paris',
  hour: '2-digit',
  hourCycle: 'h23',
});

interface Generated {
  meter: string;
  time: number;
  fields: Record<string, number>;
  power: number | null;
}

/** Seeded: the same year every run. */
function random(seed: number): () => number {
  let s = seed >>> 0;
  return () => (s = (s * 1664525 + 1013904223) >>> 0) / 2 ** 32;
}

function generateYear(end: number, swapAt: number): Generated[] {
  const rnd = random(7);
  const out: Generated[] = [];
  const hc: Record<string, number> = { HCHC: 12_345_678, HCHP: 23_456_789 };
  const tempo: Record<string, number> = {};
  for (const l of ['BBRHCJB', 'BBRHPJB', 'BBRHCJW', 'BBRHPJW', 'BBRHCJR', 'BBRHPJR']) tempo[l] = 1_000_000;
  let water = 1234.5;
  for (let t = end - 366 * DAY; t < end; t += STEP) {
    const hour = Number(parisHour.format(t));
    const offPeak = hour >= 22 || hour < 6;
    if (t === swapAt) {
      // A new meter: its indexes start again near zero.
      hc.HCHC = 0;
      hc.HCHP = 0;
    }
    const hcLabel = offPeak ? 'HCHC' : 'HCHP';
    hc[hcLabel] += Math.round(rnd() * 900);
    out.push({ meter: '021861348497', time: t, fields: { ...hc }, power: Math.round(rnd() * 6000) });
    const colour = ['B', 'W', 'R'][Math.floor(t / DAY) % 3];
    const tempoLabel = `BBR${offPeak ? 'HC' : 'HP'}J${colour}`;
    tempo[tempoLabel] += Math.round(rnd() * 1500);
    out.push({ meter: '041876097842', time: t, fields: { ...tempo }, power: Math.round(rnd() * 9000) });
    water += Math.round(rnd() * 40) / 10;
    out.push({ meter: 'box-water', time: t, fields: { index: water }, power: null });
  }
  return out;
}

function line(g: Generated): string {
  const fields = Object.entries(g.fields).map(([k, v]) => (k === 'index' ? `${k}=${v}` : `${k}=${v}i`));
  if (g.power !== null) fields.push(`apparent_power=${g.power}i`);
  return `teleinfo,meter=${g.meter} ${fields.join(',')} ${g.time}`;
}

/** Energy per meter, Paris period key (a day or a month) and field: each reading's rise over the previous one, a
 * fall (a new meter) counting nothing. */
function truth(readings: Generated[], period: (t: number) => string): Map<string, number> {
  const sums = new Map<string, number>();
  const last = new Map<string, Record<string, number>>();
  for (const r of [...readings].sort((a, b) => a.time - b.time)) {
    const before = last.get(r.meter);
    if (before)
      for (const [f, v] of Object.entries(r.fields)) {
        const k = `${r.meter} ${period(r.time)} ${f}`;
        sums.set(k, (sums.get(k) ?? 0) + Math.max(0, v - (before[f] ?? v)));
      }
    last.set(r.meter, r.fields);
  }
  return sums;
}

describe(
  'rollups over a year, against influxd with the stack policies',
  { skip: serviceSkip('influxd') },
  () => {
    let influxd: Influxd;
    let transport: V1Transport;
    const end = Math.floor(Date.now() / HOUR) * HOUR - HOUR;
    // A meter swapped on the hour, some 200 days back; a day, some 120 days back, that arrives last.
    const swapAt = Math.floor((end - 200 * DAY) / HOUR) * HOUR;
    const lateDay = parisDate.format(end - 120 * DAY);
    const readings = generateYear(end, swapAt);
    let r: Rollup;

    const query = async (q: string, auth = ADMIN) => {
      const res = await influxd.query(q, DB, auth);
      if (res.results[0]?.error) throw new Error(res.results[0].error);
      return res.results[0]?.series ?? [];
    };
    const write = async (batch: Generated[]) => {
      for (let i = 0; i < batch.length; i += 20_000) {
        const res = await fetch(`${influxd.url}/write?db=${DB}&precision=ms`, {
          method: 'POST',
          headers: { authorization: `Basic ${Buffer.from('server:serverpw').toString('base64')}` },
          body: batch
            .slice(i, i + 20_000)
            .map(line)
            .join('\n'),
        });
        assert.equal(res.status, 204, await res.text());
      }
    };
    const rollUpAll = async (batch: Generated[]) => {
      for (const g of batch) r.mark(g.meter, g.time, Date.now());
      while (await r.pass(AbortSignal.timeout(60_000)));
    };

    before(async () => {
      influxd = await startInfluxd({ adminPassword: 'adminpw', retentionCheck: '1s' });
      // Kept forever while the year is written (InfluxDB refuses points older than a policy's duration).
      await createStackDatabase(influxd, DB, ADMIN, 'INF');
      for (const q of ["CREATE USER server WITH PASSWORD 'serverpw'", `GRANT ALL ON ${DB} TO server`])
        await influxd.query(q, undefined, ADMIN);
      transport = new V1Transport({
        url: influxd.url,
        database: DB,
        user: 'server',
        password: 'serverpw',
        tls: { rejectUnauthorized: true },
        timeoutMs: 30_000,
        connections: 1,
      });
      r = new Rollup(transport.database);
    });

    after(async () => {
      await transport?.close();
      await influxd?.stop();
    });

    test('the daily and monthly rollups hold the raw energy, Wh for Wh, late day, DST and meter swap included', async () => {
      const onTime = readings.filter((g) => parisDate.format(g.time) !== lateDay);
      const late = readings.filter((g) => parisDate.format(g.time) === lateDay);
      await write(onTime);
      // The year was stored before there were rollups: the backfill finds every meter's first reading.
      const t0 = Date.now();
      assert.equal(await r.backfill(Date.now(), AbortSignal.timeout(60_000)), true);
      while (await r.pass(AbortSignal.timeout(60_000)));
      console.log(
        `# a year of ${onTime.length} readings stored before the rollups, backfilled in ${Date.now() - t0} ms`,
      );
      assert.equal(await r.backfill(Date.now(), AbortSignal.timeout(60_000)), false, 'once');
      await write(late);
      await rollUpAll(late);
      assert.equal(r.counters.failures, 0);
      assert.ok(r.counters.resets >= 2, `the swap was seen (${r.counters.resets} resets)`);

      const month = (t: number) => parisDate.format(t).slice(0, 7);
      for (const [measurement, period] of [
        ['teleinfo_daily', (t: number) => parisDate.format(t)],
        ['teleinfo_monthly', month],
      ] as const) {
        const expected = truth(readings, period);
        const series = await query(
          `SELECT * FROM "forever"."${measurement}" GROUP BY "meter"`,
          'server:serverpw',
        );
        const got = new Map<string, number>();
        for (const s of series)
          for (const row of s.values) {
            s.columns.forEach((c, i) => {
              if (expected.has(`${s.tags!.meter} ${period(row[0] as number)} ${c}`) && row[i] !== null)
                got.set(`${s.tags!.meter} ${period(row[0] as number)} ${c}`, row[i] as number);
            });
          }
        const wrong = [...expected]
          .filter(([k, v]) => Math.abs((got.get(k) ?? 0) - v) > 1e-6)
          .map(([k, v]) => `${k}: ${got.get(k)} instead of ${v}`);
        assert.deepEqual(wrong.slice(0, 10), [], `${measurement}: ${wrong.length} of ${expected.size} wrong`);
        assert.ok(expected.size > (measurement === 'teleinfo_daily' ? 366 * 5 : 12 * 5));
      }
      // The DST days: 23 and 25 hours of energy in their Paris day.
      const hoursPerDay = new Map<string, number>();
      const hourly = await query(
        `SELECT "energy" FROM "forever"."teleinfo_hourly" WHERE "meter" = '021861348497'`,
        'server:serverpw',
      );
      for (const [t] of hourly[0].values) {
        const d = parisDate.format(t as number);
        hoursPerDay.set(d, (hoursPerDay.get(d) ?? 0) + 1);
      }
      const counts = new Set([...hoursPerDay.values()].slice(1, -1));
      assert.deepEqual([...counts].sort(), [23, 24, 25]);
    });

    test("every dashboard panel over a year: each query's time printed, rollups against the raw readings", async () => {
      const range = { from: end - 365 * DAY, to: end, interval: '6h' };
      const meters = ['021861348497', '041876097842', 'box-water'];
      const timed = async (q: string) => {
        const t = process.hrtime.bigint();
        const s = await query(q);
        return `${(Number(process.hrtime.bigint() - t) / 1e6).toFixed(1)} ms (${s.reduce((n, x) => n + x.values.length, 0)} rows)`;
      };
      /** What the panel would ask of the raw readings without the rollups. */
      const rawOf = (q: string) =>
        q.includes('"forever"."teleinfo_hourly"')
          ? q
              .replace(/max\("power_max"\)/, 'max("apparent_power")')
              .replace(/mean\("power_mean"\)/, 'mean("apparent_power")')
              .replace('"forever"."teleinfo_hourly"', '"teleinfo"')
          : q
              .replace(/sum\(("[^"]+")\)/g, 'non_negative_difference(max($1))')
              .replace('"forever"."teleinfo_daily"', '"teleinfo"');
      for (const panel of dashboard.panels) {
        const q = expand(panel.targets[0].query, range, meters);
        const rolled = q.includes('"forever".');
        const line = `panel ${panel.id} "${panel.title}": ${await timed(q)}`;
        const raw =
          rolled && !q.includes('teleinfo_monthly') ? `, raw readings ${await timed(rawOf(q))}` : '';
        console.log(`# a year, ${line}${raw}`);
      }
      const daily = await query(
        expand(dashboard.panels.find((p) => p.id === 2)!.targets[0].query, range, meters),
      );
      assert.ok(
        daily.every((s) => s.values.length >= 364),
        'a bar per day of the year',
      );
    });

    test('raw readings past the retention are dropped by InfluxDB; the rollups stay', async () => {
      await query(`ALTER RETENTION POLICY "autogen" ON "${DB}" DURATION 90d SHARD DURATION 1d DEFAULT`);
      const old = `time < ${end - 98 * DAY}ms`;
      await waitFor(
        'the raw readings older than the retention dropped',
        async () => (await query(`SELECT count("HCHP") FROM "autogen"."teleinfo" WHERE ${old}`)).length === 0,
        60_000,
      );
      const recent = await query(
        `SELECT count("HCHP") FROM "autogen"."teleinfo" WHERE time > ${end - 80 * DAY}ms`,
      );
      assert.ok((recent[0]?.values[0]?.[1] as number) > 0, 'recent raw readings stay');
      const days = await query(
        `SELECT count("energy") FROM "forever"."teleinfo_daily" WHERE ${old} GROUP BY "meter"`,
      );
      assert.ok((days[0]?.values[0]?.[1] as number) > 250, 'the old days stay in the rollups');
    });
  },
);
