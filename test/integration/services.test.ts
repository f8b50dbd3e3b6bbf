import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { InfluxDB } from '@influxdata/influxdb-client';
import mqtt from 'mqtt';
import teleinfoParse from '../../nodes/teleinfo-parse/teleinfo-parse';
import { readingFromTicFrame, readingToLine, TicStreamDecoder, type Reading } from '../../nodes/lib';
import { captures, fixture, textCapture } from '../support/fixtures';
import { coreNodes, helper, startHelper, stopHelper } from '../support/node-red';
import {
  serviceSkip,
  startInfluxd,
  startMosquitto,
  startVictoriaMetrics,
  waitFor,
  type Influxd,
  type Mosquitto,
  type VictoriaMetrics,
} from '../support/services';

/** Readings of every capture whose frames carry a meter id, stamped one second apart. */
function captureReadings(): Reading[] {
  const out: Reading[] = [];
  let t = Date.parse('2026-11-29T00:00:00Z');
  for (const c of captures()) {
    for (const frame of new TicStreamDecoder().push(c.bytes).frames) {
      try {
        out.push(readingFromTicFrame(frame, new Date((t += 1000))));
      } catch {
        // frames without ADCO/ADSC (hand-made test data) carry no meter
      }
    }
  }
  return out;
}

describe(
  'teleinfo-parse in a Node-RED flow between real mosquitto topics',
  { skip: serviceSkip('mosquitto') },
  () => {
    let broker: Mosquitto;
    before(async () => {
      broker = await startMosquitto();
      await startHelper();
    });
    after(async () => {
      await stopHelper();
      await broker.stop();
    });

    test('raw TIC published in chunks comes back as readings on teleinfo/<meter>', async () => {
      await helper.load(
        [teleinfoParse, coreNodes.mqtt] as never,
        [
          { id: 'tab', type: 'tab' },
          {
            id: 'b',
            type: 'mqtt-broker',
            broker: '127.0.0.1',
            port: String(broker.port),
            clientid: 'nr-test',
            protocolVersion: '4',
            cleansession: true,
            keepalive: '60',
          },
          {
            id: 'in',
            z: 'tab',
            type: 'mqtt in',
            broker: 'b',
            topic: 'tic/raw',
            qos: '1',
            datatype: 'buffer',
            wires: [['parse']],
          },
          { id: 'parse', z: 'tab', type: 'teleinfo-parse', wires: [['out']] },
          { id: 'out', z: 'tab', type: 'mqtt out', broker: 'b', qos: '1', retain: 'false' },
        ] as never,
      );
      const client = await mqtt.connectAsync(broker.url);
      try {
        const readings: Reading[] = [];
        let probes = 0;
        client.on('message', (topic, payload) => {
          if (topic === 'teleinfo/021861348497') readings.push(JSON.parse(payload.toString()) as Reading);
          if (topic === 'teleinfo/030222778385') probes++;
        });
        await client.subscribeAsync('teleinfo/#', { qos: 1 });
        // Node-RED subscribes some time after connecting: send a whole probe frame until its reading comes back,
        // so the capture below is only published once the flow is known to receive it.
        const probe = textCapture('unresolved_arduino_comment_historic_hc_adps.txt', false);
        await waitFor('the flow to answer a probe frame', async () => {
          if (probes > 0) return true;
          await client.publishAsync('tic/raw', probe, { qos: 1 });
          await new Promise((r) => setTimeout(r, 100));
          return probes > 0;
        });
        const bytes = fixture('tic', 'pyteleinfo_captured_frames.bin');
        for (let i = 0; i < bytes.length; i += 64)
          await client.publishAsync('tic/raw', bytes.subarray(i, i + 64), { qos: 1 });
        await waitFor('10 readings over MQTT', () => Promise.resolve(readings.length >= 10));
        assert.equal(readings[0]?.values.PAPP, 2840);
        assert.equal(readings[0]?.tariffOption, 'TEMPO');
      } finally {
        await client.endAsync();
      }
    });
  },
);

describe('line protocol into real influxd 1.6 (auth on, v1 /write)', { skip: serviceSkip('influxd') }, () => {
  let influx: Influxd;
  const auth = 'admin:s3cret';
  before(async () => {
    influx = await startInfluxd({ adminPassword: 's3cret' });
    await influx.query('CREATE DATABASE teleinfo', undefined, auth);
  });
  after(async () => influx.stop());

  test('every capture reading is stored with its types, tags and timestamp', async () => {
    const readings = captureReadings();
    assert.ok(readings.length > 20);
    const unauth = await fetch(`${influx.url}/write?db=teleinfo&precision=ms`, {
      method: 'POST',
      body: readingToLine(readings[0]),
    });
    assert.equal(unauth.status, 401);
    const res = await fetch(`${influx.url}/write?db=teleinfo&precision=ms`, {
      method: 'POST',
      headers: { authorization: `Basic ${Buffer.from(auth).toString('base64')}` },
      body: readings.map((r) => readingToLine(r)).join('\n'),
    });
    assert.equal(res.status, 204, await res.text());
    const count = await influx.query('SELECT count(phases) FROM teleinfo', 'teleinfo', auth);
    assert.equal(count.results[0]?.series?.[0]?.values[0]?.[1], readings.length);
    const first = readings.find((r) => r.source === 'tic-historic') as Reading;
    const q = await influx.query(
      `SELECT PAPP, PTEC, apparent_power, overrun FROM teleinfo WHERE meter = '${first.meter}' AND time = ${Date.parse(first.time)}ms`,
      'teleinfo',
      auth,
    );
    assert.deepEqual(q.results[0]?.series?.[0]?.values[0], [
      Date.parse(first.time),
      first.values.PAPP,
      first.values.PTEC,
      first.apparentPower,
      first.overrun,
    ]);
    const types = await influx.query('SHOW FIELD KEYS FROM teleinfo', 'teleinfo', auth);
    const fieldTypes: Record<string, unknown> = Object.fromEntries(
      (types.results[0]?.series?.[0]?.values ?? []).map((v) => [String(v[0]), v[1]]),
    );
    assert.equal(fieldTypes.PAPP, 'integer');
    assert.equal(fieldTypes.SINSTS, 'integer');
    assert.equal(fieldTypes.PTEC, 'string');
    assert.equal(fieldTypes.overrun, 'boolean');
    const tags = await influx.query('SHOW TAG VALUES FROM teleinfo WITH KEY = source', 'teleinfo', auth);
    assert.deepEqual(tags.results[0]?.series?.[0]?.values.map((v) => v[1]).sort(), [
      'tic-historic',
      'tic-standard',
    ]);
  });
});

describe(
  'line protocol into real victoria-metrics through @influxdata/influxdb-client (v2 /api/v2/write)',
  { skip: serviceSkip('victoria-metrics') },
  () => {
    let vm: VictoriaMetrics;
    before(async () => {
      vm = await startVictoriaMetrics();
    });
    after(async () => vm.stop());

    test('the v2 write API stores the exact values and ms timestamps', async () => {
      const readings = captureReadings();
      const writeApi = new InfluxDB({ url: vm.url, token: 'unused' }).getWriteApi('org', 'teleinfo', 'ms', {
        maxRetries: 0,
      });
      writeApi.writeRecords(readings.map((r) => readingToLine(r)));
      await writeApi.close();
      const std = readings.filter((r) => typeof r.values.SINSTS === 'number');
      await waitFor(
        'series visible in victoria-metrics',
        async () => (await vm.exportSeries('teleinfo_SINSTS')).length > 0,
      );
      const series = await vm.exportSeries('teleinfo_SINSTS');
      const samples = series
        .flatMap((s) => s.timestamps.map((t, i) => `${s.metric.meter}@${t}=${s.values[i]}`))
        .sort();
      const expected = std.map((r) => `${r.meter}@${Date.parse(r.time)}=${String(r.values.SINSTS)}`).sort();
      assert.deepEqual([...new Set(samples)], [...new Set(expected)]);
    });
  },
);
