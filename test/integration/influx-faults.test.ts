import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import type { Reading } from '../../nodes/lib';
import { MAGIC, scanFrames } from '../../nodes/lib/spool/frame';
import { startNodeRed, type NodeRedProcess } from '../support/node-red-process';
import { hcReading } from '../support/readings';
import { freePort, serviceSkip, startInfluxd, tempDir, waitFor, type Influxd } from '../support/services';

const PASSWORD = 'f4ult-pass';
const AUTH = `admin:${PASSWORD}`;
const T0 = Date.parse('2026-01-16T00:00:00Z');

/** http in → influx-teleinfo-out (first wire, so the points are handed to the spool before the answer) and http response. */
function flows(influxUrl: string, database: string, flushMs: number, batchSize = 5000) {
  return [
    { id: 'tab', type: 'tab', label: 'faults' },
    {
      id: 'influx',
      type: 'influxdb-teleinfo-server',
      url: influxUrl,
      api: '1',
      database,
      batchSize: String(batchSize),
      flushMs: String(flushMs),
      spoolMB: '100',
      timeout: '2000',
      // Sent once through the admin API; Node-RED keeps them in flows_cred.json, never in flows.json.
      credentials: { user: 'admin', password: PASSWORD },
    },
    { id: 'in', z: 'tab', type: 'http in', url: '/readings', method: 'post', wires: [['out', 'answer']] },
    { id: 'out', z: 'tab', type: 'influx-teleinfo-out', server: 'influx', measurement: 'teleinfo' },
    { id: 'answer', z: 'tab', type: 'http response', statusCode: '200' },
  ];
}

/** Timestamps of the points waiting in a spool directory (after its saved head, if anything was acknowledged). */
function spooledTimes(spoolDir: string): Set<number> {
  const headFile = path.join(spoolDir, 'head.json');
  const head = fs.existsSync(headFile)
    ? (JSON.parse(fs.readFileSync(headFile, 'utf8')) as { segment: number; offset: number })
    : { segment: 0, offset: 0 };
  const times = new Set<number>();
  for (const file of fs
    .readdirSync(spoolDir)
    .filter((f) => f.endsWith('.spool'))
    .sort()) {
    const id = Number(file.slice(0, 12));
    if (id < head.segment) continue;
    const data = fs.readFileSync(path.join(spoolDir, file));
    // The spool's own frame reader, over the files as the kill left them.
    const { starts, ends } = scanFrames(
      data,
      id === head.segment ? Math.max(head.offset, MAGIC.length) : MAGIC.length,
    );
    for (const [i, start] of starts.entries()) {
      const line = data.toString('utf8', start + 8, ends[i] - 1);
      times.add(Number(line.slice(line.lastIndexOf(' ') + 1)));
    }
  }
  return times;
}

async function post(nr: NodeRedProcess, readings: Reading[]): Promise<boolean> {
  try {
    const res = await fetch(`${nr.url}/readings`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify(readings),
    });
    const text = await res.text();
    if (res.status !== 200) console.log(`# POST answered ${res.status}: ${text.slice(0, 200)}`);
    return res.status === 200;
  } catch (e) {
    console.log(`# POST failed: ${(e as Error).message}`);
    return false;
  }
}

describe(
  'no reading lost: real influxd and a real Node-RED process under faults',
  { skip: serviceSkip('influxd') },
  () => {
    let influxd: Influxd;
    let influxDir: string;
    let influxPort: number;
    before(async () => {
      influxDir = tempDir('influxd-faults');
      influxPort = await freePort();
      influxd = await startInfluxd({ adminPassword: PASSWORD, dir: influxDir, port: influxPort });
    });
    after(() => influxd.stop());

    const stored = async (db: string) => {
      const r = await influxd.query('SELECT "HCHC" FROM teleinfo', db, AUTH);
      return (r.results[0]?.series?.[0]?.values ?? []) as [number, number][];
    };

    test('influxd stopped for 30 s while 10,000 readings flow: all 10,000 are stored exactly once', async () => {
      await influxd.query('CREATE DATABASE outage', undefined, AUTH);
      const nr = await startNodeRed();
      await nr.deploy(flows(influxd.url, 'outage', 200));
      try {
        const readings = Array.from({ length: 10_000 }, (_, i) =>
          hcReading(`m${i % 10}`, T0 + Math.floor(i / 10) * 1000, i),
        );
        let sent = 0;
        const feed = (async () => {
          for (let i = 0; i < readings.length; i += 100) {
            assert.ok(await post(nr, readings.slice(i, i + 100)));
            sent += 100;
            await new Promise((r) => setTimeout(r, 350));
          }
        })();
        await waitFor('a first part stored', async () => (await stored('outage')).length >= 500, 30_000);
        await influxd.stop();
        const downAt = Date.now();
        await waitFor('30 s of outage', () => Date.now() - downAt >= 30_000, 40_000);
        const sentDuringOutage = sent;
        influxd = await startInfluxd({ adminPassword: PASSWORD, dir: influxDir, port: influxPort });
        await feed;
        await waitFor('every reading', async () => (await stored('outage')).length >= 10_000, 60_000);
        const rows = await stored('outage');
        const sumExpected = readings.reduce((n, r) => n + (r.values.HCHC as number), 0);
        const sum = rows.reduce((n, [, v]) => n + v, 0);
        console.log(
          `# sent ${readings.length} (${sentDuringOutage} before influxd came back), stored ${rows.length}, missing ${readings.length - rows.length}, HCHC sum ${sum === sumExpected ? 'exact' : 'WRONG'}`,
        );
        assert.equal(rows.length, 10_000);
        assert.equal(sum, sumExpected);
      } finally {
        await nr.stop();
      }
    });

    test('kill -9 Node-RED mid-stream, start it again: every reading it accepted is stored once the spool drains', async () => {
      await influxd.query('CREATE DATABASE crash', undefined, AUTH);
      const dir = tempDir('node-red-crash');
      const port = await freePort();
      // Nothing written before the kill (the node's InfluxDB is a port where nothing listens, so its writes are
      // refused and retried): every accepted point is only in the spool when the process dies.
      let nr = await startNodeRed({ dir, port });
      await nr.deploy(flows(`http://127.0.0.1:${await freePort()}`, 'crash', 1000));
      const answered: Reading[] = [];
      let i = 0;
      const feed = async (until: () => boolean) => {
        while (!until()) {
          const batch = Array.from({ length: 50 }, () => hcReading('crash', T0 + i * 1000, i++));
          if (await post(nr, batch)) answered.push(...batch);
          else return;
        }
      };
      const started = Date.now();
      await feed(() => Date.now() - started > 4000);
      await nr.stop('SIGKILL');
      const before = (await stored('crash')).length;
      // What the node accepted is what its spool held at the kill, read from the files. A message's points reach
      // the file within one event-loop turn of its arrival; the HTTP answer goes out on a parallel wire in the
      // same turn, so only the last answered message can miss the kill.
      const spooled = spooledTimes(path.join(dir, 'teleinfo-spool', 'influx'));
      const notSpooled = answered.filter((r) => !spooled.has(Date.parse(r.time)));
      console.log(
        `# answered ${answered.length}, in the spool at the kill ${spooled.size}, answered but not yet spooled ${notSpooled.length}`,
      );
      assert.ok(
        notSpooled.every((r) => answered.indexOf(r) >= answered.length - 50),
        'only the last message can be between its arrival and the spool',
      );
      const accepted = answered.filter((r) => spooled.has(Date.parse(r.time)));
      // Started again on the same userDir, then pointed at the real InfluxDB: the same node, the same spool.
      nr = await startNodeRed({ dir, port });
      try {
        await nr.deploy(flows(influxd.url, 'crash', 1000));
        await waitFor(
          'the spool to drain',
          async () => (await stored('crash')).length >= accepted.length,
          30_000,
        );
        const rows = await stored('crash');
        const times = new Set(rows.map(([t]) => t));
        const missing = accepted.filter((r) => !times.has(Date.parse(r.time)));
        console.log(
          `# stored before the restart ${before}, stored after ${rows.length}, missing ${missing.length}`,
        );
        assert.equal(before, 0, 'every accepted reading was only in the spool when Node-RED was killed');
        assert.ok(accepted.length > 1000, `${accepted.length} readings accepted`);
        assert.equal(missing.length, 0);
        assert.equal(rows.length, times.size, 'no duplicated point');
      } finally {
        await nr.stop();
      }
    });
  },
);
