import assert from 'node:assert/strict';
import type { EventEmitter } from 'node:events';
import { afterEach, beforeEach, describe, test } from 'node:test';
import ecodevicesDevice from '../../nodes/ecodevices-device/ecodevices-device';
import ecodevicesIn from '../../nodes/ecodevices-in/ecodevices-in';
import type { Reading } from '../../nodes/lib';
import type { EcoDevicesSimulator, Faults } from '../../nodes/lib/simulator/ecodevices-server';
import type { Contract } from '../../nodes/lib/simulator/meter';
import { coreNodes, emitter, helper, startHelper, stopHelper } from '../support/node-red';
import { startBox } from '../support/simulator';

interface Msg {
  payload: Reading & { event?: string; device?: string; attempts?: number; lastError?: string };
  topic: string;
  raw?: Record<string, string>;
  error?: { message: string };
}

type Status = { fill?: string; shape?: string; text?: string };

function flow(
  box: EcoDevicesSimulator,
  node: Record<string, unknown> = {},
  device: Record<string, unknown> = {},
) {
  return [
    { id: 'tab', type: 'tab' },
    {
      id: 'box',
      type: 'ecodevices-device',
      host: '127.0.0.1',
      port: String(box.port),
      timeout: '800',
      deviceId: 'garage',
      ...device,
    },
    {
      id: 'poll',
      z: 'tab',
      type: 'ecodevices-in',
      device: 'box',
      mode: 'full',
      interval: '3600',
      emit: 'all',
      alertAfter: '2',
      c1Name: 'water',
      c1Divider: '1000',
      c2Name: '',
      wires: [['readings'], ['alerts']],
      ...node,
    },
    { id: 'readings', z: 'tab', type: 'helper' },
    { id: 'alerts', z: 'tab', type: 'helper' },
    { id: 'catcher', z: 'tab', type: 'catch', scope: null, wires: [['caught']] },
    { id: 'caught', z: 'tab', type: 'helper' },
    { id: 'completer', z: 'tab', type: 'complete', scope: ['poll'], wires: [['completed']] },
    { id: 'completed', z: 'tab', type: 'helper' },
  ];
}

async function load(
  box: EcoDevicesSimulator,
  node: Record<string, unknown> = {},
  device: Record<string, unknown> = {},
  credentials?: Record<string, string>,
) {
  const creds = credentials ? { box: credentials } : {};
  await helper.load(
    [ecodevicesDevice, ecodevicesIn, coreNodes.catch, coreNodes.complete] as never,
    flow(box, node, device),
    creds,
  );
  const poll = helper.getNode('poll');
  const statuses: Status[] = [];
  emitter(poll).on('call:status', (call: { args: [Status] }) => statuses.push(call.args[0]));
  return {
    poll,
    readings: new Recorder(helper.getNode('readings')),
    alerts: new Recorder(helper.getNode('alerts')),
    caught: new Recorder(helper.getNode('caught')),
    completed: new Recorder(helper.getNode('completed')),
    statuses,
  };
}

/** Every message a helper node receives, in order; `next()` gives the first not yet taken. */
class Recorder {
  readonly all: Msg[] = [];
  private taken = 0;
  private waiter: (() => void) | null = null;

  constructor(node: unknown) {
    (node as EventEmitter).on('input', (m: Msg) => {
      this.all.push(m);
      this.waiter?.();
    });
  }

  async next(timeoutMs = 10_000): Promise<Msg> {
    const deadline = Date.now() + timeoutMs;
    while (this.taken >= this.all.length) {
      if (Date.now() > deadline)
        throw new Error(`no message within ${timeoutMs} ms (${this.all.length} so far)`);
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, deadline - Date.now());
        this.waiter = () => {
          clearTimeout(timer);
          resolve();
        };
      });
    }
    return this.all[this.taken++];
  }

  async take(count: number): Promise<Msg[]> {
    const out: Msg[] = [];
    for (let i = 0; i < count; i++) out.push(await this.next());
    return out;
  }
}

const next = (recorder: Recorder) => recorder.next();

describe('ecodevices-in against the simulated Eco-Devices box over real HTTP (Node-RED test helper)', () => {
  let box: EcoDevicesSimulator;
  beforeEach(startHelper);
  afterEach(async () => {
    await stopHelper();
    await box?.close();
  });

  for (const contract of ['BASE', 'HC', 'EJP', 'TEMPO'] as Contract[]) {
    test(`full teleinfo mode, ${contract} contract: every label of the simulator's meter, exactly`, async () => {
      box = await startBox({
        contract,
        contract2: contract === 'HC' ? 'BASE' : null,
        phases: contract === 'EJP' ? 3 : 1,
      });
      const { readings } = await load(box);
      const msgs = await readings.take(contract === 'HC' ? 3 : 2);
      const state = box.meters[0]!.state(box.clock.now());
      const meter = msgs[0].payload;
      assert.equal(meter.meter, box.meters[0]!.config.adco);
      assert.equal(meter.source, 'ecodevices');
      assert.equal(meter.tariffOption, contract);
      assert.equal(meter.values.PTEC, state.ptec);
      assert.equal(meter.apparentPower, state.papp);
      assert.deepEqual(meter.energyIndexes, state.indexes);
      assert.equal(meter.phases, contract === 'EJP' ? 3 : 1);
      if (contract === 'TEMPO') assert.ok(['BLEU', 'BLAN', 'ROUG'].includes(meter.values.DEMAIN as string));
      if (contract === 'HC') assert.equal(msgs[1].payload.meter, box.meters[1]!.config.adco);
      const water = msgs[msgs.length - 1].payload;
      assert.equal(water.meter, 'garage-water');
      assert.equal(water.values.index, box.counters[0].indexAt(box.clock.now()) / 1000);
      assert.ok(msgs[0].raw?.['/status.xml']?.includes('<T1_PAPP>'));
      assert.equal(box.stats.requests, 3);
    });
  }

  test('summary mode (JSON cmd=10 and cmd=20): power, period, indexes, counters; meter named after the device', async () => {
    box = await startBox({ contract: 'BASE' });
    const { readings } = await load(box, { mode: 'summary', c2Name: 'gas', c2Divider: '1' });
    const [meter, water, gas] = await readings.take(3);
    const now = box.clock.now();
    const state = box.meters[0]!.state(now);
    assert.equal(meter.payload.meter, 'garage-T1');
    assert.equal(meter.payload.apparentPower, state.papp);
    assert.equal(meter.payload.values.BASE, state.indexes.BASE);
    assert.equal(meter.payload.tariffPeriod, 'TH');
    assert.equal(water.payload.values.index, box.counters[0].indexAt(now) / 1000);
    assert.equal(gas.payload.values.index, box.counters[1].indexAt(now));
    assert.ok(
      !Number.isInteger(gas.payload.values.index),
      'the gas counter is a float, as some boxes send it',
    );
    assert.deepEqual(
      box.stats.log.map((e) => e.path),
      ['/api/xdevices.json?cmd=10', '/api/xdevices.json?cmd=20'],
    );
  });

  test('garbage in T1_DEMAIN does not break the reading', async () => {
    box = await startBox({ contract: 'HC' });
    box.setFaults({ garbageDemain: true });
    const { readings } = await load(box);
    const msg = await next(readings);
    assert.equal(msg.payload.values.DEMAIN, undefined);
    assert.equal(msg.payload.values.PTEC, box.meters[0]!.state(box.clock.now()).ptec);
  });

  const faults: [string, Faults, RegExp, string][] = [
    ['HTTP 500', { status: 500 }, /HTTP 500/, 'server'],
    ['a timeout', { timeout: true }, /no answer within 800 ms/, 'timeout'],
    ['malformed JSON', { malformedJson: true }, /malformed JSON/, 'format'],
    ['truncated XML', { truncatedXml: true }, /truncated XML/, 'format'],
    ['connection refused', { offlineMs: 60_000 }, /ECONNREFUSED/, 'unreachable'],
  ];
  for (const [name, fault, error, kind] of faults) {
    test(`${name}: error to Catch, yellow status, one "unreachable" alert after 2 failures, one "back" on recovery`, async () => {
      box = await startBox({ contract: 'HC' });
      const json = name === 'malformed JSON';
      const { poll, readings, alerts, caught, statuses } = await load(box, json ? { mode: 'summary' } : {});
      await next(readings);
      box.setFaults(fault);
      const first = next(caught);
      poll.receive({ payload: 'poll' });
      assert.match((await first).error!.message, error);
      // The test helper does not translate: status texts are the i18n keys here.
      assert.deepEqual(statuses.at(-1), {
        fill: 'yellow',
        shape: 'ring',
        text: 'ecodevices-in.status.retrying',
      });
      assert.equal(((await first).error as unknown as { kind?: string }).kind ?? kind, kind);
      const alert = next(alerts);
      poll.receive({ payload: 'poll' });
      const unreachable = (await alert).payload;
      assert.equal(unreachable.event, 'unreachable');
      assert.equal(unreachable.device, 'garage');
      assert.equal(unreachable.attempts, 2);
      assert.match(unreachable.lastError!, error);
      assert.equal(statuses.at(-1)?.fill, 'red');
      // A third failure sends no second alert.
      const third = next(caught);
      poll.receive({ payload: 'poll' });
      await third;
      await box.online();
      const back = next(alerts);
      const reading = next(readings);
      poll.receive({ payload: 'poll' });
      assert.equal((await back).payload.event, 'back');
      await reading;
      assert.equal(statuses.at(-1)?.fill, 'green');
      assert.deepEqual(
        alerts.all.map((m) => m.payload.event),
        ['unreachable', 'back'],
      );
    });
  }

  test('Basic auth: the right password reads, a wrong one gives the 401 error and a red status', async () => {
    box = await startBox({ contract: 'BASE', user: 'admin', password: 's3cret' });
    const ok = await load(box, {}, {}, { user: 'admin', password: 's3cret' });
    assert.equal(
      (await next(ok.readings)).payload.values.BASE,
      box.meters[0]!.state(box.clock.now()).indexes.BASE,
    );
    await helper.unload();
    const bad = await load(box, {}, {}, { user: 'admin', password: 'wrong' });
    const err = await next(bad.caught);
    assert.match(err.error!.message, /HTTP 401, the box refused the user name or password/);
    assert.deepEqual(bad.statuses.at(-1), { fill: 'red', shape: 'ring', text: 'ecodevices-in.status.auth' });
  });

  test('${ENV} host, port and credentials', async () => {
    box = await startBox({ contract: 'BASE', user: 'u', password: 'p w' });
    process.env.TEST_ECO_HOST = '127.0.0.1';
    process.env.TEST_ECO_PORT = String(box.port);
    process.env.TEST_ECO_PASSWORD = 'p w';
    const { readings } = await load(
      box,
      {},
      { host: '${TEST_ECO_HOST}', port: '${TEST_ECO_PORT}' },
      { user: 'u', password: '${TEST_ECO_PASSWORD}' },
    );
    assert.equal((await next(readings)).payload.source, 'ecodevices');
  });

  test('emit on change: a frozen meter is sent once; when the clock moves, the new values are sent', async () => {
    box = await startBox({ contract: 'BASE' });
    const { poll, readings, completed } = await load(box, { emit: 'change', c1Name: '' });
    await next(readings);
    const got = readings.all;
    const polled = next(completed);
    poll.receive({ payload: 'poll' });
    await polled;
    assert.equal(got.length, 1, 'same values: suppressed');
    assert.equal(box.stats.requests, 6);
    box.clock.set({ advanceMs: 10 * 60_000 });
    const changed = next(readings);
    poll.receive({ payload: 'poll' });
    assert.notEqual((await changed).payload.values.BASE, got[0].payload.values.BASE);
  });

  test('"stop" pauses polling, "start" resumes it; any other message polls now', async () => {
    box = await startBox({ contract: 'BASE' });
    const { poll, readings, completed, statuses } = await load(box, { c1Name: '' });
    await next(readings);
    poll.receive({ payload: 'stop' });
    await next(completed);
    assert.equal(statuses.at(-1)?.text, 'ecodevices-in.status.paused');
    const polled = next(readings);
    poll.receive({ payload: 'now' });
    await polled;
    assert.equal(box.stats.requests, 6);
    const resumed = next(readings);
    poll.receive({ payload: 'start' });
    await resumed;
    assert.equal(box.stats.requests, 9);
  });
});
