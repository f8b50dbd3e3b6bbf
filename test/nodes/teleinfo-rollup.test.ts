import assert from 'node:assert/strict';
import type { EventEmitter } from 'node:events';
import { after, before, describe, test } from 'node:test';
import influxServer from '../../nodes/influxdb-teleinfo-server/influxdb-teleinfo-server';
import { hourStart } from '../../nodes/lib/rollup/paris-time';
import rollupNode from '../../nodes/teleinfo-rollup/teleinfo-rollup';
import { coreNodes, helper, startHelper, stopHelper } from '../support/node-red';
import { hcReading } from '../support/readings';
import {
  createStackDatabase,
  serviceSkip,
  startInfluxd,
  tempDir,
  waitFor,
  type Influxd,
} from '../support/services';

interface Msg {
  error?: { message: string };
}

/** teleinfo-rollup in Node-RED (the test helper) on a real influxd: what it refuses, and InfluxDB going away. */
describe('teleinfo-rollup (Node-RED test helper, real influxd)', { skip: serviceSkip('influxd') }, () => {
  let influxd: Influxd;
  const caught: Msg[] = [];

  before(async () => {
    influxd = await startInfluxd({ dir: tempDir('rollup-influxd') });
    await createStackDatabase(influxd, 'rollup');
    helper.settings({ userDir: tempDir('rollup-user') });
    await startHelper();
    await helper.load(
      [influxServer, rollupNode, coreNodes.catch] as never,
      [
        { id: 'tab', type: 'tab' },
        { id: 'influx', type: 'influxdb-teleinfo-server', url: influxd.url, api: '1', database: 'rollup' },
        { id: 'rollup', z: 'tab', type: 'teleinfo-rollup', server: 'influx', interval: '1' },
        { id: 'catcher', z: 'tab', type: 'catch', scope: ['rollup'], wires: [['caught']] },
        { id: 'caught', z: 'tab', type: 'helper' },
      ] as never,
    );
    (helper.getNode('caught') as unknown as EventEmitter).on('input', (m: Msg) => caught.push(m));
  });
  after(async () => {
    await stopHelper();
    helper.settings({});
    await influxd?.stop();
  });

  test('what is not a stored reading is refused (done with an error), the node goes on', async () => {
    const rollup = helper.getNode('rollup');
    for (const payload of ['{"meter":', { meter: 'x' }, [hcReading('021861348497', Date.now(), 1), 42]])
      rollup.receive({ payload });
    await waitFor('three refusals', () => caught.length === 3);
    assert.deepEqual(
      caught.map((m) => /teleinfo-rollup: (.*)/.exec(m.error!.message)?.[1].slice(0, 24)),
      ['malformed JSON: Unexpect', 'item 0 is an object with', 'item 1 is a number (42)'],
    );
  });

  test('its hours roll up; InfluxDB away, they stay marked and roll up once it is back', async () => {
    const rollup = helper.getNode('rollup');
    // In the hour before this one: recomputed at each pass (the current hour waits ten minutes between two).
    const now = hourStart(Date.now()) - 60_000;
    const write = async (t: number, i: number) => {
      const res = await fetch(`${influxd.url}/write?db=rollup&precision=ms`, {
        method: 'POST',
        body: `teleinfo,meter=021861348497 HCHC=${1000 + i * 10}i,HCHP=5000i,apparent_power=900i ${t}`,
      });
      assert.equal(res.status, 204);
    };
    await write(now - 2000, 0);
    await write(now - 1000, 1);
    rollup.receive({
      payload: [hcReading('021861348497', now - 2000, 0), hcReading('021861348497', now - 1000, 1)],
    });
    const hourly = async () => {
      const r = await influxd.query('SELECT last("end_HCHC") FROM "forever"."teleinfo_hourly"', 'rollup');
      return r.results[0].series?.[0]?.values[0][1];
    };
    await waitFor('the hour rolled up', async () => (await hourly()) === 1010);
    const dir = influxd.dir;
    await influxd.stop();
    rollup.receive({ payload: hcReading('021861348497', now, 2) });
    await waitFor(
      'the failure reported to Catch',
      () => caught.some((m) => /rollup: .*retried/.test(m.error!.message)),
      30_000,
    );
    influxd = await startInfluxd({ dir, port: influxd.port });
    await write(now, 2);
    await waitFor(
      'the hour rolled up once InfluxDB is back',
      async () => (await hourly().catch(() => 0)) === 1020,
      30_000,
    );
  });
});
