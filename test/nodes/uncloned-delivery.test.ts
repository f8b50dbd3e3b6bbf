import assert from 'node:assert/strict';
import { afterEach, beforeEach, describe, test } from 'node:test';
import { hooks } from '@node-red/util';
import type { NodeAPI } from 'node-red';
import alert from '../../nodes/teleinfo-alert/teleinfo-alert';
import teleinfoParse from '../../nodes/teleinfo-parse/teleinfo-parse';
import { deliverReadOnlyUncloned } from '../../nodes/node-red';
import { ALERT_NODE } from '../support/alert-node';
import { hcReading } from '../support/readings';
import { helper, nextMessages, startHelper, stopHelper } from '../support/node-red';
import { waitFor } from '../support/services';

const parseTo = (wires: string[]) => ({
  id: 'parse',
  z: 'tab',
  type: 'teleinfo-parse',
  mode: 'auto',
  emit: 'all',
  wires: [wires],
});
const alertNode = (id: string) => ({ ...ALERT_NODE, id, silence: false, wires: [[]] });

type Delivery = { to: string; msg: { payload: { time: string } } };

/**
 * The test helper's runtime routes messages with Node-RED's own router but gives nodes no `RED.hooks`, so the hook
 * is installed here as a full runtime installs it when it loads teleinfo-parse, on Node-RED's hooks and the
 * helper's nodes. A probe on `preDeliver` (after any clone) records what each receiver is given.
 */
describe('uncloned delivery between our read-only nodes (Node-RED router through node-red-node-test-helper)', () => {
  let deliveries: Delivery[] = [];
  beforeEach(async () => {
    await startHelper();
    deliverReadOnlyUncloned({
      hooks,
      nodes: { getNode: (id: string) => helper.getNode(id) },
    } as unknown as NodeAPI);
    deliveries = [];
    hooks.add('preDeliver.uncloned-probe', (event: { destination: { id: string }; msg: Delivery['msg'] }) => {
      deliveries.push({ to: event.destination.id, msg: event.msg });
    });
  });
  afterEach(async () => {
    hooks.remove('*.uncloned-probe');
    hooks.remove('*.teleinfo-uncloned');
    await stopHelper();
  });

  const readings = [0, 1, 2].map((i) =>
    hcReading('021861348497', Date.parse('2026-03-01T08:00:00Z') + i * 10_000, i),
  );

  test('teleinfo-parse to two teleinfo-alert nodes: each reading is one object, given to both', async () => {
    const flow = [{ id: 'tab', type: 'tab' }, parseTo(['a', 'b']), alertNode('a'), alertNode('b')];
    await helper.load([teleinfoParse, alert] as never, flow);
    helper.getNode('parse').receive({ payload: readings });
    await waitFor('6 deliveries', () => deliveries.length === 6, 10_000);
    for (const r of readings) {
      const given = deliveries.filter((d) => d.msg.payload.time === r.time);
      assert.deepEqual(given.map((d) => d.to).sort(), ['a', 'b']);
      assert.equal(given[0].msg, given[1].msg, `reading ${r.time}: the same message object for a and b`);
    }
  });

  test('another node on the wires (a helper node here) keeps Node-RED cloning: its changes stay its own', async () => {
    const flow = [
      { id: 'tab', type: 'tab' },
      parseTo(['a', 'other']),
      alertNode('a'),
      { id: 'other', z: 'tab', type: 'helper' },
    ];
    await helper.load([teleinfoParse, alert] as never, flow);
    const other = nextMessages<Delivery['msg']>(helper.getNode('other'), 3);
    helper.getNode('parse').receive({ payload: readings });
    for (const msg of await other) msg.payload.time = 'changed by another node';
    await waitFor('6 deliveries', () => deliveries.length === 6, 10_000);
    const toAlert = deliveries.filter((d) => d.to === 'a').map((d) => d.msg);
    const toOther = deliveries.filter((d) => d.to === 'other').map((d) => d.msg);
    assert.equal(toAlert.length, 3);
    assert.ok(
      toAlert.every((m) => !toOther.includes(m)),
      'each receiver has its own copy',
    );
    assert.deepEqual(
      toAlert.map((m) => m.payload.time),
      readings.map((r) => r.time),
    );
  });

  test('a disabled node on the wires keeps Node-RED cloning: enabling it later does not redeploy the sender', async () => {
    const cloned: boolean[] = [];
    hooks.add('onSend.uncloned-probe', (events: { cloneMessage: boolean }[]) => {
      cloned.push(...events.map((e) => e.cloneMessage));
    });
    const flow = [
      { id: 'tab', type: 'tab' },
      parseTo(['a', 'off']),
      alertNode('a'),
      { id: 'off', z: 'tab', type: 'helper', d: true },
    ];
    await helper.load([teleinfoParse, alert] as never, flow);
    helper.getNode('parse').receive({ payload: readings });
    await waitFor('3 deliveries', () => deliveries.length === 3, 10_000);
    assert.equal(helper.getNode('off'), null, 'the disabled node is not running');
    // Node-RED's own rule: every event of the send but the first is cloned.
    assert.deepEqual(cloned, [false, true, true, true, true, true]);
  });
});
