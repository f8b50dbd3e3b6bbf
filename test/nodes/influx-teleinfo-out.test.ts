import assert from 'node:assert/strict';
import type { EventEmitter } from 'node:events';
import fs from 'node:fs';
import path from 'node:path';
import { afterEach, beforeEach, describe, test } from 'node:test';
import influxOut from '../../nodes/influx-teleinfo-out/influx-teleinfo-out';
import influxServer from '../../nodes/influxdb-teleinfo-server/influxdb-teleinfo-server';
import { startInfluxDouble, v2Error, type InfluxDouble } from '../support/influx-double';
import { coreNodes, helper, startHelper, stopHelper } from '../support/node-red';
import { hcReading } from '../support/readings';
import { tempDir, waitFor } from '../support/services';

type Status = { fill?: string; shape?: string; text?: string };
interface Msg {
  error?: { message: string };
}

const T0 = Date.parse('2026-01-15T12:00:00Z');

describe('influx-teleinfo-out against an InfluxDB 2.x TEST DOUBLE (auth and error semantics; Node-RED test helper)', () => {
  let double: InfluxDouble;
  let userDir: string;
  beforeEach(async () => {
    userDir = tempDir('nr-user');
    helper.settings({ userDir });
    await startHelper();
    double = await startInfluxDouble();
  });
  afterEach(async () => {
    await stopHelper();
    await double.close();
    helper.settings({});
  });

  async function load(server: Record<string, unknown> = {}) {
    await helper.load(
      [influxServer, influxOut, coreNodes.catch, coreNodes.complete] as never,
      [
        { id: 'tab', type: 'tab' },
        {
          id: 'influx',
          type: 'influxdb-teleinfo-server',
          url: double.url,
          api: '2',
          org: 'home',
          bucket: 'energy',
          batchSize: '100',
          flushMs: '20',
          ...server,
        },
        { id: 'out', z: 'tab', type: 'influx-teleinfo-out', server: 'influx', measurement: 'teleinfo' },
        { id: 'catcher', z: 'tab', type: 'catch', scope: ['out'], wires: [['caught']] },
        { id: 'caught', z: 'tab', type: 'helper' },
        { id: 'completer', z: 'tab', type: 'complete', scope: ['out'], wires: [['completed']] },
        { id: 'completed', z: 'tab', type: 'helper' },
      ] as never,
      { influx: { token: 'secret-token' } },
    );
    const out = helper.getNode('out');
    const statuses: Status[] = [];
    (out as unknown as EventEmitter).on('call:status', (c: { args: [Status] }) => statuses.push(c.args[0]));
    const caught: Msg[] = [];
    const completed: Msg[] = [];
    (helper.getNode('caught') as unknown as EventEmitter).on('input', (m: Msg) => caught.push(m));
    (helper.getNode('completed') as unknown as EventEmitter).on('input', (m: Msg) => completed.push(m));
    return { out, statuses, caught, completed };
  }

  const written = () => double.writes.filter((w) => w.status === 204).flatMap((w) => w.lines);

  for (const [status, code] of [
    [401, 'unauthorized'],
    [403, 'forbidden'],
    [404, 'not found'],
  ] as const) {
    test(`${status}: a configuration problem; points stay in the spool, status red, written once it is fixed`, async () => {
      double.script.push(v2Error(status, code, `${code}: bucket "energy"`));
      const { out, statuses, completed } = await load();
      out.receive({ payload: [hcReading('m1', T0, 1), hcReading('m1', T0 + 1000, 2)] });
      await waitFor('the retry to succeed', () => written().length === 2);
      assert.equal(double.writes[0].status, status);
      assert.equal(double.writes[0].token, 'Token secret-token');
      assert.ok(
        statuses.some((s) => s.fill === 'red' && s.text === 'influx-teleinfo-out.status.misconfigured'),
      );
      await waitFor('the message to complete', () => completed.length === 1);
      assert.equal(statuses.at(-1)?.fill, 'green');
    });
  }

  test('413: the batch is split until it fits, nothing lost', async () => {
    double.script.push(v2Error(413, 'request too large', 'too large'));
    const { out } = await load();
    out.receive({ payload: Array.from({ length: 8 }, (_, i) => hcReading('m1', T0 + i * 1000, i)) });
    await waitFor('all 8 points', () => written().length === 8);
    assert.deepEqual(
      double.writes.map((w) => [w.status, w.lines.length]),
      [
        [413, 8],
        [204, 4],
        [204, 4],
      ],
    );
  });

  test('422: the batch goes to the dead-letter file with the server message, reaches Catch once and completes (settled for good), the next batch is written', async () => {
    double.script.push(v2Error(422, 'unprocessable entity', 'failure writing points: field type conflict'));
    const { out, caught, statuses, completed } = await load();
    out.receive({ payload: hcReading('bad', T0, 1) });
    await waitFor('the rejection', () => caught.length === 1);
    await waitFor(
      'the message completed: sending it again would change nothing',
      () => completed.length === 1,
    );
    assert.match(
      caught[0].error!.message,
      /rejected 1 lines \(HTTP 422: failure writing points: field type conflict\)/,
    );
    const deadLetter = path.join(userDir, 'teleinfo-spool', 'influx', 'dead-letter.jsonl');
    const entry = JSON.parse(fs.readFileSync(deadLetter, 'utf8').trim()) as {
      status: number;
      error: string;
      lines: string[];
    };
    assert.equal(entry.status, 422);
    assert.match(entry.lines[0], /^teleinfo,meter=bad,/);
    out.receive({ payload: hcReading('good', T0, 2) });
    await waitFor('the next batch', () => written().some((l) => l.startsWith('teleinfo,meter=good,')));
    assert.equal(caught.length, 1);
    assert.ok(
      statuses.some((s) => s.fill === 'yellow' && s.text?.endsWith('influx-teleinfo-out.status.deadLetters')),
      'dead letters shown',
    );
  });

  test('429 with Retry-After: 2 is honoured, then written', async () => {
    double.script.push(v2Error(429, 'too many requests', 'slow down', { 'retry-after': '2' }));
    const { out } = await load();
    out.receive({ payload: hcReading('m1', T0, 1) });
    await waitFor('the retry', () => written().length === 1);
    const gap = double.writes[1].at - double.writes[0].at;
    assert.ok(gap >= 1900, `retried after ${gap} ms`);
  });

  test('503 twice: retried with backoff, the status says retrying, then written exactly once', async () => {
    double.script.push(
      v2Error(503, 'unavailable', 'unavailable'),
      v2Error(503, 'unavailable', 'unavailable'),
    );
    const { out, statuses } = await load();
    out.receive({ payload: [hcReading('m1', T0, 1), hcReading('m2', T0, 1)] });
    await waitFor('the write', () => written().length === 2);
    assert.deepEqual(
      double.writes.map((w) => w.status),
      [503, 503, 204],
    );
    assert.ok(statuses.some((s) => s.fill === 'yellow' && s.text === 'influx-teleinfo-out.status.retrying'));
  });

  test('anything but a reading: done(err) that says what was expected, red status', async () => {
    const { out, caught, statuses } = await load();
    out.receive({ payload: { temperature: 21 } });
    await waitFor('the error', () => caught.length === 1);
    assert.match(
      caught[0].error!.message,
      /expects a normalized reading.*item 0 is an object with keys \{temperature\}/,
    );
    assert.equal(statuses.at(-1)?.fill, 'red');
    assert.equal(double.writes.length, 0);
  });
});
