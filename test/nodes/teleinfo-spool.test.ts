import assert from 'node:assert/strict';
import { afterEach, beforeEach, describe, test } from 'node:test';
import spoolNode from '../../nodes/teleinfo-spool/teleinfo-spool';
import type { Reading } from '../../nodes/lib/reading';
import { helper, nextMessages, startHelper, stopHelper } from '../support/node-red';
import { hcReading } from '../support/readings';
import { tempDir } from '../support/services';

interface Forwarded {
  topic: string;
  /** The readings' JSON text, as spooled: what the mqtt out publishes. */
  payload: string;
  _spool: number;
}

const readingsIn = (m: Forwarded) => JSON.parse(m.payload) as Reading | Reading[];

const T0 = Date.parse('2026-11-20T00:00:00Z');
const up = { status: { fill: 'green', shape: 'dot', text: 'connected' } };

/**
 * teleinfo-spool in the Node-RED runtime (test helper), the node its output goes to standing where the mqtt out
 * would be: how readings are put into messages.
 */
describe('teleinfo-spool: readings per message (Node-RED test helper)', () => {
  beforeEach(async () => {
    helper.settings({ userDir: tempDir('spool-user') });
    await startHelper();
  });
  afterEach(stopHelper);

  const flow = (extra: Record<string, string>) => [
    { id: 'tab', type: 'tab' },
    {
      id: 'spool',
      z: 'tab',
      type: 'teleinfo-spool',
      topic: 'teleinfo/pi/{meter}/reading',
      overlap: '0.05',
      maxMB: '1',
      durability: 'process',
      ack: 'broker',
      window: '100',
      ...extra,
      wires: [['out']],
    },
    { id: 'out', z: 'tab', type: 'helper' },
  ];

  test('a backlog goes as arrays of one topic, up to the limit, in order; each message acknowledged releases it', async () => {
    await helper.load(spoolNode, flow({ perMessage: '3' }));
    const spool = helper.getNode('spool');
    const a = Array.from({ length: 7 }, (_, i) => hcReading('A', T0 + i * 1000, i));
    const b = Array.from({ length: 2 }, (_, i) => hcReading('B', T0 + i * 1000, i));
    // The link is down: both meters' readings wait, interleaved as a box's polls are.
    for (let i = 0; i < 7; i++) spool.receive({ payload: i < 2 ? [a[i], b[i]] : a[i] });
    const messages = nextMessages<Forwarded>(helper.getNode('out'), 4);
    spool.receive(up);
    const got = await messages;
    assert.ok(got.every((m) => typeof m.payload === 'string'));
    const shape = got.map((m) => {
      const readings = readingsIn(m);
      return `${m.topic} ${Array.isArray(readings) ? readings.length : 'one'}`;
    });
    assert.deepEqual(shape, [
      'teleinfo/pi/A/reading 3',
      'teleinfo/pi/A/reading 3',
      'teleinfo/pi/A/reading one',
      'teleinfo/pi/B/reading 2',
    ]);
    const times = (meter: string) =>
      got
        .filter((m) => m.topic.includes(`/${meter}/`))
        .flatMap((m) => [readingsIn(m)].flat().map((r) => r.time));
    assert.deepEqual(
      times('A'),
      a.map((r) => r.time),
    );
    assert.deepEqual(
      times('B'),
      b.map((r) => r.time),
    );

    // Each message carries its group's token, for the Complete node to give back.
    assert.ok(got.every((m) => typeof m._spool === 'number'));
    for (const m of got) spool.receive({ _spool: m._spool });
    // Caught up: a new reading passes straight through, alone in its message.
    const next = nextMessages<Forwarded>(helper.getNode('out'), 1);
    spool.receive({ payload: hcReading('A', T0 + 60_000, 60) });
    const [live] = await next;
    assert.equal(Array.isArray(readingsIn(live)), false, 'one reading alone is not wrapped in an array');
    assert.deepEqual(readingsIn(live), JSON.parse(JSON.stringify(hcReading('A', T0 + 60_000, 60))));
  });

  test('by default, one reading per message', async () => {
    await helper.load(spoolNode, flow({}));
    const spool = helper.getNode('spool');
    for (let i = 0; i < 4; i++) spool.receive({ payload: hcReading('A', T0 + i * 1000, i) });
    const messages = nextMessages<Forwarded>(helper.getNode('out'), 4);
    spool.receive(up);
    const got = await messages;
    assert.ok(
      got.every((m) => !Array.isArray(readingsIn(m))),
      got.map((m) => m.payload.slice(0, 40)).join(' '),
    );
  });
});
