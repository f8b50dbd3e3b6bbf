import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import mqtt from 'mqtt';
import { labelSpec } from '../../nodes/lib/tic/labels';
import { ROOT } from '../support/fixtures';
import { render, sampleReadings, schemaProblems, type HaConfig } from '../support/home-assistant';
import { startInstance, type NodeRedProcess } from '../support/node-red-process';
import {
  createStackDatabase,
  serviceSkip,
  startInfluxd,
  startMosquitto,
  tempDir,
  waitFor,
  type Influxd,
  type Mosquitto,
} from '../support/services';

/**
 * Home Assistant MQTT discovery through the shipped server flow, against the real mosquitto: a test client plays
 * a Pi (readings on teleinfo/pi-ha/<meter>/reading, online/offline on its retained status with a will) and another
 * plays Home Assistant. It reads the retained configs, checks them against Home Assistant's documented schema,
 * renders every value_template on the readings with nunjucks (a Jinja-compatible engine), announces itself
 * online and gets every config again, finds them again after the broker lost them, and sees the entities go
 * unavailable when the Pi's link is cut.
 */

const skip = serviceSkip('mosquitto') || serviceSkip('influxd');

describe('Home Assistant discovery through the shipped server flow', { skip }, () => {
  let mosquitto: Mosquitto;
  let influxd: Influxd;
  let server: NodeRedProcess;
  let pi: mqtt.MqttClient;
  let ha: mqtt.MqttClient;
  const serverDir = tempDir('ha-server');
  const mosquittoDir = tempDir('ha-mosquitto');
  // Stamped now: the server admits readings within a window of its clock.
  const readings = sampleReadings().map((r, i) => ({
    ...r,
    time: new Date(Date.now() - 60_000 + i).toISOString(),
  }));
  const configs = new Map<string, HaConfig>();
  /** Every config message received, retained or live, in order. */
  const arrivals: string[] = [];
  const lastOn = new Map<string, string>();

  const connectHa = async () => {
    ha = await mqtt.connectAsync(mosquitto.url, { protocolVersion: 5, clientId: 'home-assistant' });
    ha.on('message', (topic, payload) => {
      if (topic.startsWith('homeassistant/') && topic.endsWith('/config')) {
        arrivals.push(topic);
        if (payload.length > 0) configs.set(topic, JSON.parse(payload.toString()) as HaConfig);
      } else lastOn.set(topic, payload.toString());
    });
    await ha.subscribeAsync(['homeassistant/#', 'teleinfo/+/status', 'teleinfo/+/+/reading'], { qos: 1 });
  };
  /** One entity per label, an overrun and a tariff period per meter, two Tempo colours per Tempo meter. */
  const expectedConfigs = () =>
    readings.reduce((n, r) => n + Object.keys(r.values).length, 0) +
    readings.length * 2 +
    readings.filter((r) => r.tariffOption === 'TEMPO').length * 2;
  /** The configs of the meters' own entities; alert states the server's teleinfo-alert raised come on top. */
  const meterConfigs = () => [...configs.entries()].filter(([, c]) => !c.unique_id.includes('_alert_'));

  before(async () => {
    mosquitto = await startMosquitto({ dir: mosquittoDir });
    influxd = await startInfluxd();
    await createStackDatabase(influxd, 'teleinfo_ha');
    // The shipped server flow, with its discovery node enabled as a Home Assistant user does.
    const flows = JSON.parse(fs.readFileSync(path.join(ROOT, 'flows', 'server.json'), 'utf8')) as {
      id: string;
      d?: boolean;
    }[];
    delete flows.find((n) => n.id === 'srv-ha')!.d;
    server = await startInstance('server', {
      dir: serverDir,
      flows,
      env: {
        MQTT_URL: mosquitto.url,
        MQTT_CLIENT_ID: 'teleinfo-ha-server',
        MQTT_READINGS_TOPIC: 'teleinfo/+/+/reading',
        INFLUX_URL: influxd.url,
        INFLUX_DB: 'teleinfo_ha',
      },
    });
    await waitFor('the server connected', () => server.log().includes('Connected to broker'));
    await connectHa();
    pi = await mqtt.connectAsync(mosquitto.url, {
      protocolVersion: 5,
      clientId: 'teleinfo-pi-ha',
      will: { topic: 'teleinfo/pi-ha/status', payload: Buffer.from('offline'), qos: 1, retain: true },
    });
    await pi.publishAsync('teleinfo/pi-ha/status', 'online', { qos: 1, retain: true });
    for (const r of readings)
      await pi.publishAsync(`teleinfo/pi-ha/${r.meter}/reading`, JSON.stringify(r), { qos: 1 });
  });

  after(async () => {
    await ha?.endAsync(true);
    await pi?.endAsync(true);
    await server?.stop();
    await influxd?.stop();
    await mosquitto?.stop();
    fs.rmSync(serverDir, { recursive: true, force: true });
    fs.rmSync(mosquittoDir, { recursive: true, force: true });
  });

  test('every label of every meter announced, each config valid for Home Assistant, unique ids unique', async () => {
    await waitFor('every config', () => meterConfigs().length >= expectedConfigs(), 30_000);
    assert.equal(meterConfigs().length, expectedConfigs());
    const ids = [...configs.values()].map((c) => c.unique_id);
    assert.equal(new Set(ids).size, ids.length, 'unique ids are unique');
    for (const [topic, c] of configs) assert.deepEqual(schemaProblems(topic, c), [], topic);
    for (const r of readings) {
      for (const label of Object.keys(r.values)) {
        const id = `teleinfo_${r.meter.toLowerCase()}_${label.toLowerCase().replace(/[^a-z0-9]+/g, '_')}`;
        const c = [...configs.values()].find((x) => x.unique_id === id);
        assert.ok(c, `${r.meter} ${label} announced`);
        assert.equal(c.state_topic, `teleinfo/pi-ha/${r.meter}/reading`);
        assert.deepEqual(c.availability, [
          { topic: 'teleinfo/pi-ha/status', payload_available: 'online', payload_not_available: 'offline' },
        ]);
        assert.deepEqual(c.device?.identifiers, [r.meter]);
        assert.equal(c.device?.manufacturer, 'Enedis');
        const unit = labelSpec(r.source === 'tic-standard' ? 'standard' : 'historic', label).unit;
        if (unit === 'Wh') {
          assert.equal(c.device_class, 'energy', `${label}: usable in the Energy dashboard`);
          assert.equal(c.state_class, 'total_increasing');
          assert.equal(c.unit_of_measurement, 'Wh');
        }
        if (label === 'PREF') assert.equal(c.unit_of_measurement, 'VA');
      }
    }
    console.log(
      `# ${configs.size} discovery configs for ${readings.length} meters (${configs.size - meterConfigs().length} alert states), all valid`,
    );
  });

  test('every value_template, rendered on the readings, gives the readings own numbers', () => {
    let rendered = 0;
    for (const [topic, c] of configs) {
      if (c.unique_id.includes('_alert_')) {
        assert.equal(render(c.value_template!, { state: 'raised' }), 'ON');
        assert.equal(render(c.value_template!, { state: 'cleared' }), 'OFF');
        rendered++;
        continue;
      }
      const r = readings.find((x) => c.state_topic === `teleinfo/pi-ha/${x.meter}/reading`)!;
      assert.ok(r, topic);
      const out = render(c.value_template ?? '{{ value }}', r);
      rendered++;
      const label = Object.keys(r.values).find(
        (l) =>
          c.unique_id === `teleinfo_${r.meter.toLowerCase()}_${l.toLowerCase().replace(/[^a-z0-9]+/g, '_')}`,
      );
      if (topic.includes('/binary_sensor/')) {
        assert.equal(out, r.overrun ? 'ON' : 'OFF', topic);
      } else if (c.device_class === 'enum' || c.unique_id.endsWith('_tariff_period')) {
        // 'None' is Home Assistant's unknown: a meter that sends no tariff period (BASE, producers) has none.
        const expected = c.unique_id.endsWith('_tariff_period') ? (r.tariffPeriod ?? 'None') : out;
        assert.equal(out, expected, topic);
        if (c.options)
          assert.ok(out === 'None' || c.options.includes(out), `${topic}: ${out} in ${c.options.join(',')}`);
      } else if (c.device_class === 'timestamp') {
        assert.equal(out, r.time);
      } else if (label && typeof r.values[label] === 'number') {
        const scale = label === 'PREF' || label === 'PCOUP' ? 1000 : 1;
        assert.equal(Number(out), r.values[label] * scale, topic);
      } else if (label) {
        assert.equal(out, String(r.values[label]).trim(), topic);
      }
    }
    assert.equal(rendered, configs.size);
    const tempo = readings.find((r) => r.meter === '021861348497')!;
    const today = [...configs.values()].find((c) => c.unique_id === 'teleinfo_021861348497_tempo_today')!;
    assert.equal(render(today.value_template!, tempo), 'BLEU', 'PTEC HPJB: a blue day');
    const overrun = readings.find((r) => r.meter === '030222778385')!;
    const adps = [...configs.values()].find((c) => c.unique_id === 'teleinfo_030222778385_overrun')!;
    assert.equal(render(adps.value_template!, overrun), 'ON');
  });

  test('Home Assistant says it is online: every config is sent again', async () => {
    const from = arrivals.length;
    await ha.publishAsync('homeassistant/status', 'online', { qos: 1 });
    await waitFor('every config again', () => new Set(arrivals.slice(from)).size >= configs.size, 30_000);
    assert.deepEqual(new Set(arrivals.slice(from)), new Set(configs.keys()));
  });

  test('the broker restarts without its retained messages: the server announces everything again', async () => {
    await ha.endAsync(true);
    await mosquitto.stop();
    fs.rmSync(path.join(mosquittoDir, 'mosquitto.db'), { force: true });
    mosquitto = await startMosquitto({ dir: mosquittoDir, port: mosquitto.port });
    const before = new Set(configs.keys());
    configs.clear();
    await waitFor(
      'the server reconnected',
      () => server.log().split('Connected to broker').length > 2,
      30_000,
    );
    await connectHa();
    await waitFor('the retained configs are back', () => configs.size >= before.size, 30_000);
    assert.deepEqual(new Set(configs.keys()), before);
  });

  test('the Pi link is cut: its will says offline, which every entity takes as unavailable', async () => {
    await pi.endAsync(true);
    pi = await mqtt.connectAsync(mosquitto.url, {
      protocolVersion: 5,
      clientId: 'teleinfo-pi-ha',
      will: { topic: 'teleinfo/pi-ha/status', payload: Buffer.from('offline'), qos: 1, retain: true },
    });
    await pi.publishAsync('teleinfo/pi-ha/status', 'online', { qos: 1, retain: true });
    await waitFor('the Pi online', () => lastOn.get('teleinfo/pi-ha/status') === 'online');
    pi.stream.destroy(); // the link cut, no DISCONNECT: the broker publishes the will
    await waitFor('the Pi offline', () => lastOn.get('teleinfo/pi-ha/status') === 'offline', 30_000);
    const withAvailability = [...configs.values()].filter((c) => c.availability);
    assert.ok(withAvailability.length > 0);
    for (const c of withAvailability) {
      const a = c.availability![0];
      assert.equal(lastOn.get(a.topic), a.payload_not_available, `${c.unique_id} unavailable`);
    }
  });
});
