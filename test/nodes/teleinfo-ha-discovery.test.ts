import assert from 'node:assert/strict';
import { afterEach, beforeEach, describe, test } from 'node:test';
import haDiscovery from '../../nodes/teleinfo-ha-discovery/teleinfo-ha-discovery';
import { sampleReadings } from '../support/home-assistant';
import { coreNodes, helper, nextMessages, startHelper, stopHelper } from '../support/node-red';

interface Out {
  topic: string;
  payload: string;
  retain: boolean;
  qos: number;
}
interface Caught {
  error: { message: string };
}

async function load() {
  await helper.load(
    [haDiscovery, coreNodes.catch] as never,
    [
      { id: 'tab', type: 'tab' },
      { id: 'ha', z: 'tab', type: 'teleinfo-ha-discovery', wires: [['out']] },
      { id: 'out', z: 'tab', type: 'helper' },
      { id: 'catcher', z: 'tab', type: 'catch', scope: null, wires: [['caught']] },
      { id: 'caught', z: 'tab', type: 'helper' },
    ] as never,
  );
  return { ha: helper.getNode('ha'), out: helper.getNode('out'), caught: helper.getNode('caught') };
}

describe('teleinfo-ha-discovery node (Node-RED runtime through node-red-node-test-helper)', () => {
  beforeEach(startHelper);
  afterEach(stopHelper);
  const reading = sampleReadings()[0]; // historic Tempo 021861348497, 16 labels
  const topic = `teleinfo/pi-1/${reading.meter}/reading`;

  test('a new meter is announced once, retained; an alert state adds a binary sensor; a clear removes them all', async () => {
    const { ha, out } = await load();
    const first = nextMessages<Out>(out, 20);
    ha.receive({ topic, payload: JSON.stringify(reading) });
    const configs = await first;
    assert.ok(configs.every((m) => m.retain === true && m.qos === 1));
    assert.ok(
      configs.every(
        (m) => m.topic.startsWith(`homeassistant/`) && m.topic.includes('/teleinfo_021861348497/'),
      ),
    );

    // Seen again: nothing new to say. Then an alert state of teleinfo-alert.
    const next = nextMessages<Out>(out, 1);
    ha.receive({ topic, payload: reading });
    ha.receive({
      topic: `teleinfo/${reading.meter}/alert/overrun`,
      payload: { rule: 'overrun', state: 'raised', meter: reading.meter },
    });
    const [alert] = await next;
    assert.equal(alert?.topic, 'homeassistant/binary_sensor/teleinfo_021861348497/alert_overrun/config');
    const config = JSON.parse(alert.payload) as { state_topic: string; device: { identifiers: string[] } };
    assert.equal(config.state_topic, 'teleinfo/021861348497/alert/overrun');
    assert.deepEqual(config.device.identifiers, ['021861348497']);

    const cleared = nextMessages<Out>(out, 21);
    ha.receive({ clear: reading.meter });
    const removed = await cleared;
    assert.ok(removed.every((m) => m.payload === ''));
    assert.deepEqual(new Set(removed.map((m) => m.topic)), new Set([...configs, alert].map((m) => m.topic)));
  });

  test('after a broker reconnection (Status node red then green) every config again; bad input goes to Catch', async () => {
    const { ha, out, caught } = await load();
    const first = nextMessages<Out>(out, 20);
    ha.receive({ topic, payload: reading });
    await first;
    const again = nextMessages<Out>(out, 20);
    ha.receive({ status: { fill: 'red', text: 'node-red:common.status.disconnected' } });
    ha.receive({ status: { fill: 'green', text: 'node-red:common.status.connected' } });
    assert.equal((await again).length, 20);

    const errors = nextMessages<Caught>(caught, 3);
    ha.receive({ topic, payload: { hello: 'world' } });
    ha.receive({ payload: reading });
    ha.receive({ clear: '999999999999' });
    const [bad, noTopic, unknown] = await errors;
    assert.match(bad.error.message, /expects readings.*an object with keys \{hello\}/);
    assert.match(noTopic.error.message, /without msg.topic/);
    assert.match(unknown.error.message, /no entities announced for meter 999999999999/);
  });
});
