import assert from 'node:assert/strict';
import { afterEach, beforeEach, describe, test } from 'node:test';
import teleinfoAdmit from '../../nodes/teleinfo-admit/teleinfo-admit';
import type { Reading } from '../../nodes/lib/reading';
import { coreNodes, emitter, helper, startHelper, stopHelper } from '../support/node-red';
import { waitFor } from '../support/services';

type Status = { fill?: string; text?: string };
interface Msg {
  topic?: string;
  payload: unknown;
  pi?: string;
  retain?: boolean;
  error?: { message: string; source: { id: string } };
}

const reading = (meter: string, papp: number, time = new Date()): Reading =>
  ({
    meter,
    source: 'tic-historic',
    time: time.toISOString(),
    values: {
      ADCO: meter,
      OPTARIF: 'BASE',
      ISOUSC: 45,
      BASE: 1_234_567,
      PTEC: 'TH..',
      IINST: 2,
      IMAX: 90,
      PAPP: papp,
    },
  }) as unknown as Reading;

describe('teleinfo-admit (Node-RED test helper)', () => {
  beforeEach(startHelper);
  afterEach(stopHelper);

  async function load(config: Record<string, string> = {}) {
    await helper.load(
      [teleinfoAdmit, coreNodes.catch] as never,
      [
        { id: 'tab', type: 'tab' },
        { id: 'admit', z: 'tab', type: 'teleinfo-admit', ...config, wires: [['admitted'], ['clear']] },
        { id: 'admitted', z: 'tab', type: 'helper' },
        { id: 'clear', z: 'tab', type: 'helper' },
        { id: 'catcher', z: 'tab', type: 'catch', scope: null, wires: [['caught']] },
        { id: 'caught', z: 'tab', type: 'helper' },
      ] as never,
    );
    const got = { admitted: [] as Msg[], clear: [] as Msg[], caught: [] as Msg[], statuses: [] as Status[] };
    for (const name of ['admitted', 'clear', 'caught'] as const)
      emitter(helper.getNode(name)).on('input', (m: Msg) => got[name].push(m));
    emitter(helper.getNode('admit')).on('call:status', (c: { args: [Status] }) =>
      got.statuses.push(c.args[0]),
    );
    const send = (msg: Msg) => helper.getNode('admit').receive(msg as never);
    return { got, send };
  }

  test("a Pi's own meter admitted with msg.pi; another Pi's meter, a bad label and junk refused to a Catch node and counted in the status", async () => {
    const { got, send } = await load({ meters: 'pi-2: 021800000002' });
    send({
      topic: 'teleinfo/pi-1/021800000001/reading',
      payload: JSON.stringify(reading('021800000001', 700)),
    });
    await waitFor('the reading admitted', () => got.admitted.length === 1);
    assert.equal(got.admitted[0].pi, 'pi-1');
    assert.equal((got.admitted[0].payload as Reading).apparentPower, 700, 'derived again from PAPP');

    // The declared meter of pi-2, sent by pi-1; a meter of pi-1 sent by pi-3 (bound on first sight above).
    send({
      topic: 'teleinfo/pi-1/021800000002/reading',
      payload: JSON.stringify(reading('021800000002', 1)),
    });
    await waitFor('a Catch node told', () => got.caught.length === 1);
    assert.match(got.caught[0].error!.message, /meter 021800000002 belongs to another Pi/);
    send({
      topic: 'teleinfo/pi-3/021800000001/reading',
      payload: JSON.stringify(reading('021800000001', 2)),
    });
    // Reported once a second per Pi and kind: pi-3 is another Pi, reported at once.
    await waitFor('the second refusal told', () => got.caught.length === 2);
    assert.match(got.caught[1].error!.message, /refused: pi-3: meter 021800000001 belongs to another Pi/);

    // pi-1 again within the second: another foreign meter is only counted; a bad label and junk are other kinds.
    const evil = { ...reading('021800000001', 3), values: { PAPP: 'x\ny', ADCO: '021800000001' } };
    send({
      topic: 'teleinfo/pi-1/021800000002/reading',
      payload: JSON.stringify(reading('021800000002', 1)),
    });
    send({ topic: 'teleinfo/pi-1/021800000001/reading', payload: JSON.stringify(evil) });
    send({ topic: 'teleinfo/pi-1/021800000001/reading', payload: '{"meter":' });
    send({ topic: 'teleinfo/pi-1/021800000001/reading', payload: '{"meter":' });
    send({ topic: `teleinfo/pi-1/${'m'.repeat(70_000)}/reading`, payload: '{}' });
    // The helper's runtime has no catalogue: the status's counts are its i18n key, the last reason after it.
    await waitFor('the status saying the last refusal', () =>
      got.statuses.some((s) => s.fill === 'yellow' && /· topic$/.test(s.text ?? '')),
    );
    assert.deepEqual(
      got.caught.slice(2).map((m) => /^(?:Error: )?refused: ([^:,]*)/.exec(m.error!.message)?.[1]),
      ['pi-1', 'pi-1', 'not a reading topic teleinfo/<pi>/<meter>/reading with ids'],
    );
    assert.match(got.caught[2].error!.message, /PAPP is a non-negative integer label/);
    assert.match(got.caught[3].error!.message, /malformed JSON/);
    assert.ok(got.caught[4].error!.message.length < 200, 'the topic not repeated');
    assert.equal(got.admitted.length, 1, 'nothing of what was refused went on');
    assert.ok(
      got.statuses.every((s) => !String(s.text).includes('\n')),
      'no payload text in the status',
    );
  });

  test("a retained reading is cleared on the second output, whatever it holds; the broker's own clearing is not a reading", async () => {
    const { got, send } = await load();
    send({
      topic: 'teleinfo/pi-1/021800000001/reading',
      payload: JSON.stringify(reading('021800000001', 500)),
      retain: true,
    });
    send({ topic: 'teleinfo/pi-1/junk/reading', payload: 'x'.repeat(2000), retain: true });
    await waitFor('two topics to clear', () => got.clear.length === 2);
    assert.deepEqual(
      got.clear.map((m) => [m.topic, m.payload, m.retain]),
      [
        ['teleinfo/pi-1/021800000001/reading', '', true],
        ['teleinfo/pi-1/junk/reading', '', true],
      ],
    );
    assert.equal(got.admitted.length, 1, 'a retained reading that is valid is still stored');
    send({ topic: 'teleinfo/pi-1/021800000001/reading', payload: '', retain: true });
    send({
      topic: 'teleinfo/pi-1/021800000001/reading',
      payload: JSON.stringify(reading('021800000001', 9)),
    });
    await waitFor('the next reading', () => got.admitted.length === 2);
    assert.equal(got.clear.length, 2);
    assert.equal(got.caught.length, 1, 'only the junk was refused');
  });

  test('meters per Pi: the first ones seen bound, the next refused; the time window from the dialog', async () => {
    const { got, send } = await load({ metersPerPi: '2', pastDays: '1', futureMinutes: '5' });
    for (const m of ['m1', 'm2', 'm3'])
      send({ topic: `teleinfo/pi-1/${m}/reading`, payload: JSON.stringify(reading(m, 1)) });
    send({
      topic: 'teleinfo/pi-1/m1/reading',
      payload: JSON.stringify(reading('m1', 1, new Date(Date.now() + 10 * 60_000))),
    });
    send({
      topic: 'teleinfo/pi-1/m1/reading',
      payload: JSON.stringify(reading('m1', 1, new Date(Date.now() - 2 * 86_400_000))),
    });
    await waitFor(
      'the quota and the window told (the two times of one kind: once)',
      () => got.caught.length === 2 && got.statuses.some((s) => /· time$/.test(s.text ?? '')),
    );
    assert.deepEqual(
      got.admitted.map((m) => (m.payload as Reading).meter),
      ['m1', 'm2'],
    );
    assert.match(got.caught[0].error!.message, /no room for meter m3/);
  });

  test('declared meters that are not "pi-id: meter ..." stop the node with a red status', async () => {
    const { got } = await load({ meters: 'pi-1 021800000001' });
    await waitFor('the red status', () => got.statuses.some((s) => s.fill === 'red'));
  });
});
