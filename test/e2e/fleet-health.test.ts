import assert from 'node:assert/strict';
import { afterEach, describe, test } from 'node:test';
import mqtt from 'mqtt';
import { dashboard, expand } from '../support/dashboard';
import {
  INFLUX_ADMIN,
  readings,
  report,
  settle,
  startSite,
  stopSite,
  type Site,
} from '../support/end-to-end';
import { pause, serviceSkip, waitFor } from '../support/services';

/**
 * The Pis' health through the shipped flows: the Pi publishes it every 10 s (its teleinfo-health), the server
 * admits and stores it (teleinfo-fleet) and alerts on it (teleinfo-alert, a backlog older than a minute here). The
 * Pi is cut from the broker for longer than that: the health it kept shows its backlog growing, the alert is
 * raised once and cleared once when the backlog drains, and the dashboard's fleet view has the Pi's last state.
 */

const skip = serviceSkip('mosquitto') || serviceSkip('influxd');
const OUTAGE_MS = 150_000;

describe("a Pi's health, with the shipped flows", { skip }, () => {
  let site: Site | null = null;
  let observer: mqtt.MqttClient | null = null;
  afterEach(async () => {
    await observer?.endAsync();
    if (site) await stopSite(site);
    site = null;
  });

  test('a Pi cut off from the broker: its backlog grows in the fleet view, the alert raises once and clears once', async () => {
    site = await startSite('fleet', {
      serverAccount: true,
      piHealth: { interval: '10' },
      serverFlow: (nodes) => {
        nodes.find((n) => n.id === 'srv-alert')!.backlogMinutes = '1';
      },
    });
    const s = site;
    const alerts: string[] = [];
    observer = await mqtt.connectAsync(s.mosquitto.url, { protocolVersion: 5 });
    observer.on('message', (topic, payload) => {
      const a = JSON.parse(payload.toString()) as { state: string; value: number };
      alerts.push(`${topic} ${a.state}`);
    });
    await observer.subscribeAsync('teleinfo/pi-e2e/alert/+', { qos: 1 });
    const health = async (where = '') => {
      const r = await s.influxd.query(
        `SELECT "spool_depth", "oldest_age_s", "version" FROM "teleinfo_health" WHERE "pi" = 'pi-e2e'${where}`,
        s.database,
        INFLUX_ADMIN,
      );
      return (r.results[0].series?.[0]?.values ?? []) as [number, number, number | null, string][];
    };
    await readings(s, 4);
    await waitFor('the Pi health in InfluxDB', async () => (await health()).length > 0, 30_000);

    const cutAt = Date.now();
    await s.link.cut();
    await pause(OUTAGE_MS);
    const healAt = Date.now();
    await s.link.open();
    await waitFor(
      'the Pi caught up, in its health',
      // Readings keep coming every 2 s: caught up is no reading older than half a minute waiting.
      async () => (await health(` AND time > ${healAt}ms`)).some(([, , age]) => (age ?? 0) < 30),
      60_000,
    );
    const during = await health(` AND time > ${cutAt}ms AND time < ${healAt}ms`);
    const ages = during.map(([, , age]) => age ?? 0);
    console.log(
      `# fleet: ${during.length} health points of the ${OUTAGE_MS / 1000} s outage, backlog ${during[0]?.[1]} → ${during.at(-1)?.[1]} readings, oldest ${Math.max(...ages)} s`,
    );
    assert.ok(during.length >= OUTAGE_MS / 10_000 - 3, 'the health of the outage was kept and sent');
    assert.ok(during.at(-1)![1] > during[0][1], 'the backlog grows');
    assert.ok(Math.max(...ages) >= OUTAGE_MS / 1000 - 20, "the oldest reading's age grows with the outage");

    await waitFor('the backlog alert cleared', () =>
      alerts.includes('teleinfo/pi-e2e/alert/backlog cleared'),
    );
    assert.deepEqual(
      alerts.filter((a) => a.includes('/backlog ')),
      ['teleinfo/pi-e2e/alert/backlog raised', 'teleinfo/pi-e2e/alert/backlog cleared'],
      'raised once, cleared once',
    );
    assert.deepEqual(
      alerts.filter((a) => /\/(disk|version) /.test(a)),
      [],
      'no disk or version alert',
    );

    // The fleet view: the Pi's row, as the dashboard queries it.
    const fleet = dashboard.panels.find((p) => p.id === 12)!;
    const r = await s.influxd.query(
      expand(fleet.targets[0].query, { from: cutAt - 60_000, to: Date.now(), interval: '10s' }, []),
      s.database,
      INFLUX_ADMIN,
    );
    const row = r.results[0].series?.find((x) => x.tags?.pi === 'pi-e2e');
    assert.ok(row, 'a row for the Pi');
    assert.ok(
      ((row.values[0][row.columns.indexOf('oldest unsent (min)')] as number | null) ?? 0) < 0.5,
      'caught up',
    );
    assert.equal(typeof row.values[0][row.columns.indexOf('version')], 'string');
    report('fleet health', await settle(s));
  });
});
