import assert from 'node:assert/strict';
import type { EventEmitter } from 'node:events';
import { after, before, describe, test } from 'node:test';
import influxServer from '../../nodes/influxdb-teleinfo-server/influxdb-teleinfo-server';
import fleetNode from '../../nodes/teleinfo-fleet/teleinfo-fleet';
import healthNode from '../../nodes/teleinfo-health/teleinfo-health';
import spoolNode from '../../nodes/teleinfo-spool/teleinfo-spool';
import type { PiHealth } from '../../nodes/lib/health';
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
  topic?: string;
  payload?: unknown;
  retain?: boolean;
  error?: { message: string };
}

/**
 * A Pi's teleinfo-health (with a teleinfo-spool beside it) into the server's teleinfo-fleet, in one Node-RED (the
 * test helper), teleinfo-fleet writing to a real influxd with the server's account.
 */
describe(
  'teleinfo-health and teleinfo-fleet (Node-RED test helper, real influxd)',
  { skip: serviceSkip('influxd') },
  () => {
    let influxd: Influxd;
    const received: Msg[] = [];
    const caught: Msg[] = [];
    const published: Msg[] = [];

    before(async () => {
      influxd = await startInfluxd({ adminPassword: 'adminpw' });
      await createStackDatabase(influxd, 'fleet', 'admin:adminpw');
      for (const q of ["CREATE USER server WITH PASSWORD 'serverpw'", 'GRANT ALL ON fleet TO server'])
        await influxd.query(q, undefined, 'admin:adminpw');
      helper.settings({ userDir: tempDir('fleet-user') });
      await startHelper();
      await helper.load(
        [influxServer, fleetNode, healthNode, spoolNode, coreNodes.catch] as never,
        [
          { id: 'tab', type: 'tab' },
          {
            id: 'spool',
            z: 'tab',
            type: 'teleinfo-spool',
            topic: 'teleinfo/pi-1/{meter}/reading',
            ack: 'server',
            stall: '120',
            wires: [[]],
          },
          {
            id: 'health',
            z: 'tab',
            type: 'teleinfo-health',
            pi: 'pi-1',
            interval: '3600',
            wires: [['published']],
          },
          { id: 'published', z: 'tab', type: 'helper' },
          {
            id: 'influx',
            type: 'influxdb-teleinfo-server',
            url: influxd.url,
            api: '1',
            database: 'fleet',
            flushMs: '50',
          },
          { id: 'fleet', z: 'tab', type: 'teleinfo-fleet', server: 'influx', wires: [['admitted']] },
          { id: 'admitted', z: 'tab', type: 'helper' },
          { id: 'catcher', z: 'tab', type: 'catch', scope: ['fleet'], wires: [['caught']] },
          { id: 'caught', z: 'tab', type: 'helper' },
        ] as never,
        { influx: { user: 'server', password: 'serverpw' } },
      );
      (helper.getNode('published') as unknown as EventEmitter).on('input', (m: Msg) => published.push(m));
      (helper.getNode('admitted') as unknown as EventEmitter).on('input', (m: Msg) => received.push(m));
      (helper.getNode('caught') as unknown as EventEmitter).on('input', (m: Msg) => caught.push(m));
    });
    after(async () => {
      await stopHelper();
      helper.settings({});
      await influxd?.stop();
    });

    test("the Pi's health: its spool's backlog by its readings' time, retained, held while the link is down", async () => {
      const now = Date.now();
      // Readings waiting in the spool (no link: never forwarded), the oldest 10 minutes old.
      helper.getNode('spool').receive({
        payload: [hcReading('021861348497', now - 600_000, 1), hcReading('021861348497', now, 2)],
      });
      await waitFor('the first health', () => published.length >= 1, 10_000);
      const health = helper.getNode('health');
      health.receive({ payload: 'now' });
      await waitFor('a second health', () => published.length >= 2);
      const h = published[1].payload as PiHealth;
      assert.equal(published[1].topic, 'teleinfo/pi-1/health');
      assert.equal(published[1].retain, true);
      assert.equal(h.spool.depth, 2);
      assert.ok(h.spool.oldestAgeS! >= 600 && h.spool.oldestAgeS! < 620, `oldest ${h.spool.oldestAgeS} s`);
      assert.ok(h.diskFreeMB! > 0 && h.diskTotalMB! >= h.diskFreeMB!);
      assert.match(h.versions.package, /^\d+\.\d+\.\d+/);
      assert.ok(JSON.stringify(h).length < 1024, 'under 1 KB');
      // The link down (the mqtt out's status through a Status node): kept, then sent in order when it is back.
      health.receive({ status: { fill: 'red', text: 'node-red:common.status.disconnected' } });
      health.receive({ payload: 'now' });
      health.receive({ payload: 'now' });
      assert.equal(published.length, 2, 'nothing out while the link is down');
      health.receive({ status: { fill: 'green', text: 'node-red:common.status.connected' } });
      await waitFor('the health of the outage', () => published.length === 4);
      assert.ok(
        Date.parse((published[2].payload as PiHealth).at) <=
          Date.parse((published[3].payload as PiHealth).at),
      );
    });

    test('the server admits, stores and passes on a health; refuses a forged, oversized or too frequent one; skips a retained repeat', async () => {
      const good = published[1].payload as PiHealth;
      const fleet = helper.getNode('fleet');
      fleet.receive({ topic: 'teleinfo/pi-1/health', payload: JSON.stringify(good) });
      await waitFor('admitted', () => received.length === 1);
      assert.deepEqual(received[0].payload, good);
      const later = { ...good, at: new Date(Date.parse(good.at) + 60_000).toISOString() };
      for (const [payload, topic] of [
        [JSON.stringify({ ...later, pi: 'pi-2' }), 'teleinfo/pi-1/health'],
        ['x'.repeat(5000), 'teleinfo/pi-1/health'],
        [
          JSON.stringify({ ...good, at: new Date(Date.parse(good.at) + 2000).toISOString() }),
          'teleinfo/pi-1/health',
        ],
        [JSON.stringify(later), 'teleinfo/pi-1/status'],
      ])
        fleet.receive({ topic, payload });
      await waitFor('four refusals', () => caught.length === 4);
      assert.deepEqual(
        caught.map((m) => /teleinfo-fleet: (.*)/.exec(m.error!.message)![1].slice(0, 30)),
        [
          'the health of "pi-2" on the to',
          'larger than 4096 bytes',
          'pi-1: two health messages with',
          'not on teleinfo/<pi-id>/health',
        ],
      );
      fleet.receive({ topic: 'teleinfo/pi-1/health', payload: JSON.stringify(good) });
      fleet.receive({ topic: 'teleinfo/pi-1/health', payload: JSON.stringify(later) });
      await waitFor('the later one admitted', () => received.length === 2);
      assert.equal(caught.length, 4, 'the retained repeat is no error');
      await waitFor('both in InfluxDB', async () => {
        const r = await influxd.query(
          'SELECT "spool_depth", "version" FROM "teleinfo_health"',
          'fleet',
          'admin:adminpw',
        );
        return r.results[0].series?.[0]?.values.length === 2;
      });
    });
  },
);
