import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { ROOT } from '../support/fixtures';
import { startNodeRed, type NodeRedProcess } from '../support/node-red-process';
import mqtt from 'mqtt';
import { serviceSkip, tempDir, waitFor } from '../support/services';
import { clientId, startShippedBroker } from '../support/shipped-broker';
import { containersSkip } from '../support/container';
import { makeCertificates } from '../support/tls';

const examples = fs.readdirSync(path.join(ROOT, 'examples')).filter((f) => f.endsWith('.json'));

describe('shipped flows and examples load in a real Node-RED', () => {
  let nr: NodeRedProcess;
  before(async () => {
    nr = await startNodeRed();
  });
  after(() => nr.stop());

  for (const file of [...examples.map((f) => `examples/${f}`), 'flows/pi.json', 'flows/server.json']) {
    test(`${file}: every node type is known, and it says what to set`, async () => {
      const flows = JSON.parse(fs.readFileSync(path.join(ROOT, file), 'utf8')) as {
        type: string;
        z?: string;
      }[];
      assert.ok(
        flows.some((n) => n.type === 'comment'),
        'a Comment node says what to set',
      );
      const before = nr.log().length;
      await nr.deploy(flows);
      const log = nr.log().slice(before);
      assert.doesNotMatch(log, /Waiting for missing types|unknown type/i);
    });
  }

  test('the seven examples the palette menu lists', () => {
    assert.deepEqual(examples.sort(), [
      'Alerts.json',
      'Eco-Devices to InfluxDB (single instance).json',
      'Home Assistant discovery.json',
      'Linky serial TIC to MQTT.json',
      'Live dashboard.json',
      'Raspberry Pi publisher.json',
      'Server ingest.json',
    ]);
  });

  test('no secret in a shipped flow: credentials come from the environment or the editor', () => {
    for (const file of [...examples.map((f) => `examples/${f}`), 'flows/pi.json', 'flows/server.json']) {
      const text = fs.readFileSync(path.join(ROOT, file), 'utf8');
      assert.doesNotMatch(text, /"(credentials|password|token)"\s*:/i, file);
    }
  });
});

interface FlowNode {
  id: string;
  type: string;
  z?: string;
  env?: { name: string; type: string; value: string }[];
}

/** A node on tab `z` that warns, once deployed, the variables it sees: `probe {"PI_ID": …}` in the log. */
const probe = (z: string, names: string[]) => [
  { id: `probe-${z}`, z, type: 'inject', once: true, onceDelay: 0.1, wires: [[`probe-fn-${z}`]] },
  {
    id: `probe-fn-${z}`,
    z,
    type: 'function',
    func: `node.warn('probe ' + JSON.stringify(Object.fromEntries(${JSON.stringify(names)}.map((n) => [n, env.get(n)]))));`,
    wires: [],
  },
];

describe('the shipped flows declare the variables they read, with the demo defaults, in the editor', () => {
  let nr: NodeRedProcess;
  const flows = (file: string) => JSON.parse(fs.readFileSync(path.join(ROOT, file), 'utf8')) as FlowNode[];
  /** The variables the probe last warned. */
  const seen = async (deployed: () => Promise<void>) => {
    const from = nr.log().length;
    await deployed();
    await waitFor('the probe', () => nr.log().slice(from).includes('probe {'), 20_000);
    const line = nr
      .log()
      .slice(from)
      .split('\n')
      .find((l) => l.includes('probe {'))!;
    return JSON.parse(line.slice(line.indexOf('probe {') + 6)) as Record<string, string>;
  };
  // Set but empty is unset for the defaults; these would otherwise come from the test's own environment.
  const unset = Object.fromEntries(
    ['MQTT_URL', 'MQTT_CA_FILE', 'MQTT_CLIENT_ID', 'ECODEVICES_HOST', 'ECODEVICES_PORT', 'POLL_SECONDS'].map(
      (k) => [k, ''],
    ),
  );
  before(async () => {
    nr = await startNodeRed({
      env: { ...unset, PI_ID: 'pi-kitchen', INFLUX_URL: 'http://db.example:8086', INFLUX_DB: '' },
    });
  });
  after(() => nr.stop());

  test('Pi: global (User settings → Environment) and tab variables; the process environment wins over a default', async () => {
    const pi = flows('flows/pi.json');
    const global = pi.find((n) => n.type === 'global-config')!;
    assert.deepEqual(
      global.env!.map((e) => e.name),
      [
        'PI_ID',
        'MQTT_URL',
        'MQTT_CA_FILE',
        'MQTT_CLIENT_ID',
        'PI_STATUS_TOPIC',
        'PI_ACK_TOPIC',
        'ECODEVICES_HOST',
        'ECODEVICES_PORT',
        'TIC_PORT',
      ],
    );
    const names = [...global.env!.map((e) => e.name), 'POLL_SECONDS'];
    const got = await seen(() => nr.deploy([...pi, ...probe('pi-tab', names)]));
    assert.deepEqual(got, {
      PI_ID: 'pi-kitchen',
      MQTT_URL: 'mqtt://127.0.0.1:1883',
      MQTT_CA_FILE: '',
      MQTT_CLIENT_ID: 'teleinfo-pi-kitchen',
      PI_STATUS_TOPIC: 'teleinfo/pi-kitchen/status',
      PI_ACK_TOPIC: 'teleinfo/pi-kitchen/ack',
      ECODEVICES_HOST: '127.0.0.1',
      ECODEVICES_PORT: '80',
      TIC_PORT: '/dev/ttyUSB0',
      POLL_SECONDS: '10',
    });

    // A default edited in the editor (global and tab), deployed as "modified flows": it applies at once.
    const edited = pi.map((n) =>
      n.type === 'global-config' || n.id === 'pi-tab'
        ? {
            ...n,
            env: n.env!.map((e) => ({
              ...e,
              value: e.value.replace('"127.0.0.1"', '"box.lan"').replace('"10"', '"30"'),
            })),
          }
        : n,
    );
    const after = await seen(() => nr.deploy([...edited, ...probe('pi-tab', names)], 'flows'));
    assert.equal(after.ECODEVICES_HOST, 'box.lan');
    assert.equal(after.POLL_SECONDS, '30');
    assert.equal(after.PI_ID, 'pi-kitchen', 'the environment still wins');
  });

  test('server: the demo defaults, INFLUX_URL from the environment', async () => {
    const got = await seen(() =>
      nr.deploy([
        ...flows('flows/server.json'),
        ...probe('srv-tab', ['MQTT_URL', 'MQTT_CLIENT_ID', 'MQTT_READINGS_TOPIC', 'INFLUX_URL', 'INFLUX_DB']),
      ]),
    );
    assert.deepEqual(got, {
      MQTT_URL: 'mqtt://127.0.0.1:1883',
      MQTT_CLIENT_ID: 'teleinfo-server-1',
      MQTT_READINGS_TOPIC: '$share/teleinfo-ingest/teleinfo/+/+/reading',
      INFLUX_URL: 'http://db.example:8086',
      INFLUX_DB: 'teleinfo',
    });
  });
});

const ACCOUNTS = {
  servers: { 'server-1': 'server-pass' },
  pis: { 'pi-a': 'pi-a-pass', 'pi-b': 'pi-b-pass' },
  ha: { homeassistant: 'ha-pass' },
};

test(
  'docker/mosquitto as its container runs it: TLS only, one account each bound to its client id, and every account kept to its own topics, in what it publishes and what it subscribes to',
  { skip: serviceSkip('mosquitto') || serviceSkip('openssl') || containersSkip() },
  async () => {
    const dir = tempDir('compose-mosquitto');
    const certs = makeCertificates(path.join(dir, 'certs'));
    const broker = await startShippedBroker(dir, path.join(dir, 'certs'), ACCOUNTS);
    const tls = { ca: fs.readFileSync(certs.ca), protocolVersion: 5 as const, reconnectPeriod: 0 };
    const passwordOf = (username: string) =>
      ({ ...ACCOUNTS.pis, ...ACCOUNTS.ha, ...ACCOUNTS.servers })[username] ?? 'unknown';
    const as = (username: string, extra: mqtt.IClientOptions = {}) =>
      mqtt.connectAsync(broker.url, {
        ...tls,
        username,
        password: passwordOf(username),
        clientId: clientId(username),
        ...extra,
      });
    const clients: mqtt.MqttClient[] = [];
    try {
      // Who gets in.
      await assert.rejects(mqtt.connectAsync(broker.url, tls), /not authori[sz]ed/i, 'anonymous');
      await assert.rejects(
        as('pi-a', { password: 'wrong' }),
        /not authori[sz]ed|bad user/i,
        'a wrong password',
      );
      await assert.rejects(
        as('pi-a', { clientId: clientId('server-1') }),
        /not authori[sz]ed|bad user/i,
        "a Pi's own password with the server's client id: no session takeover",
      );
      await assert.rejects(
        as('pi-a', { ca: fs.readFileSync(certs.otherCa) }),
        /self[- ]signed|unable to verify|certificate/i,
        'a client that does not trust the CA',
      );
      await assert.rejects(
        mqtt.connectAsync(`mqtt://127.0.0.1:${broker.port}`, {
          username: 'pi-a',
          password: 'pi-a-pass',
          protocolVersion: 5,
          reconnectPeriod: 0,
          connectTimeout: 3000,
        }),
        'plain TCP to the TLS port',
      );

      // What each account may do. A refused message is followed by an allowed one from the same client: mosquitto
      // delivers a client's QoS 1 messages in order, so the allowed one arriving first means the other never will.
      const srv = await as('server-1');
      const piA = await as('pi-a');
      const piB = await as('pi-b');
      clients.push(srv, piA, piB);
      const got = (client: mqtt.MqttClient) => {
        const topics: string[] = [];
        client.on('message', (topic, payload) => topics.push(`${topic} ${payload.toString()}`));
        return topics;
      };
      const atServer = got(srv);
      const atA = got(piA);
      const atB = got(piB);
      await srv.subscribeAsync(['$share/teleinfo-ingest/teleinfo/+/+/reading', 'teleinfo/+/status'], {
        qos: 1,
      });
      // The broker refuses the subscriptions themselves (MQTT 5: not authorised in the SUBACK).
      for (const topic of [
        'teleinfo/+/+/reading',
        '$share/teleinfo-ingest/teleinfo/+/+/reading',
        '$share/steal/teleinfo/+/+/reading',
        'teleinfo/+/status',
        '#',
      ])
        await assert.rejects(
          piA.subscribeAsync(topic, { qos: 1 }),
          /not authori[sz]ed/i,
          `a Pi subscribing to ${topic}`,
        );
      await piA.subscribeAsync('teleinfo/replay', { qos: 1 });
      await piB.subscribeAsync('teleinfo/replay', { qos: 1 });
      // MQTT 5: the broker says so in its PUBACK.
      await assert.rejects(
        piA.publishAsync('teleinfo/pi-b/021861348497/reading', 'forged', { qos: 1 }),
        /not authori[sz]ed/i,
      );
      await assert.rejects(
        piA.publishAsync('teleinfo/replay', 'forged replay', { qos: 1 }),
        /not authori[sz]ed/i,
      );
      await piA.publishAsync('teleinfo/pi-a/021861348497/reading', 'own', { qos: 1 });
      await piA.publishAsync('teleinfo/pi-a/status', 'online', { qos: 1 });
      await waitFor("the server getting pi-a's own reading and status", () => atServer.length >= 2);
      assert.deepEqual(atServer, ['teleinfo/pi-a/021861348497/reading own', 'teleinfo/pi-a/status online']);
      await srv.publishAsync('teleinfo/replay', 'replay', { qos: 1 });
      await waitFor("pi-b getting the server's replay request", () => atB.length >= 1);
      assert.deepEqual(atB, ['teleinfo/replay replay'], 'a Pi cannot publish a replay request');
      await piB.publishAsync('teleinfo/pi-b/m2/reading', 'b', { qos: 1 });
      await piB.publishAsync('teleinfo/pi-b/status', 'online', { qos: 1 });
      await waitFor("the server getting pi-b's reading", () => atServer.length >= 4);
      await waitFor('pi-a getting the replay request', () => atA.length >= 1);
      assert.deepEqual(atA, ['teleinfo/replay replay'], 'a Pi reads no reading and no status');

      // Acknowledgements: a server writes them; each Pi reads its own, and neither writes nor reads another's.
      for (const topic of ['teleinfo/pi-b/ack', 'teleinfo/+/ack'])
        await assert.rejects(
          piA.subscribeAsync(topic, { qos: 1 }),
          /not authori[sz]ed/i,
          `pi-a subscribing to ${topic}`,
        );
      await piA.subscribeAsync('teleinfo/pi-a/ack', { qos: 1 });
      for (const [client, name] of [
        [piA, 'pi-a'],
        [piB, 'pi-b'],
      ] as const)
        await assert.rejects(
          client.publishAsync('teleinfo/pi-a/ack', '{"acks":[]}', { qos: 1 }),
          /not authori[sz]ed/i,
          `${name} forging an acknowledgement`,
        );
      await srv.publishAsync('teleinfo/pi-a/ack', 'stored', { qos: 1 });
      await srv.publishAsync('teleinfo/replay', 'after the ack', { qos: 1 });
      await waitFor('pi-a getting its acknowledgement', () => atA.length >= 3);
      assert.deepEqual(atA.slice(1), ['teleinfo/pi-a/ack stored', 'teleinfo/replay after the ack']);
      await waitFor('pi-b getting the second replay request', () => atB.length >= 2);
      assert.deepEqual(
        atB,
        ['teleinfo/replay replay', 'teleinfo/replay after the ack'],
        "pi-b never gets pi-a's",
      );

      // Health: each Pi publishes its own, retained; the server reads every Pi's; a Pi reads none.
      await assert.rejects(
        piA.publishAsync('teleinfo/pi-b/health', '{}', { qos: 1, retain: true }),
        /not authori[sz]ed/i,
        'pi-a forging the health of pi-b',
      );
      await assert.rejects(piA.subscribeAsync('teleinfo/+/health', { qos: 1 }), /not authori[sz]ed/i);
      await piA.publishAsync('teleinfo/pi-a/health', 'healthy', { qos: 1, retain: true });
      const health: string[] = [];
      srv.on('message', (topic, payload) => {
        if (topic.endsWith('/health')) health.push(`${topic} ${payload.toString()}`);
      });
      await srv.subscribeAsync('teleinfo/+/health', { qos: 1 });
      await waitFor("the server getting pi-a's retained health", () => health.length >= 1);
      assert.deepEqual(health, ['teleinfo/pi-a/health healthy']);

      // Home Assistant reads readings, status and the discovery configs the server writes; it writes only its status,
      // and cannot join the servers' shared subscription.
      const ha = await as('homeassistant');
      clients.push(ha);
      const atHa = got(ha);
      await assert.rejects(
        ha.subscribeAsync('$share/teleinfo-ingest/teleinfo/+/+/reading', { qos: 1 }),
        /not authori[sz]ed/i,
        "Home Assistant joining the servers' group",
      );
      await ha.subscribeAsync(['teleinfo/+/+/reading', 'teleinfo/+/status', 'homeassistant/#'], { qos: 1 });
      const atSrvHa = got(srv);
      await srv.subscribeAsync('homeassistant/status', { qos: 1 });
      await assert.rejects(
        ha.publishAsync('teleinfo/pi-a/021861348497/reading', 'forged by HA', { qos: 1 }),
        /not authori[sz]ed/i,
      );
      await assert.rejects(
        ha.publishAsync('teleinfo/pi-a/status', 'offline', { qos: 1 }),
        /not authori[sz]ed/i,
        'Home Assistant publishing a Pi status',
      );
      await ha.publishAsync('homeassistant/status', 'online', { qos: 1 });
      await srv.publishAsync('homeassistant/sensor/teleinfo_m/papp/config', '{}', { qos: 1, retain: true });
      await piA.publishAsync('teleinfo/pi-a/021861348497/reading', 'for HA', { qos: 1 });
      await waitFor('Home Assistant getting the config and the reading', () => atHa.length >= 3);
      assert.deepEqual(atHa.sort(), [
        'homeassistant/sensor/teleinfo_m/papp/config {}',
        'homeassistant/status online',
        'teleinfo/pi-a/021861348497/reading for HA',
      ]);
      await waitFor("the server getting Home Assistant's status", () =>
        atSrvHa.includes('homeassistant/status online'),
      );
      await assert.rejects(
        piA.publishAsync('homeassistant/sensor/forged/config', '{}', { qos: 1 }),
        /not authori[sz]ed/i,
        'a Pi writes no discovery config',
      );
      await ha.endAsync();
      clients.pop();
    } finally {
      for (const c of clients) await c.endAsync(true);
      await broker.stop();
      fs.rmSync(dir, { recursive: true, force: true });
    }
  },
);

test('docker/mosquitto/init.sh refuses an account without a password, with a name that is not an id, or a name used twice', () => {
  for (const [servers, pis, why] of [
    ['server-1', 'pi-1:p', /has no password/],
    ['bad/name:pass', 'pi-1:p', /must be letters, digits/],
    ['server-1:pass', 'server-1:p', /used twice/],
    ['server-1:pass', 'pi-1:p healthcheck:x', /used twice/],
  ] as const) {
    const r = spawnSync('sh', [path.join(ROOT, 'docker', 'mosquitto', 'init.sh')], {
      env: { ...process.env, MQTT_SERVER_ACCOUNTS: servers, MQTT_PI_ACCOUNTS: pis },
      encoding: 'utf8',
    });
    assert.notEqual(r.status, 0);
    assert.match(r.stderr, why);
  }
});
