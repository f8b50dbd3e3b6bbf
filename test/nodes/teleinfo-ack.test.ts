import assert from 'node:assert/strict';
import { afterEach, beforeEach, describe, test } from 'node:test';
import teleinfoAck from '../../nodes/teleinfo-ack/teleinfo-ack';
import teleinfoAdmit from '../../nodes/teleinfo-admit/teleinfo-admit';
import { hcReading } from '../support/readings';
import { coreNodes, emitter, helper, startHelper, stopHelper } from '../support/node-red';
import { waitFor } from '../support/services';

interface Msg {
  topic?: string;
  payload?: unknown;
  ack?: unknown;
  userProperties?: Record<string, string>;
  error?: { message: string };
}

const STREAM = 'abcdef0123456789';

describe('teleinfo-ack with teleinfo-admit (Node-RED test helper)', () => {
  beforeEach(startHelper);
  afterEach(stopHelper);

  test('admitted readings carry their numbers; refused ones are settled; one acknowledgement per Pi, merged; a bad msg.ack to Catch', async () => {
    await helper.load(
      [teleinfoAdmit, teleinfoAck, coreNodes.catch] as never,
      [
        { id: 'tab', type: 'tab' },
        { id: 'admit', z: 'tab', type: 'teleinfo-admit', wires: [['admitted'], [], ['ack']] },
        { id: 'admitted', z: 'tab', type: 'helper' },
        { id: 'ack', z: 'tab', type: 'teleinfo-ack', interval: '100', wires: [['out']] },
        { id: 'out', z: 'tab', type: 'helper' },
        { id: 'catcher', z: 'tab', type: 'catch', scope: ['ack'], wires: [['caught']] },
        { id: 'caught', z: 'tab', type: 'helper' },
      ] as never,
    );
    const got = { admitted: [] as Msg[], out: [] as Msg[], caught: [] as Msg[] };
    for (const name of ['admitted', 'out', 'caught'] as const)
      emitter(helper.getNode(name)).on('input', (m: Msg) => got[name].push(m));
    const meter = '021861348497';
    const now = Date.now();
    const old = hcReading(meter, now - 100 * 86_400_000, 1);
    helper.getNode('admit').receive({
      topic: `teleinfo/pi-1/${meter}/reading`,
      payload: JSON.stringify([hcReading(meter, now - 2000, 1), old, hcReading(meter, now - 1000, 2)]),
      userProperties: { 'teleinfo-stream': STREAM, 'teleinfo-seq': '10-12' },
    });
    await waitFor('two readings admitted', () => got.admitted.length === 2);
    assert.deepEqual(
      got.admitted.map((m) => m.ack),
      [
        { pi: 'pi-1', stream: STREAM, seqs: [10] },
        { pi: 'pi-1', stream: STREAM, seqs: [12] },
      ],
    );
    // As the Complete node on influx-teleinfo-out would, once they are stored.
    for (const m of got.admitted) helper.getNode('ack').receive({ ack: m.ack });
    await waitFor('an acknowledgement', () => got.out.length === 1);
    assert.deepEqual(got.out[0].topic, 'teleinfo/pi-1/ack');
    assert.deepEqual(got.out[0].payload, { acks: [{ stream: STREAM, seq: '10-12' }] });
    helper.getNode('ack').receive({ payload: 'a reading of a Pi that does not number them' });
    helper.getNode('ack').receive({ ack: { pi: 'pi-1', stream: '../../x', seqs: [1] } });
    await waitFor('the bad one caught', () => got.caught.length === 1);
    assert.match(got.caught[0].error!.message, /stream id/, 'only the malformed one is an error');
    assert.equal(got.out.length, 1, 'nothing settled since: nothing sent');
  });
});
