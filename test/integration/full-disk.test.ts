import assert from 'node:assert/strict';
import { after, before, describe, test, type TestContext } from 'node:test';
import mqtt from 'mqtt';
import influxOut from '../../nodes/influx-teleinfo-out/influx-teleinfo-out';
import influxServer from '../../nodes/influxdb-teleinfo-server/influxdb-teleinfo-server';
import buffer from '../../nodes/teleinfo-spool/teleinfo-spool';
import type { Reading } from '../../nodes/lib';
import { coreNodes, emitter, helper, startHelper, stopHelper } from '../support/node-red';
import { hcReading } from '../support/readings';
import {
  serviceSkip,
  startInfluxd,
  startMosquitto,
  waitFor,
  type Influxd,
  type Mosquitto,
} from '../support/services';
import { mountSmallDisk, smallDiskSkip, type SmallDisk } from '../support/small-disk';

type Msg = { payload?: unknown; _spool?: unknown; status?: unknown; error?: { message: string } };
const T0 = Date.parse('2026-03-01T00:00:00Z');
const turn = () => new Promise((r) => setImmediate(r));
const isReadingMsg = (m: Msg) =>
  typeof m.payload === 'object' && m.payload !== null && m._spool === undefined && !m.status;
const timeOf = (m: Msg) => (m.payload as Reading).time;

/** Who completed and who got an error, among the readings sent into `node`. */
function outcomes(nodeId: string) {
  const accepted = new Set<string>();
  const refused = new Map<string, string>();
  emitter(helper.getNode(`${nodeId}-done`))?.on('input', (m: Msg) => {
    if (isReadingMsg(m)) accepted.add(timeOf(m));
  });
  emitter(helper.getNode(`${nodeId}-errors`)).on('input', (m: Msg) => {
    if (Array.isArray(m.payload))
      for (const r of m.payload as Reading[]) refused.set(r.time, m.error!.message);
    else if (isReadingMsg(m)) refused.set(timeOf(m), m.error!.message);
  });
  const statuses: string[] = [];
  emitter(helper.getNode(nodeId)).on('call:status', (c: { args: [{ text?: string }] }) =>
    statuses.push(String(c.args[0]?.text)),
  );
  const errors: string[] = [];
  emitter(helper.getNode(nodeId)).on('call:error', (c: { args: [unknown] }) =>
    errors.push(String(c.args[0])),
  );
  return { accepted, refused, statuses, errors };
}

/**
 * A Catch node watching `nodeId` and, unless the flow has a Complete node already, a Complete node (the test
 * helper registers a core node once per flow node of its type: two Complete nodes would register it twice).
 */
const watchers = (nodeId: string, complete = true) => [
  ...(complete
    ? [
        {
          id: `${nodeId}-complete`,
          z: 'tab',
          type: 'complete',
          scope: [nodeId],
          wires: [[`${nodeId}-done`]],
        },
        { id: `${nodeId}-done`, z: 'tab', type: 'helper' },
      ]
    : []),
  { id: `${nodeId}-catch`, z: 'tab', type: 'catch', scope: [nodeId], wires: [[`${nodeId}-errors`]] },
  { id: `${nodeId}-errors`, z: 'tab', type: 'helper' },
];

describe(
  'spools on a real full disk (a tmpfs filled to ENOSPC) in the Node-RED runtime (test helper)',
  { skip: serviceSkip('mosquitto') || serviceSkip('influxd') || smallDiskSkip() },
  () => {
    let disk: SmallDisk;
    let broker: Mosquitto;
    /** The test helper's Node-RED with its userDir on a fresh 512 KiB tmpfs, for the length of test `t`. */
    const onSmallDisk = async (t: TestContext) => {
      disk = mountSmallDisk(512);
      t.after(() => disk.unmount());
      helper.settings({ userDir: disk.dir });
      await startHelper();
      t.after(async () => {
        await stopHelper();
        helper.settings({});
      });
    };
    let influxd: Influxd;
    before(async () => {
      broker = await startMosquitto();
      influxd = await startInfluxd({ adminPassword: 'disk-full-pass' });
    });
    after(async () => {
      await broker.stop();
      await influxd.stop();
    });

    test('teleinfo-spool: appends refused with done(err) and "disk full", head saves fail quietly, every accepted reading delivered once space is back', async (t) => {
      await onSmallDisk(t);
      const subscriber = await mqtt.connectAsync(broker.url, { protocolVersion: 5 });
      t.after(() => subscriber.endAsync());
      const received = new Set<string>();
      subscriber.on('message', (_topic, payload) =>
        received.add((JSON.parse(payload.toString()) as Reading).time),
      );
      await subscriber.subscribeAsync('teleinfo/+/reading', { qos: 1 });
      await helper.load(
        [coreNodes.mqtt, coreNodes.status, coreNodes.complete, coreNodes.catch, buffer] as never,
        [
          { id: 'tab', type: 'tab' },
          {
            id: 'broker',
            type: 'mqtt-broker',
            broker: broker.url,
            clientid: 'full-disk-pi',
            protocolVersion: '5',
            keepalive: '15',
          },
          {
            id: 'buffer',
            z: 'tab',
            type: 'teleinfo-spool',
            topic: 'teleinfo/{meter}/reading',
            overlap: '1',
            maxMB: '50',
            durability: 'power',
            ack: 'broker',
            window: '100',
            wires: [['publish']],
          },
          { id: 'publish', z: 'tab', type: 'mqtt out', qos: '1', broker: 'broker' },
          { id: 'link', z: 'tab', type: 'status', scope: ['publish'], wires: [['buffer']] },
          { id: 'acks', z: 'tab', type: 'complete', scope: ['publish'], wires: [['buffer']] },
          ...watchers('buffer', false),
        ] as never,
      );
      // Accepted: not refused (its done() came without error; a refused one reaches the Catch node).
      const { refused, statuses, errors } = outcomes('buffer');
      const times: string[] = [];
      const accepted = () => new Set(times.filter((k) => !refused.has(k)));
      const node = helper.getNode('buffer');
      let sent = 0;
      const send = async (n: number) => {
        for (let i = 0; i < n; i++, sent++) {
          const reading = hcReading('021861348497', T0 + sent * 1000, sent);
          times.push(reading.time);
          node.receive({ payload: reading });
          await turn();
        }
      };
      const settled = () => times.every((k) => received.has(k) || refused.has(k));
      await send(20);
      await waitFor('the first readings delivered', () => received.size === 20);

      disk.fill();
      await send(60);
      await waitFor('every reading delivered or refused', settled);
      assert.ok(refused.size > 0, 'the full disk refused readings');
      assert.match([...refused.values()][0], /ENOSPC/);
      assert.ok(
        statuses.some((s) => /diskFull|disk full/.test(s)),
        `status says disk full: ${statuses.slice(-3).join(' | ')}`,
      );
      // The overlap (1 s) passes: acknowledged readings are released, and saving the head fails on the full disk.
      await waitFor('a head save refused', () => errors.some((e) => /spool head: ENOSPC/.test(e)), 10_000);

      disk.free();
      const refusedBefore = refused.size;
      await send(20);
      await waitFor('every accepted reading delivered', settled, 20_000);
      assert.equal(refused.size, refusedBefore, 'nothing refused once space is back');
      const missing = [...accepted()].filter((k) => !received.has(k));
      const extra = [...received].filter((k) => !accepted().has(k));
      console.log(
        `# buffer on a full disk: sent ${sent}, accepted ${accepted().size}, refused ${refused.size}, delivered ${received.size}, missing ${missing.length}, extra ${extra.length}`,
      );
      assert.deepEqual(missing, []);
      assert.deepEqual(extra, [], 'a refused reading was never sent');
    });

    test('influx-teleinfo-out: the dead-letter write and the head save fail on a full disk, appends are refused; all accepted points are stored once space is back', async (t) => {
      await onSmallDisk(t);
      const db = 'fulldisk';
      const admin = 'admin:disk-full-pass';
      await influxd.query(`CREATE DATABASE ${db}`, undefined, admin);
      // An older writer made ADPS a float in this shard: an integer ADPS is now a field type conflict.
      const res = await fetch(`${influxd.url}/write?db=${db}&precision=ms&u=admin&p=disk-full-pass`, {
        method: 'POST',
        body: `teleinfo,meter=older ADPS=1.5 ${T0 - 1000}`,
      });
      assert.equal(res.status, 204);
      await helper.load(
        [coreNodes.complete, coreNodes.catch, influxServer, influxOut] as never,
        [
          { id: 'tab', type: 'tab' },
          {
            id: 'influx',
            type: 'influxdb-teleinfo-server',
            url: influxd.url,
            api: '1',
            database: db,
            batchSize: '5000',
            flushMs: '1500',
          },
          { id: 'out', z: 'tab', type: 'influx-teleinfo-out', server: 'influx', measurement: 'teleinfo' },
          ...watchers('out'),
        ] as never,
        { influx: { user: 'admin', password: 'disk-full-pass' } },
      );
      const { accepted, refused, statuses } = outcomes('out');
      // A reading InfluxDB refused for good completes (settled: its sender need not send it again) and is reported.
      const settled = () => new Set([...accepted, ...refused.keys()]).size;
      const server = helper.getNode('influx');
      const serverErrors: string[] = [];
      emitter(server).on('call:error', (c: { args: [unknown] }) => serverErrors.push(String(c.args[0])));
      const out = helper.getNode('out');
      const reading = (i: number, adps?: number) => {
        const r = hcReading('021861348497', T0 + i * 1000, i);
        return adps === undefined ? r : { ...r, values: { ...r.values, ADPS: adps } };
      };
      let sent = 0;
      const send = async (n: number, conflictAt = -1) => {
        for (let i = 0; i < n; i++, sent++) {
          out.receive({ payload: reading(sent, sent === conflictAt ? 47 : undefined) });
          await turn();
        }
      };
      await send(30, 12);
      await turn();
      disk.fill(); // the 30 lines are in the spool; the batch leaves at the flush interval, onto a full disk
      await waitFor('the batch written and its conflict isolated', () => settled() === 30, 20_000);
      assert.equal(refused.size, 1, 'only the conflicting reading failed');
      assert.ok(accepted.has(new Date(T0 + 12_000).toISOString()), 'and it completed: settled for good');
      assert.match(
        [...refused.values()][0],
        /field type conflict.*dead-letter file could not be written \(ENOSPC/,
      );
      await send(40);
      await waitFor('every later reading accepted or refused', () => settled() === sent, 20_000);
      assert.ok(refused.size > 1, 'appends refused on the full disk');
      assert.ok(
        statuses.some((s) => /diskFull|disk full/.test(s)),
        `status says disk full: ${statuses.slice(-3).join(' | ')}`,
      );
      assert.ok(
        serverErrors.some((e) => /spool (head|append): ENOSPC/.test(e)),
        serverErrors.join(' | '),
      );

      disk.free();
      const refusedBefore = refused.size;
      await send(10);
      await waitFor('accepted again', () => settled() === sent, 20_000);
      assert.equal(refused.size, refusedBefore);
      const stored = async () => {
        const r = await influxd.query(`SELECT "PAPP" FROM teleinfo WHERE meter = '021861348497'`, db, admin);
        return new Set(
          (r.results[0]?.series?.[0]?.values ?? []).map(([time]) => new Date(time as number).toISOString()),
        );
      };
      await waitFor('every accepted point stored', async () => {
        const s = await stored();
        return [...accepted].every((k) => refused.has(k) || s.has(k));
      });
      const inDb = await stored();
      console.log(
        `# influx-teleinfo-out on a full disk: sent ${sent}, accepted ${accepted.size}, refused ${refused.size}, stored ${inDb.size}, missing ${[...accepted].filter((k) => !refused.has(k) && !inDb.has(k)).length}`,
      );
      assert.equal(
        inDb.has(new Date(T0 + 12_000).toISOString()),
        false,
        'the conflicting point is not stored',
      );
    });
  },
);
