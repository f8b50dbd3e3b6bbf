import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import yaml from 'js-yaml';
import influxOut from '../../nodes/influx-teleinfo-out/influx-teleinfo-out';
import influxServer from '../../nodes/influxdb-teleinfo-server/influxdb-teleinfo-server';
import rollupNode from '../../nodes/teleinfo-rollup/teleinfo-rollup';
import { admitHealth, healthLine, type PiHealth } from '../../nodes/lib/health';
import { counterReadings, readingFromTicFrame, TicStreamDecoder, type Reading } from '../../nodes/lib';
import { SimulatedMeter, type Contract } from '../../nodes/lib/simulator/meter';
import { encodeTicFrame } from '../../nodes/lib/tic/encoder';
import { dashboard, expand } from '../support/dashboard';
import { ROOT } from '../support/fixtures';
import { helper, startHelper, stopHelper } from '../support/node-red';
import {
  createStackDatabase,
  serviceSkip,
  startInfluxd,
  tempDir,
  waitFor,
  type Influxd,
} from '../support/services';

/**
 * The provisioned Grafana dashboard without a Grafana (none runs here): its structure as provisioning needs it,
 * and every InfluxQL query of every panel, its macros expanded as Grafana expands them, against a real influxd
 * holding two days of readings written by influx-teleinfo-out and rolled up by teleinfo-rollup.
 */

const datasources = yaml.load(
  fs.readFileSync(
    path.join(ROOT, 'docker', 'grafana', 'provisioning', 'datasources', 'influxdb.yaml'),
    'utf8',
  ),
) as {
  apiVersion: number;
  datasources: {
    uid: string;
    type: string;
    user: string;
    jsonData: { dbName: string };
    secureJsonData: { password: string };
  }[];
};

// Midnight in Paris (UTC+1 in winter) on 15 January, and two days and an hour of readings every 10 minutes.
const T0 = Date.parse('2026-01-14T23:00:00Z');
const STEP = 10 * 60_000;
const END = T0 + 2 * 86_400_000 + 3_600_000;
const METERS: [string, Contract][] = [
  ['021000000001', 'BASE'],
  ['021000000002', 'HC'],
  ['021000000003', 'TEMPO'],
];
const WATER = 'box-water';
const ADMIN = 'admin:grafana-pass';

function readings(): Reading[] {
  const out: Reading[] = [];
  for (const [i, [adco, contract]] of METERS.entries()) {
    const meter = new SimulatedMeter({ adco, contract, phases: 1, isousc: 45, seed: i + 1, origin: T0 });
    const decoder = new TicStreamDecoder({ mode: 'historic' });
    for (let t = T0; t < END; t += STEP)
      for (const frame of decoder.push(
        Buffer.from(encodeTicFrame('historic', meter.historicGroups(t)), 'latin1'),
      ).frames)
        out.push(readingFromTicFrame(frame, new Date(t)));
  }
  // The water counter as ecodevices-in makes its readings (C1 named water, divider 1: litres).
  for (let t = T0, index = 512_000; t < END; t += STEP, index += (t / STEP) % 7)
    out.push(
      ...counterReadings(
        { readings: [], counters: [{ input: 'C1', index, day: 0, flow: 0 }] },
        { device: 'box', time: new Date(t) },
        { C1: { name: 'water', divider: 1 }, C2: { name: '', divider: 1 } },
      ),
    );
  return out;
}

/** The Paris calendar day of an instant, as Grafana's tz('Europe/Paris') groups it. */
const parisDay = (t: number) => new Date(t).toLocaleDateString('en-CA', { timeZone: 'Europe/Paris' });

describe('the Grafana dashboard and datasource as provisioned', () => {
  test('what provisioning needs: uids, the datasource uid on every panel and target, unique panel ids, a valid datasource', () => {
    assert.equal(dashboard.uid, 'teleinfo');
    assert.equal(dashboard.timezone, 'Europe/Paris');
    const [ds] = datasources.datasources;
    assert.equal(datasources.apiVersion, 1);
    assert.equal(ds.type, 'influxdb');
    assert.equal(ds.jsonData.dbName, 'teleinfo');
    assert.equal(
      ds.user,
      '$INFLUX_READ_USER',
      'credentials from the environment: the account that only reads',
    );
    assert.equal(ds.secureJsonData.password, '$INFLUX_READ_PASSWORD');
    const ids = dashboard.panels.map((p) => p.id);
    assert.equal(new Set(ids).size, ids.length, 'unique panel ids');
    for (const p of dashboard.panels) {
      assert.equal(p.datasource.uid, ds.uid, `panel ${p.title}`);
      assert.ok(p.targets.length > 0);
      for (const t of p.targets) {
        assert.equal(t.datasource.uid, ds.uid, `a target of ${p.title}`);
        assert.ok(t.rawQuery && t.query.startsWith('SELECT'), `${p.title}: a raw InfluxQL query`);
      }
    }
    const meter = dashboard.templating.list.find((v) => v.name === 'meter');
    assert.equal(meter?.datasource?.uid, ds.uid);
  });

  describe(
    'every panel query against a real influxd with two days of readings',
    { skip: serviceSkip('influxd') },
    () => {
      let influxd: Influxd;
      const data = readings();
      const db = 'teleinfo';
      const meters = [...METERS.map(([m]) => m), WATER];
      before(async () => {
        influxd = await startInfluxd({ adminPassword: ADMIN.split(':')[1] });
        // Raw readings kept forever: these days of January are older than the stack's 90 days.
        await createStackDatabase(influxd, db, ADMIN, 'INF');
        helper.settings({ userDir: tempDir('grafana-writer') });
        await startHelper();
        await helper.load(
          [influxServer, influxOut, rollupNode] as never,
          [
            { id: 'tab', type: 'tab' },
            {
              id: 'influx',
              type: 'influxdb-teleinfo-server',
              url: influxd.url,
              api: '1',
              database: db,
              batchSize: '5000',
              flushMs: '50',
            },
            { id: 'out', z: 'tab', type: 'influx-teleinfo-out', server: 'influx', measurement: 'teleinfo' },
            { id: 'rollup', z: 'tab', type: 'teleinfo-rollup', server: 'influx', interval: '1' },
          ] as never,
          { influx: { user: 'admin', password: ADMIN.split(':')[1] } },
        );
        helper.getNode('out').receive({ payload: data });
        await waitFor('every reading stored', async () => {
          // Meters' points have phases, water counters' an index.
          const r = await influxd.query('SELECT count("phases"), count("index") FROM teleinfo', db, ADMIN);
          const [, meters, counters] = (r.results[0]?.series?.[0]?.values[0] ?? []) as (number | null)[];
          return (meters ?? 0) + (counters ?? 0) === data.length;
        });
        // What a Complete node on influx-teleinfo-out passes on once they are stored.
        helper.getNode('rollup').receive({ payload: data });
        // Done when every meter has its 49 hours, and its days and month add up to them (written after them).
        const rolledUp = async (period: string) => {
          const r = await influxd.query(
            `SELECT count("power_max"), count("index"), sum("energy"), sum("index") FROM "forever"."teleinfo_${period}" GROUP BY "meter"`,
            db,
            ADMIN,
          );
          return new Map(
            (r.results[0].series ?? []).map((x) => {
              const [, power, index, energy, water] = x.values[0] as (number | null)[];
              return [
                x.tags!.meter,
                { rows: (power ?? 0) + (index ?? 0), total: (energy ?? 0) + (water ?? 0) },
              ];
            }),
          );
        };
        await waitFor('every hour rolled up, and its days and month', async () => {
          const [hours, days, months] = [
            await rolledUp('hourly'),
            await rolledUp('daily'),
            await rolledUp('monthly'),
          ];
          return (
            hours.size === meters.length &&
            [...hours].every(
              ([m, h]) => h.rows === 49 && days.get(m)?.total === h.total && months.get(m)?.total === h.total,
            )
          );
        });
      });
      after(async () => {
        await stopHelper();
        helper.settings({});
        await influxd.stop();
      });

      async function panel(id: number) {
        const p = dashboard.panels.find((x) => x.id === id)!;
        const r = await influxd.query(
          expand(p.targets[0].query, { from: T0, to: END, interval: '10m' }, meters),
          db,
          ADMIN,
        );
        assert.equal(
          (r.results[0] as { error?: string }).error,
          undefined,
          `${p.title}: ${p.targets[0].query}`,
        );
        return r.results[0].series ?? [];
      }
      /** The index difference of a day, from the readings themselves: last of that day minus last of the day before. */
      function dayDelta(meter: string, label: string, day: string, before: string): number {
        const last = (d: string) =>
          Math.max(
            ...data
              .filter((r) => r.meter === meter && parisDay(Date.parse(r.time)) === d)
              .map((r) => Number(r.values[label])),
          );
        return last(day) - last(before);
      }

      test('the meter variable lists every meter', async () => {
        const q = dashboard.templating.list.find((v) => v.name === 'meter')!.query;
        const r = await influxd.query(q, db, ADMIN);
        assert.deepEqual(r.results[0].series![0].values.map((v) => v[1]).sort(), meters.sort());
      });

      test('every panel query runs, with its macros expanded', async () => {
        for (const p of dashboard.panels) await panel(p.id);
      });

      test('energy and cost per Paris day: the HC and HP of 16 January are the index differences the meter produced', async () => {
        const hc = METERS[1][0];
        const energy = (await panel(2)).find((s) => s.tags?.meter === hc)!;
        const columns = energy.columns;
        const row = energy.values.find((v) => v[0] === Date.parse('2026-01-15T23:00:00Z'))!;
        assert.ok(row, 'a value for 16 January (Paris midnight is 23:00 UTC)');
        const expectHc = dayDelta(hc, 'HCHC', '2026-01-16', '2026-01-15') / 1000;
        const expectHp = dayDelta(hc, 'HCHP', '2026-01-16', '2026-01-15') / 1000;
        assert.ok(expectHc > 0 && expectHp > 0, 'the simulated meter consumed in both periods');
        assert.ok(
          Math.abs((row[columns.indexOf('HC')] as number) - expectHc) < 1e-9,
          `HC ${String(row[columns.indexOf('HC')])} kWh, expected ${expectHc}`,
        );
        assert.ok(Math.abs((row[columns.indexOf('HP')] as number) - expectHp) < 1e-9);
        const cost = (await panel(3)).find((s) => s.tags?.meter === hc)!;
        const costRow = cost.values.find((v) => v[0] === row[0])!;
        const price = (name: string) => Number(dashboard.templating.list.find((v) => v.name === name)!.query);
        assert.ok(
          Math.abs((costRow[cost.columns.indexOf('HC')] as number) - expectHc * price('price_hc')) < 1e-9,
        );
        // The Tempo meter's energy lands in its colour's columns, the BASE meter's in Base.
        const tempo = (await panel(2)).find((s) => s.tags?.meter === METERS[2][0])!;
        const tempoRow = tempo.values.find((v) => v[0] === row[0])!;
        const tempoSum = tempo.columns
          .filter((c) => c.startsWith('Tempo'))
          .reduce((n, c) => n + ((tempoRow[tempo.columns.indexOf(c)] as number | null) ?? 0), 0);
        const tempoExpected = ['BBRHCJB', 'BBRHPJB', 'BBRHCJW', 'BBRHPJW', 'BBRHCJR', 'BBRHPJR'].reduce(
          (n, l) => n + dayDelta(METERS[2][0], l, '2026-01-16', '2026-01-15') / 1000,
          0,
        );
        assert.ok(
          Math.abs(tempoSum - tempoExpected) < 1e-6,
          `Tempo ${tempoSum} kWh, expected ${tempoExpected}`,
        );
        const base = (await panel(2)).find((s) => s.tags?.meter === METERS[0][0])!;
        const baseRow = base.values.find((v) => v[0] === row[0])!;
        assert.ok(
          Math.abs(
            (baseRow[base.columns.indexOf('Base')] as number) -
              dayDelta(METERS[0][0], 'BASE', '2026-01-16', '2026-01-15') / 1000,
          ) < 1e-9,
        );
      });

      test('the Pis online: the last status each Pi had', async () => {
        const res = await fetch(`${influxd.url}/write?db=${db}&u=admin&p=${ADMIN.split(':')[1]}`, {
          method: 'POST',
          body: [
            'teleinfo_pi,pi=pi-a online=true 1',
            'teleinfo_pi,pi=pi-b online=true 2',
            'teleinfo_pi,pi=pi-a online=false 3',
          ].join('\n'),
        });
        assert.equal(res.status, 204);
        const pis = Object.fromEntries((await panel(8)).map((s) => [s.tags!.pi, s.values[0][1]]));
        assert.deepEqual(pis, { 'pi-a': false, 'pi-b': true });
      });

      test('the fleet view: one row per Pi with its last health, and its backlog over time', async () => {
        const h = (pi: string, at: number, oldestAgeS: number | null, version: string) =>
          healthLine(
            admitHealth(
              pi,
              {
                pi,
                at: new Date(at).toISOString(),
                uptimeS: 60,
                versions: { package: version, nodeRed: '4.1.2', node: '20.20.2' },
                spool: {
                  depth: oldestAgeS === null ? 0 : 50,
                  bytes: 1,
                  oldestAgeS,
                  sent: 9,
                  acknowledged: 9,
                  dropped: 0,
                  quarantinedBytes: 0,
                },
                errors: { checksum: 3 },
                diskFreeMB: 800,
                diskTotalMB: 14_000,
              },
              at,
            ) as PiHealth,
          );
        const res = await fetch(
          `${influxd.url}/write?db=${db}&precision=ms&u=admin&p=${ADMIN.split(':')[1]}`,
          {
            method: 'POST',
            body: [
              h('pi-a', T0 + 60_000, 600, '0.3.0'),
              h('pi-a', T0 + 120_000, null, '0.4.0'),
              h('pi-b', T0 + 90_000, 1800, '0.4.0'),
            ].join('\n'),
          },
        );
        assert.equal(res.status, 204, await res.text());
        const fleet = dashboard.panels.find((p) => p.id === 12)!;
        const rows = async (ref: number) => {
          const r = await influxd.query(
            expand(fleet.targets[ref].query, { from: T0, to: END, interval: '10m' }, meters),
            db,
            ADMIN,
          );
          return Object.fromEntries(
            (r.results[0].series ?? []).map((x) => [
              x.tags!.pi,
              Object.fromEntries(x.columns.map((c, i) => [c, x.values[0][i]])),
            ]),
          );
        };
        const last = await rows(0);
        assert.equal(last['pi-a'].waiting, 0);
        assert.equal(last['pi-a'].version, '0.4.0');
        assert.equal(last['pi-b']['oldest unsent (min)'], 30);
        assert.equal(last['pi-b'].errors, 3);
        const seen = await rows(1);
        assert.deepEqual([seen['pi-a'].time, seen['pi-b'].time], [T0 + 120_000, T0 + 90_000], 'last seen');
        const backlog = await panel(13);
        assert.deepEqual(backlog.map((x) => x.tags?.pi).sort(), ['pi-a', 'pi-b']);
      });

      test('power, currents, the water counter and the last reading per meter', async () => {
        const power = await panel(1);
        assert.deepEqual(
          power.map((s) => s.tags?.meter).sort(),
          METERS.map(([m]) => m).sort(),
          'power for the electricity meters',
        );
        const currents = await panel(4);
        assert.ok(currents.every((s) => s.columns.includes('I')));
        const water = await panel(6);
        assert.deepEqual(
          water.map((s) => s.tags?.meter),
          [WATER],
        );
        const waterRow = water[0].values.find((v) => v[0] === Date.parse('2026-01-15T23:00:00Z'))!;
        const lastIndex = (d: string) =>
          Math.max(
            ...data
              .filter((r) => r.meter === WATER && parisDay(Date.parse(r.time)) === d)
              .map((r) => Number(r.values.index)),
          );
        assert.equal(waterRow[1], lastIndex('2026-01-16') - lastIndex('2026-01-15'));
        const last = await panel(7);
        for (const s of last) {
          const newest = Math.max(
            ...data.filter((r) => r.meter === s.tags!.meter).map((r) => Date.parse(r.time)),
          );
          assert.equal(s.values[0][0], newest, `the last reading of ${s.tags!.meter}`);
        }
      });
    },
  );
});
