import assert from 'node:assert/strict';
import fs from 'node:fs';
import { after, before, describe, test } from 'node:test';
import mqtt from 'mqtt';
import type { Reading } from '../../nodes/lib/reading';
import { containersSkip } from '../support/container';
import {
  pisOnline,
  restartInfluxd,
  sentKeys,
  settle,
  startSite,
  stopSite,
  storedKeys,
  storedSince,
  type Site,
} from '../support/end-to-end';
import { hcReading } from '../support/readings';
import { editorStatus } from '../support/node-red-process';
import { clientId } from '../support/shipped-broker';
import { serviceSkip, tempDir, waitFor } from '../support/services';
import { makeCertificates } from '../support/tls';

/**
 * A Pi is not trusted. The shipped broker (docker/mosquitto as its container runs it: TLS, the accounts init.sh
 * writes, the dynamic security plugin's rights), influxd written with the server's account (ALL on its database, no admin), the shipped server flow
 * (Home Assistant discovery enabled, a 1 MB spool) and a real Pi polling a simulated box throughout. `pi-evil` has its
 * own account, its password and the CA, and tries each attack; after all of them, every reading of the real Pi is
 * stored, nothing of pi-evil's beyond its own meters, and the server is up and bounded in memory.
 */
const PI = 'pi-e2e';
const EVIL = 'pi-evil';
const PASSWORDS: Record<string, string> = {
  [PI]: 'pi-pass',
  [EVIL]: 'evil-pass',
  'server-1': 'server-pass',
  homeassistant: 'ha-pass',
};

describe(
  'a hostile Pi against the shipped broker, the shipped server flow and influxd, a real Pi publishing throughout',
  { skip: serviceSkip('mosquitto') || serviceSkip('influxd') || serviceSkip('openssl') || containersSkip() },
  () => {
    let site: Site;
    let tlsDir: string;
    let ca: Buffer;
    const clients: mqtt.MqttClient[] = [];
    /** The real Pi's meters (the box's two). */
    let meters: string[] = [];

    const connect = async (username: string, extra: mqtt.IClientOptions = {}) => {
      const client = await mqtt.connectAsync(site.mosquitto.url, {
        ca,
        protocolVersion: 5,
        reconnectPeriod: 0,
        username,
        password: PASSWORDS[username],
        clientId: clientId(username),
        ...extra,
      });
      clients.push(client);
      return client;
    };
    const query = async (q: string) =>
      (await site.influxd.query(q, site.database, 'admin:e2e-influx-pass')).results[0]?.series ?? [];
    const serverLog = () => site.servers[0].log();
    /** pi-evil's own meters: bound to it on first sight, as many as a Pi may have. */
    const evilMeter = (i: number) => `evil-${i}`;
    const evilReading = (meter: string, i: number, at = Date.now() - 60_000 + i): Reading =>
      hcReading(meter, at, i);

    before(async () => {
      tlsDir = tempDir('hostile-tls');
      const certs = makeCertificates(tlsDir);
      ca = fs.readFileSync(certs.ca);
      site = await startSite('hostile', {
        serverAccount: true,
        secure: {
          certsDir: tlsDir,
          accounts: {
            servers: { 'server-1': PASSWORDS['server-1'] },
            pis: { [PI]: PASSWORDS[PI], [EVIL]: PASSWORDS[EVIL] },
            ha: { homeassistant: PASSWORDS.homeassistant },
          },
          pi: { MQTT_CA_FILE: certs.ca, MQTT_USER: PI, MQTT_PASSWORD: PASSWORDS[PI], PI_ID: PI },
          server: { MQTT_CA_FILE: certs.ca, MQTT_USER: 'server-1', MQTT_PASSWORD: PASSWORDS['server-1'] },
        },
        serverFlow: (nodes) => {
          delete nodes.find((n) => n.id === 'srv-ha')!.d;
          nodes.find((n) => n.id === 'srv-influx')!.spoolMB = '1';
        },
      });
      await waitFor('the real Pi stored', async () => (await storedKeys(site)).size >= 4, 60_000);
      meters = [...new Set([...sentKeys(site.piDir).keys()].map((k) => k.split(' ')[0]))];
      assert.ok(meters.length >= 2, meters.join(' '));
      // pi-evil's own meters, as many as a Pi may have, bound by a first valid reading each.
      const evil = await connect(EVIL);
      for (let m = 0; m < 16; m++)
        await evil.publishAsync(
          `teleinfo/${EVIL}/${evilMeter(m)}/reading`,
          JSON.stringify(evilReading(evilMeter(m), 0)),
          {
            qos: 1,
          },
        );
      await waitFor(
        "pi-evil's meters stored",
        async () =>
          (await query('SHOW TAG VALUES FROM teleinfo WITH KEY = "meter"')).flatMap((x) => x.values).length >=
          meters.length + 16,
        30_000,
      );
      await evil.endAsync();
    });

    after(async () => {
      for (const c of clients) await c.endAsync(true).catch(() => undefined);
      if (site) await stopSite(site);
      fs.rmSync(tlsDir, { recursive: true, force: true });
    });

    test("the broker: no joining the servers' group, no one else's client id, no publishing as a Pi from Home Assistant", async () => {
      const evil = await connect(EVIL);
      for (const topic of [
        '$share/teleinfo-ingest/teleinfo/+/+/reading',
        'teleinfo/+/+/reading',
        `teleinfo/${PI}/+/reading`,
      ])
        await assert.rejects(evil.subscribeAsync(topic, { qos: 1 }), /not authori[sz]ed/i, topic);
      for (const id of [clientId(PI), clientId('server-1')])
        await assert.rejects(connect(EVIL, { clientId: id }), /not authori[sz]ed|bad user/i, id);
      const ha = await connect('homeassistant');
      await assert.rejects(
        ha.subscribeAsync('$share/teleinfo-ingest/teleinfo/+/+/reading', { qos: 1 }),
        /not authori[sz]ed/i,
      );
      for (const topic of [`teleinfo/${PI}/${meters[0]}/reading`, `teleinfo/${PI}/status`])
        await assert.rejects(ha.publishAsync(topic, 'forged', { qos: 1 }), /not authori[sz]ed/i, topic);
    });

    test('oversized messages: the broker closes a 200 MB one; under its limit, the server refuses junk unparsed', async () => {
      const evil = await connect(EVIL);
      const closed = new Promise<void>((resolve) => evil.once('close', () => resolve()));
      evil.publish(`teleinfo/${EVIL}/${evilMeter(0)}/reading`, Buffer.alloc(200 * 1024 * 1024, 0x5b), {
        qos: 1,
      });
      await closed;
      const again = await connect(EVIL);
      await again.publishAsync(`teleinfo/${EVIL}/${evilMeter(0)}/reading`, '['.repeat(900_000), { qos: 1 });
      const many = JSON.stringify(Array.from({ length: 1001 }, (_, i) => evilReading(evilMeter(0), i)));
      await again.publishAsync(`teleinfo/${EVIL}/${evilMeter(0)}/reading`, many, { qos: 1 });
      // Nothing of these was a reading, so evil-0 is not bound yet.
      await waitFor('both refused', () => /refused: pi-evil: malformed JSON/.test(serverLog()), 20_000);
    });

    test("a meter id beyond what a topic may carry, line-protocol injection, another Pi's meter, a label typed otherwise, times out of the window: refused or re-derived, never stored", async () => {
      const evil = await connect(EVIL);
      const send = (meter: string, payload: unknown) =>
        evil.publishAsync(`teleinfo/${EVIL}/${meter}/reading`, JSON.stringify(payload), { qos: 1 });
      // A meter id no topic can carry, in the reading; one a topic can carry but no tag should.
      const long = 'm'.repeat(70_000);
      await send(evilMeter(0), evilReading(long, 1));
      await send('m'.repeat(300), evilReading('m'.repeat(300), 1));
      // Its own meter, with derived fields forged: admitted, with the fields our decoder derives.
      const injection = '1i,evil=1 0\nteleinfo_pi,pi=pi-e2e online=false';
      await send(evilMeter(0), {
        ...evilReading(evilMeter(0), 1),
        phases: injection,
        overrun: injection,
        tariffOption: injection,
        energyTotal: injection,
      });
      // The real Pi's meter, on pi-evil's topic: power and index forged.
      const forged = hcReading(meters[0], Date.now() - 1000, 1);
      await send(meters[0], { ...forged, values: { ...forged.values, PAPP: 99_999, HCHC: 1, HCHP: 1 } });
      // A label with another type, in a week to come; a year of weekly readings from 2030.
      await send(evilMeter(0), {
        ...evilReading(evilMeter(0), 2),
        values: { ...evilReading(evilMeter(0), 2).values, PTEC: 5 },
      });
      await send(evilMeter(0), evilReading(evilMeter(0), 3, Date.now() + 7 * 86_400_000));
      await send(
        evilMeter(0),
        Array.from({ length: 500 }, (_, i) =>
          evilReading(evilMeter(0), i, Date.parse('2030-01-01') + i * 7 * 86_400_000),
        ),
      );
      const marker = evilReading(evilMeter(0), 4);
      await send(evilMeter(0), marker);
      await waitFor(
        'the marker stored',
        async () =>
          (await query(`SELECT count("phases") FROM teleinfo WHERE meter = '${evilMeter(0)}'`)).length > 0 &&
          (
            await query(
              `SELECT * FROM teleinfo WHERE meter = '${evilMeter(0)}' AND time = ${Date.parse(marker.time)}ms`,
            )
          ).length > 0,
      );

      console.log(`# the real Pi's meters: ${meters.join(' ')}`);
      const measurements = (await query('SHOW MEASUREMENTS')).flatMap((s) =>
        s.values.map((v) => String(v[0])),
      );
      // Only what the shipped server flow writes: readings, Pi status, Pi health and the rollups (which
      // appear as the flow's passes and the real Pi's health come, so not all of them need be there yet).
      const shipped = [
        'teleinfo',
        'teleinfo_pi',
        'teleinfo_health',
        'teleinfo_hourly',
        'teleinfo_daily',
        'teleinfo_monthly',
      ];
      assert.deepEqual(
        measurements.filter((m) => !shipped.includes(m)),
        [],
      );
      assert.ok(measurements.includes('teleinfo'), measurements.join(' '));
      const [stored] = await query(
        `SELECT "phases", "overrun", "tariff_option" FROM teleinfo WHERE meter = '${evilMeter(0)}'`,
      );
      assert.ok(
        stored.values.every(([, phases, overrun]) => phases === 1 && overrun === false),
        JSON.stringify(stored.values),
      );
      assert.deepEqual(
        await query(`SELECT "apparent_power" FROM teleinfo WHERE "apparent_power" = 99999`),
        [],
        "pi-evil's power for the real Pi's meter",
      );
      const shards = await site.influxd.query('SHOW SHARDS', undefined, 'admin:e2e-influx-pass');
      const future = (shards.results[0].series ?? [])
        .flatMap((s) => s.values)
        .filter((row) => Date.parse(String(row[5])) > Date.now() + 8 * 86_400_000);
      assert.deepEqual(future, [], 'no shard for a time to come');
      assert.doesNotMatch(serverLog(), /field type conflict/);
      for (const said of [
        /refused: not a reading topic/,
        /refused: pi-evil, meter evil-0: a reading on the topic of meter evil-0 is for another meter/,
        new RegExp(`refused: pi-evil: meter ${meters[0]} belongs to another Pi`),
        /PTEC is a short text label/,
        /outside the window the server admits/,
      ])
        assert.match(serverLog(), said);
      assert.doesNotMatch(serverLog(), /m{200}/, 'no payload id in the log');
      assert.deepEqual(await pisOnline(site), { [PI]: true });
    });

    test("a flood: refused readings cost InfluxDB nothing, invented meters stop at the Pi's quota, retained readings are cleared", async () => {
      const evil = await connect(EVIL);
      const writeRequests = async () => {
        const r = await site.influxd.query("SHOW STATS FOR 'httpd'", undefined, 'admin:e2e-influx-pass');
        const s = r.results[0].series![0];
        return s.values[0][s.columns.indexOf('writeReq')] as number;
      };
      const writesBefore = await writeRequests();
      const start = Date.now();
      const bad = { ...evilReading(evilMeter(1), 1), values: { PTEC: 7 } };
      for (let i = 0; i < 3000; i++)
        evil.publish(`teleinfo/${EVIL}/${evilMeter(1)}/reading`, JSON.stringify(bad), { qos: 1 });
      // 3,000 invented meters, each with a valid reading; and retained readings, valid or not.
      for (let i = 0; i < 3000; i++)
        evil.publish(
          `teleinfo/${EVIL}/invented-${i}/reading`,
          JSON.stringify(evilReading(`invented-${i}`, i)),
          { qos: 1 },
        );
      for (let i = 0; i < 50; i++)
        await evil.publishAsync(
          `teleinfo/${EVIL}/retained-${i}/reading`,
          i % 2 ? 'x'.repeat(10_000) : JSON.stringify(evilReading(evilMeter(2), i)),
          { qos: 1, retain: true },
        );
      // Delivered in order after them: once this one is stored, the server has been through the flood.
      const marker = evilReading(evilMeter(0), 5);
      await evil.publishAsync(`teleinfo/${EVIL}/${evilMeter(0)}/reading`, JSON.stringify(marker), { qos: 1 });
      await waitFor(
        'the marker stored',
        async () =>
          (
            await query(
              `SELECT "phases" FROM teleinfo WHERE meter = '${evilMeter(0)}' AND time = ${Date.parse(marker.time)}ms`,
            )
          ).length > 0,
        30_000,
      );
      const writes = (await writeRequests()) - writesBefore;
      const seconds = (Date.now() - start) / 1000;
      console.log(
        `# ${writes} InfluxDB write requests while 3,000 refused and 3,000 invented readings arrived in ${seconds.toFixed(1)} s`,
      );
      assert.ok(writes <= 2 * seconds + 10, `${writes} write requests in ${seconds} s`);

      assert.match(serverLog(), /no room for meter invented-\d+ \(at most 16 meters a Pi/);
      const tagged = async () =>
        (await query('SHOW TAG VALUES FROM teleinfo WITH KEY = "meter"')).flatMap((s) =>
          s.values.map((v) => String(v[1])),
        );
      const all = await tagged();
      assert.equal(all.filter((m) => !meters.includes(m)).length, 16, `pi-evil's meters: ${all.length}`);

      // No retained reading left: a fresh subscriber gets only a live message published after it subscribed.
      await waitFor(
        'every retained reading cleared',
        async () => {
          const ha = await connect('homeassistant', { clientId: clientId('homeassistant') });
          const got: boolean[] = [];
          ha.on('message', (_topic, _p, packet) => got.push(packet.retain));
          await ha.subscribeAsync(`teleinfo/${EVIL}/+/reading`, { qos: 1 });
          await evil.publishAsync(
            `teleinfo/${EVIL}/${evilMeter(0)}/reading`,
            JSON.stringify(evilReading(evilMeter(0), 9)),
            { qos: 1 },
          );
          await waitFor('the live message', () => got.includes(false));
          await ha.endAsync();
          return got.every((retained) => !retained);
        },
        30_000,
      );
    });

    test("Home Assistant: the real Pi's meters point at its own topic and status; pi-evil's labels stay the table's", async () => {
      const ha = await connect('homeassistant');
      type Config = { state_topic?: string; availability?: { topic: string }[]; value_template?: string };
      const configs = new Map<string, Config>();
      ha.on('message', (topic, payload) => {
        if (payload.length > 0) configs.set(topic, JSON.parse(payload.toString()) as Config);
      });
      await ha.subscribeAsync('homeassistant/#', { qos: 1 });
      const objectId = (meter: string) => meter.toLowerCase().replace(/[^a-z0-9]+/g, '_');
      await waitFor(
        'the real meters announced',
        () => meters.every((m) => [...configs.keys()].some((t) => t.includes(objectId(m)))),
        30_000,
      );
      for (const [topic, c] of configs) {
        const meter = meters.find((m) => topic.includes(objectId(m)));
        if (meter && c.state_topic) {
          assert.equal(c.state_topic, `teleinfo/${PI}/${meter}/reading`, topic);
          assert.deepEqual(
            c.availability?.map((a) => a.topic),
            [`teleinfo/${PI}/status`],
            topic,
          );
        }
        assert.doesNotMatch(c.value_template ?? '', /\{%|evil|\n/, topic);
      }
      const evilConfigs = [...configs.keys()].filter((t) => /evil|invented/.test(t));
      assert.ok(evilConfigs.length <= 16 * 15, `${evilConfigs.length} configs for pi-evil's meters`);
    });

    test("an InfluxDB outage: pi-evil's readings fill only its share of the server's spool", async () => {
      const evil = await connect(EVIL);
      await site.influxd.stop();
      const before = new Set(sentKeys(site.piDir).keys());
      // 16 meters × 500 readings of ~300 bytes: 2.4 MB of readings pi-evil may send, for a 1 MB spool.
      for (let m = 0; m < 16; m++)
        await evil.publishAsync(
          `teleinfo/${EVIL}/${evilMeter(m)}/reading`,
          JSON.stringify(
            Array.from({ length: 500 }, (_, i) =>
              evilReading(evilMeter(m), i, Date.now() - 3_600_000 + i * 1000),
            ),
          ),
          { qos: 1 },
        );
      await waitFor(
        'pi-evil refused past its share',
        () => /pi-evil holds its share of the spool/.test(serverLog()),
        30_000,
      );
      await waitFor('the real Pi polling on', () => sentKeys(site.piDir).size >= before.size + 6, 30_000);
      await restartInfluxd(site);
      await storedSince(site, before);
    });

    test('after all of it: every reading of the real Pi stored with its value, the server up and bounded in memory', async () => {
      const rss =
        Number(/VmRSS:\s+(\d+)/.exec(fs.readFileSync(`/proc/${site.servers[0].pid}/status`, 'utf8'))![1]) /
        1024;
      console.log(`# server RSS after the attacks: ${rss.toFixed(0)} MiB`);
      assert.ok(rss < 600, `${rss} MiB`);
      // The refusals, counted where the user sees them: under teleinfo-admit in the editor.
      const status = await editorStatus(site.servers[0].url, 'srv-admit');
      console.log(`# teleinfo-admit's status: ${status.text}`);
      const [, refused] = /(\d+) admitted, (\d+) refused, \d+ Pis/
        .exec(status.text ?? '')!
        .slice(1)
        .map(Number);
      assert.ok(refused >= 3000 + 3000 - 16 + 500, `${refused} refused`);
      assert.deepEqual(await pisOnline(site), { [PI]: true });
      assert.deepEqual(
        await query(`SELECT count("online") FROM teleinfo_pi WHERE "online" = false`),
        [],
        'no Pi ever seen offline: no takeover fired a will, no forged status',
      );
      const r = await settle(site);
      console.log(
        `# real Pi: sent ${r.sent}, stored ${r.stored - r.extra.length}, missing ${r.missing.length}`,
      );
      assert.deepEqual(r.missing, []);
      assert.deepEqual(r.wrong, []);
      assert.ok(
        r.extra.every((k) => /^evil-\d+ |^invented-\d+ /.test(k)),
        "nothing stored beyond pi-evil's own meters",
      );
    });
  },
);
