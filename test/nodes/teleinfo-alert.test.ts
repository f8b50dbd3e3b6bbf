import assert from 'node:assert/strict';
import { afterEach, beforeEach, describe, test } from 'node:test';
import alert from '../../nodes/teleinfo-alert/teleinfo-alert';
import { readingFromTicFrame, TicStreamDecoder, type Reading } from '../../nodes/lib';
import type { AlertSnapshot } from '../../nodes/lib/alerts';
import { SimulatedMeter } from '../../nodes/lib/simulator/meter';
import { encodeTicFrame } from '../../nodes/lib/tic/encoder';
import { captures } from '../support/fixtures';
import { ALERT_NODE } from '../support/alert-node';
import { coreNodes, emitter, helper, startHelper, stopHelper } from '../support/node-red';
import { tempDir, waitFor } from '../support/services';

type AlertMsg = {
  topic: string;
  payload: { rule: string; state: string; meter: string; text: string; kind: string };
};

const flow = (alertNode: Record<string, unknown> = {}) => [
  { id: 'tab', type: 'tab' },
  { ...ALERT_NODE, ...alertNode },
  { id: 'out', z: 'tab', type: 'helper' },
  { id: 'alert-errors', z: 'tab', type: 'catch', scope: ['alert'], wires: [['caught']] },
  { id: 'caught', z: 'tab', type: 'helper' },
];

/** Readings of a simulated HC meter every 10 s of its own time, with power `va(i)`. */
function simulated(
  n: number,
  va: (i: number) => number,
  from = Date.parse('2026-03-01T08:00:00Z'),
): Reading[] {
  const meter = new SimulatedMeter({
    adco: '021861348497',
    contract: 'HC',
    phases: 1,
    isousc: 45,
    seed: 3,
    origin: from,
  });
  const decoder = new TicStreamDecoder({ mode: 'historic' });
  const out: Reading[] = [];
  for (let i = 0; i < n; i++) {
    const t = from + i * 10_000;
    for (const f of decoder.push(Buffer.from(encodeTicFrame('historic', meter.historicGroups(t)), 'latin1'))
      .frames) {
      const r = readingFromTicFrame(f, new Date(t));
      out.push({ ...r, apparentPower: va(i), values: { ...r.values, PAPP: va(i) } });
    }
  }
  return out;
}

async function load(alertNode: Record<string, unknown> = {}) {
  await helper.load([alert, coreNodes.catch] as never, flow(alertNode));
  const alerts: AlertMsg[] = [];
  const caught: { error: { message: string } }[] = [];
  emitter(helper.getNode('out')).on('input', (m: AlertMsg) => alerts.push(m));
  emitter(helper.getNode('caught')).on('input', (m: { error: { message: string } }) => caught.push(m));
  return { node: helper.getNode('alert'), alerts, caught };
}

const states = (alerts: AlertMsg[]) => alerts.map((a) => `${a.payload.rule}:${a.payload.state}`);

describe('teleinfo-alert in the Node-RED runtime (test helper)', () => {
  beforeEach(async () => {
    const userDir = tempDir('alert-user');
    helper.settings({ userDir });
    await startHelper();
  });
  afterEach(async () => {
    await stopHelper();
    helper.settings({});
  });

  test('high consumption from simulated readings: one raised, one cleared, on teleinfo/<meter>/alert/<rule>, with a sentence', async () => {
    const { node, alerts } = await load();
    // 3 minutes above 6000 VA, then below 5400 VA: raised after 60 s, cleared 60 s after the drop.
    const readings = simulated(40, (i) => (i < 18 ? 7000 : 3000));
    node.receive({ payload: readings });
    await waitFor('raised and cleared', () => alerts.length >= 2);
    assert.deepEqual(states(alerts), ['high-consumption:raised', 'high-consumption:cleared']);
    assert.equal(alerts[0].topic, 'teleinfo/021861348497/alert/high-consumption');
    assert.ok(alerts[0].payload.text.length > 0);
  });

  test('no flapping with a value hovering ±1 VA around the threshold', async () => {
    const { node, alerts } = await load();
    for (const r of simulated(100, (i) => 6000 + (i % 2 === 0 ? 1 : -1))) node.receive({ payload: r });
    node.receive({ topic: 'teleinfo/pi-x/status', payload: 'offline' }); // a marker: the readings were handled
    await waitFor('the marker', () => alerts.some((a) => a.payload.meter === 'pi-x'));
    assert.ok(states(alerts.filter((a) => a.payload.rule === 'high-consumption')).length <= 1);
  });

  test('silence raised by the clock with no input at all, cleared by the next reading', async () => {
    const { node, alerts } = await load();
    node.receive({ payload: simulated(1, () => 1000)[0] });
    await waitFor('silence after 3 s with nothing coming in', () => alerts.length === 1, 10_000);
    assert.deepEqual(states(alerts), ['silence:raised']);
    node.receive({ payload: simulated(1, () => 1000)[0] });
    await waitFor('cleared', () => alerts.length === 2);
    assert.deepEqual(states(alerts), ['silence:raised', 'silence:cleared']);
  });

  test('Pi status and ecodevices-in events as silences; reminders at their interval', async () => {
    const { node, alerts } = await load({ reminderMinutes: '0.02' });
    node.receive({ topic: 'teleinfo/pi-1/status', payload: 'offline' });
    node.receive({
      payload: { event: 'unreachable', device: 'box-1', since: new Date().toISOString(), attempts: 3 },
    });
    await waitFor(
      'two silences and their reminders',
      () => alerts.filter((a) => a.payload.state === 'reminder').length >= 2,
      10_000,
    );
    node.receive({ topic: 'teleinfo/pi-1/status', payload: 'online' });
    node.receive({ payload: { event: 'back', device: 'box-1' } });
    await waitFor('both cleared', () => alerts.filter((a) => a.payload.state === 'cleared').length === 2);
    const raised = alerts
      .filter((a) => a.payload.state === 'raised')
      .map((a) => `${a.payload.meter}:${a.payload.kind}`);
    assert.deepEqual(raised.sort(), ['box-1:unreachable', 'pi-1:offline']);
  });

  test('overrun (ADPS), a red tomorrow (DEMAIN) from real captures; an index going back and an EJP notice from the simulator', async () => {
    const { node, alerts } = await load({ silence: false });
    const capture = (file: string) => {
      const c = captures().find((x) => x.file === file)!;
      return new TicStreamDecoder({ mode: c.mode }).push(c.bytes).frames.flatMap((f) => {
        try {
          return [readingFromTicFrame(f, new Date())];
        } catch {
          return [];
        }
      });
    };
    node.receive({ payload: capture('unresolved_arduino_comment_historic_hc_adps.txt') });
    node.receive({ payload: capture('pyteleinfo_captured_frames.bin') });
    const [first, second] = simulated(2, () => 1000);
    const back = {
      ...second,
      energyIndexes: { ...second.energyIndexes, HCHC: first.energyIndexes.HCHC - 10_000 },
    };
    node.receive({ payload: [first, back] });
    node.receive({
      payload: { ...first, meter: 'ejp-meter', values: { ...first.values, PEJP: 30 } },
    });
    await waitFor('four alerts', () => alerts.length >= 4);
    assert.deepEqual(states(alerts).sort(), ['ejp:raised', 'index:raised', 'overrun:raised', 'tempo:raised']);
  });

  test('the events of a burst are saved together, once a second, and at once on close (not once per event); the status follows at most twice a second', async () => {
    // The default context store of the runtime is the memory one: count its writes of the alerts' key.
    const memoryStore = module.require(
      require.resolve('@node-red/runtime/lib/nodes/context/memory', { paths: [require.resolve('node-red')] }),
    ) as () => { set: (...args: unknown[]) => void };
    const prototype = Object.getPrototypeOf(memoryStore()) as { set: (...args: unknown[]) => void };
    const originalSet = prototype.set;
    const saves: AlertSnapshot[] = [];
    prototype.set = function (this: unknown, ...args: unknown[]) {
      if (args[1] === 'teleinfo-alert') saves.push(structuredClone(args[2]) as AlertSnapshot);
      return originalSet.apply(this, args);
    };
    try {
      const { node, alerts } = await load();
      const statuses: string[] = [];
      const setStatus = node.status.bind(node);
      node.status = (status) => {
        statuses.push(typeof status === 'string' ? status : String(status.text));
        setStatus(status);
      };
      const pis = Array.from({ length: 200 }, (_, i) => `pi-${i}`);
      for (const pi of pis) node.receive({ topic: `teleinfo/${pi}/status`, payload: 'offline' });
      await waitFor('200 silences raised', () => alerts.length === 200);
      await waitFor('the status after the burst', () =>
        statuses.some((t) => t.endsWith('pi-199 silence raised')),
      );
      // One status per event would be 200, each counting every active alert.
      assert.ok(statuses.length <= 3, `${statuses.length} statuses for 200 events: ${statuses.join(' | ')}`);
      await waitFor('the burst saved', () => saves.some((s) => JSON.stringify(s).includes('pi-199')));
      // The burst straddles at most one second boundary; one save per event would be 200.
      assert.ok(saves.length <= 2, `${saves.length} saves for 200 events`);
      node.receive({ topic: 'teleinfo/pi-200/status', payload: 'offline' });
      await waitFor('the 201st', () => alerts.length === 201);
      const before = saves.length;
      await stopHelper();
      await startHelper(); // afterEach stops it again
      assert.equal(saves.length, before + 1, 'the close saved at once');
      assert.ok(JSON.stringify(saves.at(-1)).includes('pi-200'), 'with the last event in it');
    } finally {
      prototype.set = originalSet;
    }
  });

  test('anything else: done(err) saying what was expected', async () => {
    const { node, caught, alerts } = await load();
    node.receive({ payload: { temperature: 21 } });
    await waitFor('the Catch node', () => caught.length === 1);
    assert.match(
      caught[0].error.message,
      /teleinfo-alert expects a normalized reading.*Pi status.*ecodevices-in event/,
    );
    assert.deepEqual(alerts, []);
  });
});
