import assert from 'node:assert/strict';
import { afterEach, beforeEach, describe, test } from 'node:test';
import teleinfoParse from '../../nodes/teleinfo-parse/teleinfo-parse';
import type { Reading } from '../../nodes/lib';
import { fixture } from '../support/fixtures';
import { coreNodes, emitter, helper, nextMessages, startHelper, stopHelper } from '../support/node-red';

interface Msg {
  payload: Reading;
  topic: string;
  error?: { message: string; source: { id: string } };
}

const flow = (config: Record<string, unknown> = {}) => [
  { id: 'tab', type: 'tab' },
  { id: 'parse', z: 'tab', type: 'teleinfo-parse', wires: [['out']], ...config },
  { id: 'out', z: 'tab', type: 'helper' },
  { id: 'catcher', z: 'tab', type: 'catch', scope: null, wires: [['caught']] },
  { id: 'caught', z: 'tab', type: 'helper' },
];

async function load(config: Record<string, unknown> = {}) {
  await helper.load([teleinfoParse, coreNodes.catch] as never, flow(config));
  return {
    parse: helper.getNode('parse'),
    out: helper.getNode('out'),
    caught: helper.getNode('caught'),
  };
}

describe('teleinfo-parse node (Node-RED runtime through node-red-node-test-helper)', () => {
  beforeEach(startHelper);
  afterEach(stopHelper);

  test('serial-style chunks in, one reading per frame out', async () => {
    const { parse, out } = await load();
    const bytes = fixture('tic', 'pyteleinfo_captured_frames.bin');
    const received = nextMessages<Msg>(out, 10);
    // Chunks of 7 bytes, as a serial port at 1200 Bd delivers them, on a named port.
    for (let i = 0; i < bytes.length; i += 7)
      parse.receive({ payload: bytes.subarray(i, i + 7), port: '/dev/ttyUSB0' });
    const msgs = await received;
    assert.equal(msgs.length, 10);
    assert.ok(msgs.every((m) => m.payload.meter === '021861348497' && m.topic === 'teleinfo/021861348497'));
    assert.equal(msgs[0]?.payload.values.PAPP, 2840);
    // The index grows over the capture: each message is its own frame.
    const indexes = msgs.map((m) => m.payload.values.BBRHCJB as number);
    assert.ok(indexes.every((v, i) => i === 0 || v >= indexes[i - 1]));
    assert.ok(indexes[9] > indexes[0]);
  });

  test('one group per message, as the serial node splits on \\n', async () => {
    const { parse, out } = await load();
    const lines = fixture('tic', 'pyteleinfo_captured_frames.bin')
      .toString('latin1')
      .split(/(?<=\n)/);
    const received = nextMessages<Msg>(out, 10);
    for (const line of lines) parse.receive({ payload: line });
    assert.equal((await received).length, 10);
  });

  test('Eco-Devices JSON with both inputs connected gives two readings', async () => {
    const { parse, out } = await load({ device: 'garage' });
    const received = nextMessages<Msg>(out, 2);
    parse.receive({
      payload: {
        product: 'Eco-devices',
        T1_PTEC: 'HC..',
        T1_PAPP: 1230,
        T1_BASE: 100,
        T2_PTEC: 'TH..',
        T2_PAPP: 40,
        T2_BASE: 200,
        INDEX_C1: 1,
        INDEX_C2: 2,
      },
    });
    const msgs = await received;
    assert.deepEqual(
      msgs.map((m) => [m.topic, m.payload.source, m.payload.apparentPower]),
      [
        ['teleinfo/garage-T1', 'ecodevices', 1230],
        ['teleinfo/garage-T2', 'ecodevices', 40],
      ],
    );
  });

  test('a normalized reading passes through unchanged (server side, from MQTT as JSON text)', async () => {
    const { parse, out } = await load({ topic: 'ingest/{source}/{meter}' });
    const reading = {
      meter: 'A 1',
      source: 'tic-standard',
      time: '2026-11-29T10:00:00.000Z',
      tariffOption: null,
      tariffPeriod: null,
      apparentPower: 5,
      energyTotal: null,
      energyIndexes: {},
      currents: [],
      phases: 1,
      overrun: false,
      values: { SINSTS: 5 },
    };
    const received = nextMessages<Msg>(out, 1);
    parse.receive({ payload: JSON.stringify(reading) });
    const [msg] = await received;
    assert.deepEqual(msg?.payload, reading);
    assert.equal(msg?.topic, 'ingest/tic-standard/A_1');
  });

  test('on change only, and keep only chosen labels', async () => {
    const { parse, out } = await load({ emit: 'change', labels: 'PAPP, PTEC' });
    const frames = fixture('tic', 'pyteleinfo_captured_frames.bin');
    const seen: Msg[] = [];
    emitter(out).on('input', (m: Msg) => seen.push(m));
    const done = new Promise<void>((resolve) => emitter(parse).on('call:status', () => resolve()));
    parse.receive({ payload: frames });
    parse.receive({ payload: frames });
    await done;
    await new Promise<void>((resolve) => setImmediate(resolve));
    // 10 frames twice; only PAPP/PTEC changes count, and the replay adds nothing new after the first frame.
    const papps = seen.map((m) => m.payload.values.PAPP);
    assert.ok(seen.length >= 2 && seen.length < 20, `${seen.length} readings`);
    assert.ok(papps.every((p, i) => i === 0 || p !== papps[i - 1]));
    assert.deepEqual(Object.keys(seen[0]?.payload.values ?? {}).sort(), ['PAPP', 'PTEC']);
  });

  test('bad input reaches a Catch node with a clear message, and the node keeps working', async () => {
    const { parse, out, caught } = await load();
    const errors = nextMessages<Msg>(caught, 2);
    parse.receive({ payload: { hello: 'world' } });
    parse.receive({ payload: '\x02\nADCO 021861348497 L\r\nPAPP 00430 &\r\x03' });
    const [e1, e2] = await errors;
    assert.match(e1?.error?.message ?? '', /expects raw TIC .* got an object with keys \{hello\}/);
    assert.equal(e1?.error?.source.id, 'parse');
    assert.match(e2?.error?.message ?? '', /checksum.*PAPP 00430 &/);
    // The status says what is wrong (i18n key, as the helper's RED._ returns keys).
    const statuses = (
      parse as unknown as { status: { args: { fill?: string; text?: string }[][] } }
    ).status.args.map((a) => a[0]);
    assert.ok(statuses.some((s) => s?.fill === 'red' && s.text === 'teleinfo-parse.status.error'));
    const good = nextMessages<Msg>(out, 1);
    parse.receive({
      payload:
        fixture('tic', 'unresolved_arduino_comment_historic_hc_adps.txt')
          .toString('latin1')
          .split('\n')
          .map((l) => `\n${l}\r`)
          .join('')
          .replace(/^/, '\x02') + '\x03',
    });
    assert.equal((await good)[0]?.payload.overrun, true);
  });

  test('serial line: the second output sets the baud of the mode, a lost line is an error, a reopened one is followed', async () => {
    await helper.load(
      [teleinfoParse, coreNodes.catch] as never,
      [
        { id: 'tab', type: 'tab' },
        {
          id: 'parse',
          z: 'tab',
          type: 'teleinfo-parse',
          mode: 'standard',
          serialControl: true,
          wires: [['out'], ['control']],
        },
        { id: 'out', z: 'tab', type: 'helper' },
        { id: 'control', z: 'tab', type: 'helper' },
        { id: 'catcher', z: 'tab', type: 'catch', scope: null, wires: [['caught']] },
        { id: 'caught', z: 'tab', type: 'helper' },
      ] as never,
    );
    const parse = helper.getNode('parse');
    const [settings] = await nextMessages<{ payload: unknown }>(helper.getNode('control'), 1);
    assert.deepEqual(settings?.payload, { serialbaud: 9600, databits: 7, parity: 'even', stopbits: 1 });

    const errors = nextMessages<Msg>(helper.getNode('caught'), 1);
    // Half a frame, then the Status node watching serial in says the port is gone.
    parse.receive({ payload: Buffer.from('\x02\nADSC\t021861348497\tB\r\nVTIC\t02\t', 'latin1') });
    parse.receive({ status: { fill: 'red', shape: 'ring', text: 'node-red:common.status.not-connected' } });
    parse.receive({ status: { fill: 'red', shape: 'ring', text: 'node-red:common.status.not-connected' } });
    const [lost] = await errors;
    assert.match(lost?.error?.message ?? '', /serial line lost.*frame interrupted.*dropped 1 groups: "ADSC"/);
    parse.receive({ status: { fill: 'green', shape: 'dot', text: 'node-red:common.status.connected' } });
    // The groups after the reopen do not join the dropped half frame: a whole new frame is read.
    const good = nextMessages<Msg>(helper.getNode('out'), 1);
    parse.receive({ payload: Buffer.from('\x02\nADSC\t021861348497\tB\r\x03', 'latin1') });
    assert.equal((await good)[0]?.payload.meter, '021861348497');
    const statuses = (
      parse as unknown as { status: { args: { fill?: string; text?: string }[][] } }
    ).status.args.map((a) => a[0]);
    assert.ok(statuses.some((s) => s?.fill === 'red' && s.text === 'teleinfo-parse.status.line-lost'));
  });

  for (const [form, config] of [
    ['${TIC_MODE_TEST} in the value', { mode: '${TIC_MODE_TEST}' }],
    ['the env type naming it', { mode: 'TIC_MODE_TEST', modeType: 'env' }],
  ] as const)
    test(`an unknown mode (a TIC_MODE typo, ${form}) stops the node with an error saying what it got`, async () => {
      process.env.TIC_MODE_TEST = 'standrd';
      try {
        const { parse } = await load(config);
        const statuses = (
          parse as unknown as { status: { args: { fill?: string; text?: string }[][] } }
        ).status.args.map((a) => a[0]);
        assert.ok(statuses.some((s) => s?.fill === 'red' && s.text === 'teleinfo-parse.status.bad-mode'));
      } finally {
        delete process.env.TIC_MODE_TEST;
      }
    });

  test("the mode from the tab's environment (the env type, as the shipped TIC tab): standard refuses a historic meter", async () => {
    await helper.load([teleinfoParse, coreNodes.catch] as never, [
      { id: 'tab', type: 'tab', env: [{ name: 'TIC_MODE', type: 'str', value: 'standard' }] } as never,
      ...flow({ mode: 'TIC_MODE', modeType: 'env' }).slice(1),
    ]);
    const out = helper.getNode('out');
    let readings = 0;
    out.on('input', () => readings++);
    const caught = nextMessages<Msg>(helper.getNode('caught'), 1);
    helper.getNode('parse').receive({ payload: fixture('tic', 'pyteleinfo_captured_frames.bin') });
    assert.match((await caught)[0].error!.message, /mode/i);
    assert.equal(readings, 0, 'no historic reading in standard mode');
  });
});
