import assert from 'node:assert/strict';
import fs from 'node:fs';
import { afterEach, describe, test } from 'node:test';
import {
  INFLUX_ADMIN,
  pisOnline,
  readings,
  report,
  restartInfluxd,
  mqttUrl,
  restartMosquitto,
  sentKeys,
  settle,
  startPi,
  startServer,
  startSite,
  stopSite,
  storedKeys,
  storedSince,
  type Site,
} from '../support/end-to-end';
import { serviceSkip, tempDir, waitFor, pause } from '../support/services';
import { makeCertificates } from '../support/tls';

/**
 * The mission end to end: a simulated Eco-Devices box (real clock), the shipped Pi flow, a real mosquitto with
 * the project's broker settings, the shipped server flow and a real influxd. Every reading the Pi's ecodevices-in
 * emitted must be in InfluxDB exactly once (same meter and time) with its value, whatever fails in between.
 */

const skip = serviceSkip('mosquitto') || serviceSkip('influxd');

/** The server's debug node printing a change of the Pi's status topic (birth, close or will message). */
function piStatus(state: 'online' | 'offline', times = 1) {
  return (log: string) =>
    (log.match(new RegExp(`topic: 'teleinfo/pi-e2e/status',\\s+payload: '${state}'`, 'g'))?.length ?? 0) >=
    times;
}

describe('Pi → MQTT → server → InfluxDB, with the shipped flows', { skip }, () => {
  let site: Site | null = null;
  afterEach(async () => {
    if (site) await stopSite(site);
    site = null;
  });

  test('happy path: readings of several meters are stored exactly once with their values; the Pi loads only the core nodes a Pi uses', async () => {
    site = await startSite('happy');
    // The launcher's Pi settings leave out core nodes whose libraries cost memory (http request first).
    const sets = (await (
      await fetch(`${site.pi.url}/nodes`, { headers: { accept: 'application/json' } })
    ).json()) as { types: string[] }[];
    const types = new Set(sets.flatMap((s) => s.types));
    assert.equal(types.has('http request'), false, 'no http request node on the Pi');
    for (const kept of ['mqtt out', 'function', 'file', 'http in', 'json', 'teleinfo-spool'])
      assert.ok(types.has(kept), `${kept} is in the Pi's palette`);
    // The server tracks the Pi's retained status topic: its birth message, then its close message when it stops.
    await waitFor('the Pi online, seen by the server', () => piStatus('online')(site!.servers[0].log()));
    await waitFor(
      'the Pi online in InfluxDB, for Grafana',
      async () => (await pisOnline(site!))['pi-e2e'] === true,
    );
    await readings(site, 20);
    const r = await settle(site);
    report('happy path', r);
    await waitFor('the Pi offline in InfluxDB', async () => (await pisOnline(site!))['pi-e2e'] === false);
    assert.equal(new Set([...sentKeys(site.piDir).keys()].map((k) => k.split(' ')[0])).size, 4);
    await waitFor('the Pi offline, seen by the server', () => piStatus('offline')(site!.servers[0].log()));
  });

  test("the server flow's rollups follow what it stores: each meter's hour ends on its last raw index", async () => {
    site = await startSite('rollups', {
      serverAccount: true,
      serverFlow: (nodes) => {
        Object.assign(
          nodes.find((n) => n.id === 'srv-rollup')!,
          { interval: '1', currentEvery: '1' },
        );
      },
    });
    await readings(site, 10);
    await settle(site);
    const lastOf = async (q: string) => {
      const r = await site!.influxd.query(q, 'rollups', INFLUX_ADMIN);
      return Object.fromEntries((r.results[0].series ?? []).map((s) => [s.tags!.meter, s.values[0][1]]));
    };
    const raw = await lastOf('SELECT last("HCHP") FROM "teleinfo" GROUP BY "meter"');
    assert.ok(Object.keys(raw).length > 0, 'HC meters stored');
    await waitFor('the hourly rollups at the last raw index', async () => {
      const rolled = await lastOf(
        'SELECT last("end_HCHP") FROM "forever"."teleinfo_hourly" GROUP BY "meter"',
      );
      return JSON.stringify(rolled) === JSON.stringify(raw);
    });
    const days = await lastOf('SELECT count("power_max") FROM "forever"."teleinfo_daily" GROUP BY "meter"');
    assert.ok(Object.keys(days).length >= Object.keys(raw).length, 'daily rollups of every meter');
    assert.doesNotMatch(site.servers[0].log(), /teleinfo-rollup/, 'no rollup error');
  });

  async function brokerDown(
    database: string,
    readingsTopic?: string,
    signal: NodeJS.Signals = 'SIGTERM',
    downMs = 30_000,
  ) {
    site = await startSite(database, { readingsTopic });
    await readings(site, 8);
    await site.mosquitto.stop(signal);
    await pause(downMs);
    const before = new Set(sentKeys(site.piDir).keys());
    await restartMosquitto(site);
    await readings(site, 8);
    await storedSince(site, before);
    const r = await settle(site);
    const requests = site.pi.log().match(/replay requested by/g)?.length ?? 0;
    console.log(`# replay requests the Pi answered: ${requests}`);
    if (r.missing.length > 0) {
      console.log(fs.readFileSync(`${site.mosquittoDir}/service.log`, 'utf8').slice(-1500));
      console.log(site.pi.log().slice(-4000));
    }
    return r;
  }

  test(
    'the shipped broker (TLS, one account per Pi and per server, the ACL): readings flow; a wrong CA or password gets nothing in',
    { skip: serviceSkip('openssl') },
    async () => {
      const tlsDir = tempDir('e2e-tls');
      const certs = makeCertificates(tlsDir);
      // The shipped broker: TLS only, the Pi's own account and the server's, the ACL.
      const env = { MQTT_CA_FILE: certs.ca, MQTT_USER: 'pi-e2e', MQTT_PASSWORD: 'e2e-pi-pass' };
      site = await startSite('secure', {
        secure: {
          certsDir: tlsDir,
          accounts: { servers: { 'server-1': 'e2e-server-pass' }, pis: { 'pi-e2e': 'e2e-pi-pass' } },
          pi: env,
          server: { MQTT_CA_FILE: certs.ca, MQTT_USER: 'server-1', MQTT_PASSWORD: 'e2e-server-pass' },
        },
      });
      await readings(site, 8);
      // Two more Pis on the same box, which the broker must never hear from: their readings would be extra points.
      const refused: { id: string; dir: string; pi: Awaited<ReturnType<typeof startPi>> }[] = [];
      let r;
      try {
        for (const [id, wrong] of [
          ['pi-wrong-ca', { MQTT_CA_FILE: certs.otherCa }],
          ['pi-wrong-password', { MQTT_PASSWORD: 'not-the-password' }],
        ] as const) {
          const dir = tempDir('e2e-pi-refused');
          const pi = await startPi(dir, mqttUrl(site, site.mosquitto.port), site.box.port, {
            ...env,
            ...wrong,
            PI_ID: id,
          });
          refused.push({ id, dir, pi });
        }
        for (const { id, dir, pi } of refused) {
          await waitFor(
            `${id}: a reading, and a refused connection`,
            () => sentKeys(dir).size > 0 && /Connection failed to broker/.test(pi.log()),
          );
        }
        const brokerLog = () => fs.readFileSync(`${site!.mosquittoDir}/service.log`, 'utf8');
        // Only the refused Pis can cause these, the good Pi and the server being connected: a password refused by
        // the broker, and a TLS handshake the client gave up (Node's TLS closes without an alert on an unknown CA).
        await waitFor(
          'mosquitto refusing the password, and a client giving up the TLS handshake',
          () =>
            /disconnected, not authori[sz]ed/.test(brokerLog()) &&
            /OpenSSL Error\[0\][^\n]*\n[^\n]*Client <unknown> disconnected: Protocol error/.test(brokerLog()),
        );
        assert.doesNotMatch(brokerLog(), /New client connected .* as teleinfo-pi-wrong/);
        r = await settle(site);
      } finally {
        for (const { dir, pi } of refused) {
          await pi.stop();
          fs.rmSync(dir, { recursive: true, force: true });
        }
        fs.rmSync(tlsDir, { recursive: true, force: true });
      }
      report('shipped broker, TLS and ACL', r);
    },
  );

  // The Pi's client retries every 5 s, so the test waits for a reading emitted after the restart to be stored
  // before it settles: the Pi must be back on the broker, not stopped with its backlog in its journal.
  test('broker down 30 s mid-stream, then back (a single server on teleinfo/+/+/reading)', async () => {
    report('broker down 30 s', await brokerDown('brokerdown', 'teleinfo/+/+/reading'));
  });

  // The servers' sessions are clean: each connection subscribes again, and teleinfo-resubscribe asks the Pis to
  // send what no server acknowledged.
  test('broker down 30 s mid-stream, then back (the shared subscription)', async () => {
    report('broker down 30 s, shared subscription', await brokerDown('brokerdownshared'));
  });

  // A crash: what mosquitto received since its last autosave (10 s) is gone, readings it acknowledged to the Pi
  // included. The Pi still has them: no server acknowledged them, and the server's reconnection asks for them.
  test('broker kill -9 mid-stream, back after 10 s (the shared subscription)', async () => {
    report(
      'broker kill -9, shared subscription',
      await brokerDown('brokerkill', undefined, 'SIGKILL', 10_000),
    );
  });

  test('Pi cut off from the broker for 2 minutes of readings', async () => {
    site = await startSite('picut');
    await readings(site, 8);
    await site.link.cut();
    // The Pi could not say goodbye: the broker publishes its will.
    await waitFor('the Pi offline (its will), seen by the server', () =>
      piStatus('offline')(site!.servers[0].log()),
    );
    await pause(120_000);
    const before = new Set(sentKeys(site.piDir).keys());
    await site.link.open();
    await readings(site, 8);
    await storedSince(site, before);
    assert.ok(piStatus('online', 2)(site.servers[0].log()), 'the Pi online again (its birth message)');
    report('Pi cut off 2 min', await settle(site));
  });

  test('server kill -9 for 60 s, then restarted: the Pi sends again what no server stored', async () => {
    site = await startSite('serverkill');
    await readings(site, 8);
    await site.servers[0].stop('SIGKILL');
    await pause(60_000);
    site.servers[0] = await startServer(site, 0);
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

  // The dead member's clean session ends with its connection: its share goes to the live one; what it took and
  // never stored the Pi sends again, on its stall or on the restarted server's replay request.
  test('two servers on the shared subscription, one killed mid-stream and restarted later', async () => {
    site = await startSite('shared', { servers: 2 });
    await readings(site, 12);
    await site.servers[1].stop('SIGKILL');
    await readings(site, 12);
    const whileDown = (await storedKeys(site)).size;
    // The killed server took readings it never stored: its restart asks the Pis for what no server acknowledged.
    // Stopping the Pi before it answered would keep them in its spool (a race of the test, not of the system).
    const replays = () => (site!.pi.log().match(/replay requested by teleinfo-e2e-server-2/g) ?? []).length;
    const before = replays();
    site.servers[1] = await startServer(site, 1);
    await waitFor("the Pi answering the restarted server's replay request", () => replays() > before, 60_000);
    const r = await settle(site);
    console.log(`# shared subscription: ${whileDown} stored while one server was dead`);
    report('shared subscription, one server killed then restarted', r);
  });
});
