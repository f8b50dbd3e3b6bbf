import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import fc from 'fast-check';
import {
  AckCollector,
  checkReadingAck,
  parseAck,
  parseSeqList,
  SeqRanges,
} from '../../nodes/lib/acknowledgement';
import { Admission, DEFAULT_LIMITS, MeterBindings } from '../../nodes/lib/admission';
import { hcReading } from '../support/readings';

describe('acknowledgement: sequence ranges, messages and what a server settles', () => {
  test('ranges merge, answer membership like a set of numbers, and print as a-b,c', () => {
    fc.assert(
      fc.property(fc.array(fc.tuple(fc.nat(200), fc.nat(6))), fc.nat(220), (adds, below) => {
        const ranges = new SeqRanges();
        const set = new Set<number>();
        for (const [from, len] of adds) {
          ranges.add(from, from + len);
          for (let s = from; s <= from + len; s++) set.add(s);
        }
        ranges.dropBelow(below);
        for (const s of [...set]) if (s < below) set.delete(s);
        for (let s = 0; s < 215; s++) assert.equal(ranges.has(s), set.has(s), `number ${s}`);
        const printed = ranges.toString();
        const parsed = printed === '' ? [] : parseSeqList(printed, 10_000);
        assert.deepEqual(
          parsed,
          [...set].sort((a, b) => a - b),
        );
      }),
    );
    const r = new SeqRanges();
    r.addAll([5, 6, 7, 9, 3]);
    assert.equal(r.toString(), '3,5-7,9');
    assert.equal(r.covers(5, 7), true);
    assert.equal(r.covers(5, 9), false);
  });

  test('bounded: past its ranges, the highest are forgotten and counted', () => {
    const r = new SeqRanges(3);
    for (const s of [1, 3, 5, 7, 9]) r.add(s);
    assert.equal(r.size, 3);
    assert.equal(r.forgotten, 2);
    assert.equal(r.toString(), '1,3,5');
  });

  test('a hostile list or acknowledgement is refused with a reason, never thrown', () => {
    for (const bad of [
      undefined,
      '',
      'x',
      '5-3',
      '3,3',
      '4,2',
      '1-9999999999999999',
      '-1',
      '1,,2',
      '1'.repeat(40_000),
      '0-5000',
    ])
      assert.equal(typeof parseSeqList(bad, 1000), 'string', JSON.stringify(bad)?.slice(0, 40));
    assert.deepEqual(parseSeqList('0-2,7', 1000), [0, 1, 2, 7]);
    for (const bad of [
      'not json',
      '{}',
      { acks: [] },
      { acks: [{ stream: 'short', seq: '1' }] },
      { acks: [{ stream: 'abcdef0123456789', seq: 'nope' }] },
      { acks: Array.from({ length: 17 }, () => ({ stream: 'abcdef0123456789', seq: '1' })) },
      Buffer.from('{"acks":' + '['.repeat(10) + ']'.repeat(10) + '}'),
      null,
    ])
      assert.equal(typeof parseAck(bad, 100), 'string', JSON.stringify(bad));
    assert.deepEqual(parseAck('{"acks":[{"stream":"abcdef0123456789","seq":"1-3,9"}]}', 100), [
      {
        stream: 'abcdef0123456789',
        ranges: [
          [1, 3],
          [9, 9],
        ],
      },
    ]);
    for (const bad of [
      null,
      { pi: 'a/b', stream: 'abcdef0123456789', seqs: [1] },
      { pi: 'pi-1', stream: 'abcdef0123456789', seqs: [] },
      { pi: 'pi-1', stream: 'abcdef0123456789', seqs: [1.5] },
      { pi: 'pi-1', stream: '../etc', seqs: [1] },
    ])
      assert.equal(typeof checkReadingAck(bad), 'string');
  });

  test('a server collects per Pi and stream, publishes one acknowledgement per Pi, and forgets past its bound', () => {
    const c = new AckCollector(2);
    c.add({ pi: 'pi-1', stream: 'aaaaaaaaaaaaaaaa', seqs: [1] });
    c.add({ pi: 'pi-1', stream: 'aaaaaaaaaaaaaaaa', seqs: [2, 3] });
    c.add({ pi: 'pi-1', stream: 'bbbbbbbbbbbbbbbb', seqs: [7] });
    c.add({ pi: 'pi-2', stream: 'cccccccccccccccc', seqs: [0] });
    c.add({ pi: 'pi-3', stream: 'cccccccccccccccc', seqs: [0, 1] });
    assert.deepEqual(c.drain(), [
      {
        pi: 'pi-1',
        payload: {
          acks: [
            { stream: 'aaaaaaaaaaaaaaaa', seq: '1-3' },
            { stream: 'bbbbbbbbbbbbbbbb', seq: '7' },
          ],
        },
      },
      { pi: 'pi-2', payload: { acks: [{ stream: 'cccccccccccccccc', seq: '0' }] } },
    ]);
    assert.equal(c.counters.forgotten, 2);
    assert.equal(c.waiting, 0);
    assert.deepEqual(c.drain(), []);
  });

  test('admission: each admitted reading keeps its number; refused ones are settled; a numbering that does not fit refuses the message', () => {
    const admission = new Admission(DEFAULT_LIMITS, new MeterBindings(DEFAULT_LIMITS, {}, {}));
    const now = Date.now();
    const good = hcReading('021861348497', now - 1000, 1);
    const old = hcReading('021861348497', now - 100 * 86_400_000, 2);
    const topic = `teleinfo/pi-1/${good.meter}/reading`;
    const stream = 'abcdef0123456789';
    const outcome = admission.admit(topic, JSON.stringify([good, old, good]), now, {
      stream,
      seq: '40-41,45',
    });
    assert.equal(outcome.readings.length, 2);
    assert.deepEqual(outcome.numbered, { stream, seqs: [40, 45], settled: [41] });
    const mismatch = admission.admit(topic, JSON.stringify([good, good]), now, { stream, seq: '40' });
    assert.equal(mismatch.readings.length, 0);
    assert.match(mismatch.refusals[0].detail, /1 reading numbers for 2 readings/);
    assert.deepEqual(mismatch.numbered, { stream, seqs: [], settled: [40] });
    const garbled = admission.admit(topic, JSON.stringify(good), now, { stream: 'x', seq: '1' });
    assert.equal(garbled.readings.length, 0);
    assert.equal(garbled.numbered, undefined, 'nothing in it can be acknowledged');
    const malformed = admission.admit(topic, '{', now, { stream, seq: '9' });
    assert.deepEqual(malformed.numbered, { stream, seqs: [], settled: [9] });
    const unnumbered = admission.admit(topic, JSON.stringify(good), now);
    assert.equal(unnumbered.readings.length, 1);
    assert.equal(unnumbered.numbered, undefined);
  });
});
