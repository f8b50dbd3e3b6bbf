import assert from 'node:assert/strict';
import fs from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import { after, before, beforeEach, afterEach, describe, test } from 'node:test';
import fc from 'fast-check';
import influxOut from '../../nodes/influx-teleinfo-out/influx-teleinfo-out';
import influxServer from '../../nodes/influxdb-teleinfo-server/influxdb-teleinfo-server';
import { readingFromTicFrame, TicStreamDecoder, type Reading } from '../../nodes/lib';
import { SimulatedMeter, type Contract } from '../../nodes/lib/simulator/meter';
import { encodeTicFrame } from '../../nodes/lib/tic/encoder';
import { emitter, helper, startHelper, stopHelper } from '../support/node-red';
import { hcReading } from '../support/readings';
import {
  serviceSkip,
  startInfluxd,
  startVictoriaMetrics,
  tempDir,
  waitFor,
  type Influxd,
  type VictoriaMetrics,
} from '../support/services';

const T0 = Date.parse('2026-01-15T00:00:00Z');
const ADMIN = 'admin:4dm1n-pass';

/** Readings of simulated meters of every contract and both phase counts, decoded from their TIC frames. */
function simulatedReadings(perMeter: number): Reading[] {
  const out: Reading[] = [];
  (['BASE', 'HC', 'EJP', 'TEMPO'] as Contract[]).forEach((contract, i) => {
    const meter = new SimulatedMeter({
      adco: `02100000000${i}`,
      contract,
      phases: i % 2 === 0 ? 1 : 3,
      isousc: 45,
      seed: i,
      origin: T0,
    });
    const decoder = new TicStreamDecoder({ mode: 'historic' });
    for (let k = 0; k < perMeter; k++) {
      const t = T0 + k * 60_000;
      for (const frame of decoder.push(
        Buffer.from(encodeTicFrame('historic', meter.historicGroups(t)), 'latin1'),
      ).frames)
        out.push(readingFromTicFrame(frame, new Date(t)));
    }
  });
  return out;
}

async function loadWriter(server: Record<string, unknown>, credentials: Record<string, string>) {
  await helper.load(
    [influxServer, influxOut] as never,
    [
      { id: 'tab', type: 'tab' },
      { id: 'influx', type: 'influxdb-teleinfo-server', batchSize: '5000', flushMs: '50', ...server },
      { id: 'out', z: 'tab', type: 'influx-teleinfo-out', server: 'influx', measurement: 'teleinfo' },
    ] as never,
    { influx: credentials },
  );
  return helper.getNode('out');
}

describe(
  'influx-teleinfo-out into real influxd 1.6 with auth (1.x API)',
  { skip: serviceSkip('influxd') },
  () => {
    let influxd: Influxd;
    before(async () => {
      influxd = await startInfluxd({ adminPassword: ADMIN.split(':')[1] });
    });
    after(() => influxd.stop());
    let userDir: string;
    beforeEach(async () => {
      userDir = tempDir('nr-user');
      helper.settings({ userDir });
      await startHelper();
    });
    afterEach(async () => {
      await stopHelper();
      helper.settings({});
    });

    const count = async (db: string, where = '') => {
      const r = await influxd.query(`SELECT count("PAPP") FROM teleinfo ${where}`, db, ADMIN);
      return (r.results[0]?.series?.[0]?.values[0]?.[1] as number | undefined) ?? 0;
    };

    test('every point with the right types, tags and timestamps; values read back exactly', async () => {
      await influxd.query('CREATE DATABASE typed', undefined, ADMIN);
      const readings = simulatedReadings(50);
      const out = await loadWriter(
        { url: influxd.url, api: '1', database: 'typed' },
        { user: 'admin', password: ADMIN.split(':')[1] },
      );
      out.receive({ payload: readings });
      await waitFor('every point', async () => (await count('typed')) === readings.length);
      const fields = await influxd.query('SHOW FIELD KEYS FROM teleinfo', 'typed', ADMIN);
      const types = Object.fromEntries(fields.results[0].series![0].values as [string, string][]);
      assert.equal(types.HCHC, 'integer');
      assert.equal(types.BBRHPJB, 'integer');
      assert.equal(types.PAPP, 'integer');
      assert.equal(types.PTEC, 'string');
      assert.equal(types.overrun, 'boolean');
      for (const r of readings.filter((_, i) => i % 37 === 0)) {
        const res = await influxd.query(
          `SELECT * FROM teleinfo WHERE meter = '${r.meter}' AND time = ${Date.parse(r.time)}ms`,
          'typed',
          ADMIN,
        );
        const s = res.results[0].series![0];
        const row = Object.fromEntries(s.columns.map((c, i) => [c, s.values[0][i]]));
        assert.equal(row.time, Date.parse(r.time));
        assert.equal(row.source, 'tic-historic');
        assert.equal(row.tariff_option, r.tariffOption);
        assert.equal(row.tariff_period, r.tariffPeriod);
        assert.equal(row.apparent_power, r.apparentPower);
        assert.equal(row.energy_total, r.energyTotal);
        for (const [label, value] of Object.entries(r.energyIndexes)) assert.equal(row[label], value, label);
        assert.equal(row.PTEC, r.values.PTEC);
      }
    });

    test('one field type conflict in a batch: the other lines are stored, only that one is dead-lettered', async () => {
      await influxd.query('CREATE DATABASE conflict', undefined, ADMIN);
      // An older writer made ADPS a float in this shard: an integer ADPS is now a field type conflict.
      const older = await fetch(
        `${influxd.url}/write?db=conflict&precision=ms&u=admin&p=${ADMIN.split(':')[1]}`,
        {
          method: 'POST',
          body: `teleinfo,meter=older ADPS=1.5,PAPP=1i ${T0 - 1000}`,
        },
      );
      assert.equal(older.status, 204);
      const readings = Array.from({ length: 500 }, (_, i) => {
        const r = hcReading('conflicted', T0 + i * 1000, i);
        return i === 321 ? { ...r, values: { ...r.values, ADPS: 52 } } : r;
      });
      const out = await loadWriter(
        { url: influxd.url, api: '1', database: 'conflict' },
        { user: 'admin', password: ADMIN.split(':')[1] },
      );
      const errors: string[] = [];
      emitter(out).on('call:error', (c: { args: [unknown] }) => errors.push(String(c.args[0])));
      for (const r of readings) out.receive({ payload: r });
      await waitFor(
        'the good points',
        async () => (await count('conflict', "WHERE meter = 'conflicted'")) === 499,
      );
      // InfluxDB 1.x writes the good points of a refused batch at once; the bisection then isolates the bad one.
      await waitFor('done(err) for that reading', () => errors.length > 0);
      const deadLetters = fs
        .readFileSync(path.join(userDir, 'teleinfo-spool', 'influx', 'dead-letter.jsonl'), 'utf8')
        .trim()
        .split('\n')
        .map((l) => JSON.parse(l) as { status: number; error: string; lines: string[] });
      assert.equal(deadLetters.length, 1);
      assert.equal(deadLetters[0].status, 400);
      assert.match(deadLetters[0].error, /field type conflict/);
      assert.deepEqual(deadLetters[0].lines.length, 1);
      assert.match(deadLetters[0].lines[0], new RegExp(` ${T0 + 321_000}$`));
      assert.equal(errors.length, 1, 'one message failed: the one whose line was refused');
      assert.match(errors[0], /rejected 1 lines/);
      console.log(
        `# type conflict: sent 500, stored ${await count('conflict', "WHERE meter = 'conflicted'")}, dead-lettered 1`,
      );
    });

    test('a replay is idempotent: the same readings twice leave one point each', async () => {
      await influxd.query('CREATE DATABASE replay', undefined, ADMIN);
      const readings = Array.from({ length: 300 }, (_, i) => hcReading('replayed', T0 + i * 1000, i));
      const out = await loadWriter(
        { url: influxd.url, api: '1', database: 'replay' },
        { user: 'admin', password: ADMIN.split(':')[1] },
      );
      out.receive({ payload: readings });
      out.receive({ payload: readings.slice(100, 200), flush: true });
      await waitFor('the writes', async () => (await count('replay')) === 300);
      const sum = await influxd.query('SELECT sum("HCHC") FROM teleinfo', 'replay', ADMIN);
      assert.equal(
        sum.results[0].series![0].values[0][1],
        readings.reduce((n, r) => n + (r.values.HCHC as number), 0),
      );
    });

    test('fuzz: meter ids and text values with every special character round-trip unchanged; labels of no table, whatever their names, are left out', async () => {
      await influxd.query('CREATE DATABASE fuzz', undefined, ADMIN);
      const out = await loadWriter(
        { url: influxd.url, api: '1', database: 'fuzz' },
        { user: 'admin', password: ADMIN.split(':')[1] },
      );
      const special = fc.constantFrom(
        ',',
        '=',
        ' ',
        '"',
        "'",
        '\\',
        '\n',
        '\r',
        '\t',
        'é',
        '€',
        '#',
        '{',
        '}',
        'a',
        'Z',
        '0',
      );
      const text = (min: number) =>
        fc.array(special, { minLength: min, maxLength: 12 }).map((a) => a.join(''));
      // A tag value may not be empty nor end in a lone space once newlines become spaces.
      const meterId = text(1).filter((s) => /\S/.test(s.replace(/[\r\n]/g, ' ')));
      const samples = fc.sample(
        fc.tuple(
          meterId,
          text(0),
          text(1).filter((s) => /^[^\s\\]/.test(s) && !s.includes('\n') && !s.includes('\r')),
        ),
        {
          numRuns: 200,
          seed: 42,
        },
      );
      const readings = samples.map(([meter, ptec, label], i) => {
        const r = hcReading(meter, T0 + i * 1000, i);
        r.values = { ...r.values, PTEC: ptec, [`X${label}`]: i + 0.5 };
        return r;
      });
      out.receive({ payload: readings });
      await waitFor('every fuzzed point', async () => {
        const r = await influxd.query('SELECT count("apparent_power") FROM teleinfo', 'fuzz', ADMIN);
        return r.results[0]?.series?.[0]?.values[0]?.[1] === readings.length;
      });
      const res = await influxd.query('SELECT * FROM teleinfo', 'fuzz', ADMIN);
      const s = res.results[0].series![0];
      const rows = s.values.map((v) => Object.fromEntries(s.columns.map((c, i) => [c, v[i]])));
      const flat = (t: string) => t.replace(/[\r\n]/g, ' ');
      // The one thing InfluxDB 1.x cannot store in a tag: a backslash before an escaped character or at the end.
      const tag = (t: string) => flat(t).replace(/\\(?=[,= ]|$)/g, '/');
      readings.forEach((r) => {
        const row = rows.find((x) => x.time === Date.parse(r.time))!;
        assert.equal(row.meter, tag(r.meter), `meter ${JSON.stringify(r.meter)}`);
        assert.equal(row.PTEC, flat(r.values.PTEC as string).trim(), `PTEC ${JSON.stringify(r.values.PTEC)}`);
      });
      // Fields are the label table's: a label it does not know, whatever its name, is not written.
      assert.deepEqual(
        s.columns.filter((c) => c.startsWith('X')),
        [],
      );
    });
  },
);

describe(
  'influx-teleinfo-out into real victoria-metrics (2.x API through @influxdata/influxdb-client)',
  { skip: serviceSkip('victoria-metrics') },
  () => {
    let vm: VictoriaMetrics;
    before(async () => {
      vm = await startVictoriaMetrics();
      helper.settings({ userDir: tempDir('nr-user') });
      await startHelper();
    });
    after(async () => {
      await stopHelper();
      helper.settings({});
      await vm.stop();
    });

    test('numeric fields arrive with their tags and millisecond timestamps, exactly', async () => {
      const readings = simulatedReadings(20);
      const out = await loadWriter(
        { url: vm.url, api: '2', org: 'home', bucket: 'energy' },
        { token: 'unused-by-vm' },
      );
      out.receive({ payload: readings });
      const tempo = readings.filter((r) => r.tariffOption === 'TEMPO');
      await waitFor('the points', async () => {
        const series = await vm.exportSeries('{__name__="teleinfo_PAPP",tariff_option="TEMPO"}');
        return series.reduce((n, x) => n + x.values.length, 0) === tempo.length;
      });
      const papp = await vm.exportSeries('{__name__="teleinfo_PAPP",tariff_option="TEMPO"}');
      const got = papp.flatMap((s) =>
        s.timestamps.map((t, i) => [s.metric.meter, s.metric.tariff_period, t, s.values[i]]),
      );
      const expected = tempo.map((r) => [r.meter, r.tariffPeriod, Date.parse(r.time), r.apparentPower]);
      const byTime = (a: unknown[], b: unknown[]) => (a[2] as number) - (b[2] as number);
      assert.deepEqual(got.sort(byTime), expected.sort(byTime));
    });
  },
);

/**
 * A VictoriaMetrics cluster takes line protocol under /insert/<tenant>/influx/ (vminsert). The single-node
 * victoria-metrics here serves it at the root, so a path-rewriting proxy in front of it plays vminsert: it refuses
 * any path without the tenant prefix and forwards the rest without it.
 */
async function vminsertProxy(
  target: string,
): Promise<{ url: string; paths: string[]; close(): Promise<void> }> {
  const prefix = '/insert/42/influx';
  const paths: string[] = [];
  const server = http.createServer((req, res) => {
    paths.push(req.url ?? '');
    if (!req.url?.startsWith(`${prefix}/`)) {
      res.writeHead(404).end('unsupported path requested');
      return;
    }
    const upstream = http.request(
      `${target}${req.url.slice(prefix.length)}`,
      { method: req.method, headers: req.headers },
      (answer) => {
        res.writeHead(answer.statusCode ?? 502, answer.headers);
        answer.pipe(res);
      },
    );
    req.pipe(upstream);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  const { port } = server.address() as { port: number };
  return {
    url: `http://127.0.0.1:${port}${prefix}`,
    paths,
    close: () => new Promise((r) => server.close(() => r())),
  };
}

describe(
  'influx-teleinfo-out into a VictoriaMetrics cluster path (/insert/<tenant>/influx, through a path-rewriting proxy standing for vminsert)',
  { skip: serviceSkip('victoria-metrics') },
  () => {
    let vm: VictoriaMetrics;
    let proxy: Awaited<ReturnType<typeof vminsertProxy>>;
    before(async () => {
      vm = await startVictoriaMetrics();
      proxy = await vminsertProxy(vm.url);
      helper.settings({ userDir: tempDir('nr-user') });
      await startHelper();
    });
    after(async () => {
      await stopHelper();
      helper.settings({});
      await proxy.close();
      await vm.stop();
    });
    afterEach(() => helper.unload());

    for (const api of ['2', '1'] as const) {
      test(`the URL's path is kept (API ${api}.x): every point stored through the tenant prefix`, async () => {
        const readings = simulatedReadings(5).map((r) => ({ ...r, meter: `${r.meter}-v${api}` }));
        const out = await loadWriter(
          api === '2'
            ? { url: proxy.url, api, org: 'home', bucket: 'energy' }
            : { url: proxy.url, api, database: 'teleinfo' },
          api === '2' ? { token: 'unused-by-vm' } : {},
        );
        out.receive({ payload: readings });
        const selector = `{__name__="teleinfo_PAPP",meter=~".*-v${api}"}`;
        await waitFor('the points behind the prefix', async () => {
          const series = await vm.exportSeries(selector);
          return series.reduce((n, x) => n + x.values.length, 0) === readings.length;
        });
        const writes = proxy.paths.filter((p) => p.includes(api === '2' ? '/api/v2/write' : '/write?'));
        assert.ok(writes.length > 0);
        assert.ok(
          writes.every((p) => p.startsWith('/insert/42/influx/')),
          writes.join(' '),
        );
      });
    }
  },
);
