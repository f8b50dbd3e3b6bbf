import fs from 'node:fs';
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { Spool } from '../../nodes/lib/spool';
import { SpoolForwarder } from '../../nodes/lib/spool-forwarder';
import { tempDir, waitFor } from '../support/services';

/** The end of the current event-loop turn, when offered records are journaled and forwarded. */
const turn = () => new Promise((resolve) => setImmediate(resolve));

function buffer(dir: string, overlapMs: number, acks?: { window: number }) {
  const forwarded: string[] = [];
  const tokens: number[] = [];
  const spool = new Spool(dir, { segmentBytes: 1024, maxBytes: 1 << 20 });
  const saf = new SpoolForwarder(
    spool,
    { overlapMs, replayBatch: 7, window: acks?.window ?? 100, release: acks ? 'broker' : 'overlap' },
    // One message per record, as teleinfo-spool forwards readings of different topics.
    (records, _seqs, token) => {
      const refused = records
        .filter((r) => r.startsWith('bad'))
        .map((record) => ({ record, reason: 'not a record' }));
      for (const r of records.filter((r) => !r.startsWith('bad'))) {
        forwarded.push(r);
        tokens.push(token);
      }
      return { messages: records.length - refused.length, refused };
    },
  );
  return { saf, spool, forwarded, tokens };
}

describe('spool forwarder (teleinfo-spool)', () => {
  test('queued while down, replayed in order when up, then passed straight through', async () => {
    const { saf, forwarded } = buffer(tempDir('saf'), 60_000);
    for (let i = 0; i < 50; i++) saf.offer([`r${i}`]);
    assert.equal(forwarded.length, 0);
    assert.equal(saf.backlog, 50);
    saf.setLink(true);
    assert.equal(saf.state, 'replaying');
    saf.offer(['r50']); // arrives during the replay: queued behind, not sent ahead
    await waitFor('the replay', () => saf.state === 'up');
    saf.offer(['r51']);
    await turn();
    assert.deepEqual(
      forwarded,
      Array.from({ length: 52 }, (_, i) => `r${i}`),
    );
    assert.equal(saf.backlog, 0);
    saf.close();
  });

  test('a drop replays the overlap (what was sent just before it) and the queue, in order', async () => {
    const { saf, forwarded } = buffer(tempDir('saf'), 60_000);
    saf.setLink(true);
    await waitFor('caught up', () => saf.state === 'up');
    for (let i = 0; i < 10; i++) saf.offer([`r${i}`]);
    await turn();
    saf.setLink(false); // r0..r9 were sent within the overlap: they may be lost
    for (let i = 10; i < 15; i++) saf.offer([`r${i}`]);
    assert.equal(saf.backlog, 15);
    forwarded.length = 0;
    saf.setLink(true);
    await waitFor('the replay', () => saf.state === 'up');
    assert.deepEqual(
      forwarded,
      Array.from({ length: 15 }, (_, i) => `r${i}`),
    );
    saf.close();
  });

  test('a replay request forwards the overlap again, in order, then carries on; ignored while down', async () => {
    const { saf, forwarded } = buffer(tempDir('saf'), 60_000);
    saf.setLink(true);
    await waitFor('caught up', () => saf.state === 'up');
    for (let i = 0; i < 10; i++) saf.offer([`r${i}`]);
    await turn();
    assert.equal(forwarded.length, 10);
    forwarded.length = 0;
    saf.replayRequested();
    assert.equal(saf.state, 'replaying');
    saf.offer(['r10']); // queued behind the replay
    await waitFor('the replay', () => saf.state === 'up');
    saf.offer(['r11']);
    await turn();
    assert.deepEqual(
      forwarded,
      Array.from({ length: 12 }, (_, i) => `r${i}`),
    );
    assert.equal(saf.counters.replayed, 11);
    saf.setLink(false);
    forwarded.length = 0;
    saf.replayRequested();
    assert.equal(saf.state, 'down');
    assert.deepEqual(forwarded, []);
    saf.close();
  });

  test('the records of one turn are journaled in one write, then forwarded; `journaled` waits for the write', async () => {
    const { saf, spool, forwarded } = buffer(tempDir('saf'), 60_000);
    saf.setLink(true);
    await waitFor('caught up', () => saf.state === 'up');
    const append = spool.append.bind(spool);
    const writes: number[] = [];
    spool.append = (records) => {
      writes.push(records.length);
      append(records);
    };
    const journaled: number[] = [];
    for (let i = 0; i < 100; i++) saf.offer([`r${i}`], () => journaled.push(spool.length));
    assert.equal(writes.length, 0, 'not one write per record');
    assert.deepEqual(forwarded, []);
    assert.deepEqual(journaled, []);
    await turn();
    assert.deepEqual(writes, [100]);
    assert.ok(journaled.length === 100 && journaled.every((n) => n === 100), 'called once all were on disk');
    assert.deepEqual(
      forwarded,
      Array.from({ length: 100 }, (_, i) => `r${i}`),
    );
    saf.close();
  });

  test('a record that cannot be journaled: refused up front if too long, or `journaled` gets the write error', async () => {
    const { saf, spool, forwarded } = buffer(tempDir('saf'), 60_000);
    assert.throws(() => saf.offer(['ok', 'x'.repeat(2 << 20)]), /longer than/);
    assert.equal(saf.backlog, 0, 'nothing of the refused message was queued');
    spool.append = () => {
      throw new Error('ENOSPC: no space left on device');
    };
    const errors: (Error | undefined)[] = [];
    saf.offer(['r0'], (err) => errors.push(err));
    await turn();
    assert.match(String(errors[0]?.message), /ENOSPC/);
    assert.deepEqual(forwarded, []);
    saf.close();
  });

  test('records older than the overlap leave the journal; the journal survives a restart', async () => {
    const dir = tempDir('saf');
    const first = buffer(dir, 50);
    first.saf.setLink(true);
    await waitFor('caught up', () => first.saf.state === 'up');
    for (let i = 0; i < 5; i++) first.saf.offer([`old${i}`]);
    await turn();
    assert.equal(first.spool.length, 5);
    await waitFor('the overlap to pass', () => first.spool.length === 0, 5000);
    first.saf.setLink(false);
    for (let i = 0; i < 5; i++) first.saf.offer([`new${i}`]);
    first.saf.close();
    const second = buffer(dir, 50);
    assert.equal(second.saf.backlog, 5);
    second.saf.setLink(true);
    await waitFor('the replay', () => second.saf.state === 'up');
    assert.deepEqual(second.forwarded, ['new0', 'new1', 'new2', 'new3', 'new4']);
    second.saf.close();
  });

  test('with broker acknowledgements: nothing leaves the spool unacknowledged, and at most the window is in flight', async () => {
    const { saf, spool, forwarded, tokens } = buffer(tempDir('saf'), 20, { window: 5 });
    saf.setLink(true);
    await waitFor('caught up', () => saf.state === 'up');
    for (let i = 0; i < 3; i++) saf.offer([`r${i}`]);
    await turn();
    assert.deepEqual(forwarded, ['r0', 'r1', 'r2']);
    for (let i = 3; i < 20; i++) saf.offer([`r${i}`]);
    await new Promise((r) => setTimeout(r, 100)); // well past the overlap
    assert.equal(forwarded.length, 5, 'the window is full: the rest waits');
    assert.equal(saf.inFlight, 5);
    assert.equal(spool.length, 20, 'nothing unacknowledged was released, whatever the overlap');
    while (forwarded.length < 20 || saf.inFlight > 0) {
      const inFlight = tokens.splice(0);
      assert.ok(inFlight.length <= 5, `${inFlight.length} in flight`);
      for (const token of inFlight) saf.acknowledged(token);
      await turn();
      await turn();
    }
    assert.deepEqual(
      forwarded,
      Array.from({ length: 20 }, (_, i) => `r${i}`),
    );
    await waitFor('acknowledged records released after the overlap', () => spool.length === 0);
    saf.close();
  });

  test('several records in one message: the window counts records; a group leaves once each of its messages is acknowledged', async () => {
    const messages: { records: string[]; token: number }[] = [];
    const spool = new Spool(tempDir('saf'), { segmentBytes: 1024, maxBytes: 1 << 20 });
    // Two messages per call, as teleinfo-spool does for two topics: even records in one, odd ones in the other.
    const saf = new SpoolForwarder(
      spool,
      { overlapMs: 5, replayBatch: 100, window: 10, release: 'broker' },
      (records, _seqs, token) => {
        messages.push({ records: records.filter((_, i) => i % 2 === 0), token });
        messages.push({ records: records.filter((_, i) => i % 2 === 1), token });
        return { messages: 2, refused: [] };
      },
    );
    for (let i = 0; i < 25; i++) saf.offer([`r${i}`]);
    await turn();
    saf.setLink(true);
    await waitFor('the first group', () => messages.length === 2);
    assert.deepEqual(
      messages.map((m) => m.records),
      [
        ['r0', 'r2', 'r4', 'r6', 'r8'],
        ['r1', 'r3', 'r5', 'r7', 'r9'],
      ],
    );
    assert.equal(saf.inFlight, 10, 'the window is full with 10 records in 2 messages');
    saf.acknowledged(messages[0].token);
    await new Promise((r) => setTimeout(r, 50)); // past the overlap
    assert.equal(messages.length, 2, 'half a group acknowledged frees nothing');
    assert.equal(spool.length, 25);
    saf.acknowledged(messages[1].token);
    await waitFor('the next group', () => messages.length === 4);
    await waitFor('the first group released', () => spool.length === 15);
    while (saf.state !== 'up' || saf.inFlight > 0) {
      const last = messages.at(-1)!;
      saf.acknowledged(last.token);
      saf.acknowledged(last.token);
      await turn();
    }
    assert.deepEqual(
      messages.flatMap((m) => m.records).sort((a, b) => Number(a.slice(1)) - Number(b.slice(1))),
      Array.from({ length: 25 }, (_, i) => `r${i}`),
    );
    await waitFor('all released', () => spool.length === 0);
    saf.close();
  });

  test('a replay request while messages of several records are in flight: their late acknowledgements free their records', async () => {
    const messages: number[] = [];
    const spool = new Spool(tempDir('saf'), { segmentBytes: 1024, maxBytes: 1 << 20 });
    const saf = new SpoolForwarder(
      spool,
      { overlapMs: 60_000, replayBatch: 100, window: 8, release: 'broker' },
      (_records, _seqs, token) => {
        messages.push(token);
        return { messages: 1, refused: [] };
      },
    );
    saf.setLink(true);
    await waitFor('caught up', () => saf.state === 'up');
    saf.offer(['r0', 'r1', 'r2', 'r3', 'r4', 'r5']);
    await turn();
    assert.equal(saf.inFlight, 6);
    const before = messages.splice(0);
    saf.replayRequested(); // the 6 are forwarded again, behind the 6 still in flight
    assert.equal(saf.inFlight, 6, 'the stale message still holds its 6 records of the window');
    for (const token of before) saf.acknowledged(token);
    assert.equal(saf.inFlight, 0, 'its late acknowledgement frees them');
    await waitFor('forwarded again', () => messages.length > 0);
    saf.close();
  });

  test('an acknowledgement from before a link drop is ignored; the replay starts from the head', async () => {
    const { saf, spool, forwarded, tokens } = buffer(tempDir('saf'), 10, { window: 10 });
    saf.setLink(true);
    await waitFor('caught up', () => saf.state === 'up');
    saf.offer(['r0', 'r1']);
    await turn();
    const old = tokens.splice(0);
    saf.setLink(false);
    saf.setLink(true);
    await waitFor('the replay', () => saf.state === 'up');
    for (const token of old) saf.acknowledged(token);
    await new Promise((r) => setTimeout(r, 50));
    assert.equal(spool.length, 2, 'still waiting for the acknowledgements of the replay');
    for (const token of tokens.splice(0)) saf.acknowledged(token);
    await waitFor('released', () => spool.length === 0);
    assert.deepEqual(forwarded, ['r0', 'r1', 'r0', 'r1']);
    saf.close();
  });

  test('a record that cannot be forwarded is quarantined, never thrown out of the replay, and released', async () => {
    const dir = tempDir('saf');
    const { saf, spool, forwarded } = buffer(dir, 10);
    saf.offer(['r0', 'bad record', 'r2']);
    await turn();
    saf.setLink(true);
    await waitFor('the replay', () => saf.state === 'up');
    assert.deepEqual(forwarded, ['r0', 'r2']);
    assert.equal(saf.counters.undeliverable, 1);
    assert.equal(spool.counters.quarantines, 1);
    assert.match(fs.readFileSync(spool.quarantineFile, 'utf8'), /cannot be forwarded: not a record/);
    await waitFor('released', () => spool.length === 0);
    saf.close();
  });

  test('an overlap of 0 or less is refused', () => {
    const spool = new Spool(tempDir('saf'));
    for (const overlapMs of [0, -5, NaN])
      assert.throws(
        () =>
          new SpoolForwarder(spool, { overlapMs, replayBatch: 1, window: 1, release: 'overlap' }, () => ({
            messages: 0,
            refused: [],
          })),
        /more than 0/,
      );
  });
});

describe("spool forwarder released by the servers' acknowledgements", () => {
  /** A forwarder whose link records what it sends, with each record's number. */
  function numbered(dir: string, window = 100, stallMs = 60_000) {
    const sent: { record: string; seq: number; token: number; at: number }[] = [];
    const spool = new Spool(dir, { segmentBytes: 1024, maxBytes: 1 << 20 });
    const saf = new SpoolForwarder(
      spool,
      { release: 'server', overlapMs: 1, stallMs, replayBatch: 7, window },
      (records, seqs, token) => {
        records.forEach((record, i) => sent.push({ record, seq: seqs[i], token, at: Date.now() }));
        return { messages: records.length, refused: [] };
      },
    );
    const puback = () => {
      // One message per record: a PUBACK for each.
      for (const { token } of sent) saf.acknowledged(token);
    };
    return { saf, spool, sent, puback };
  }

  test('numbered from the head, kept until a server stored them, in whatever order servers say so', async () => {
    const { saf, spool, sent, puback } = numbered(tempDir('saf'));
    saf.setLink(true);
    await waitFor('caught up', () => saf.state === 'up');
    saf.offer(['r0', 'r1', 'r2', 'r3', 'r4', 'r5']);
    await turn();
    assert.deepEqual(
      sent.map((s) => s.seq),
      [0, 1, 2, 3, 4, 5],
    );
    puback();
    await new Promise((r) => setTimeout(r, 30));
    assert.equal(spool.length, 6, 'the broker having them releases nothing');
    assert.equal(
      saf.serverAcked('0000000000000000', [[0, 5]]),
      0,
      "another stream's acknowledgement is ignored",
    );
    assert.equal(
      saf.serverAcked(spool.stream, [[3, 5]]),
      0,
      'a second server stored the last three: the head waits',
    );
    assert.equal(saf.serverAcked(spool.stream, [[0, 2]]), 6, 'the first three: everything goes');
    assert.equal(spool.length, 0);
    assert.equal(spool.headSeq, 6);
    assert.equal(saf.counters.stored, 6);
    saf.close();
  });

  test('a replay request sends what no server acknowledged, from the first, skipping what one did', async () => {
    const { saf, spool, sent, puback } = numbered(tempDir('saf'));
    saf.setLink(true);
    await waitFor('caught up', () => saf.state === 'up');
    saf.offer(Array.from({ length: 10 }, (_, i) => `r${i}`));
    await turn();
    puback();
    saf.serverAcked(spool.stream, [
      [2, 4],
      [8, 8],
    ]);
    sent.length = 0;
    saf.replayRequested();
    await waitFor('the replay', () => saf.state === 'up');
    assert.deepEqual(
      sent.map((s) => s.record),
      ['r0', 'r1', 'r5', 'r6', 'r7', 'r9'],
    );
    puback();
    saf.serverAcked(spool.stream, [[0, 9]]);
    assert.equal(spool.length, 0);
    saf.close();
  });

  test('the oldest unacknowledged while servers acknowledge others, longer than the stall: sent again, then the wait doubles', async () => {
    const { saf, spool, sent, puback } = numbered(tempDir('saf'), 100, 150);
    saf.setLink(true);
    await waitFor('caught up', () => saf.state === 'up');
    saf.offer(['r0']);
    await turn();
    saf.offer(['r1']);
    await turn();
    puback();
    // Nothing acknowledged at all: no server is storing, so nothing is sent again (each asks when it is back).
    await new Promise((r) => setTimeout(r, 400));
    assert.equal(sent.length, 2);
    saf.serverAcked(spool.stream, [[1, 1]]);
    await waitFor('r0 sent again after the stall, not r1', () => sent.length === 3, 5000);
    assert.equal(sent[2].record, 'r0');
    puback();
    // A server acknowledging after the resend, in the same millisecond as it or later.
    saf.serverAcked(spool.stream, [[1, 1]]);
    await waitFor('sent again after twice the stall', () => sent.length === 4, 5000);
    // Each wait is counted from when the record was sent (to the millisecond).
    const second = sent[3].at - sent[2].at + 1;
    assert.equal(saf.counters.stalls, 2);
    assert.ok(second >= 300, `the second wait (${second} ms) is at least twice the stall`);
    puback();
    saf.serverAcked(spool.stream, [[0, 0]]);
    assert.equal(spool.length, 0);
    saf.close();
  });

  test('numbers survive a restart: acknowledgements of what was sent before it release the same records', async () => {
    const dir = tempDir('saf');
    const before = numbered(dir);
    before.saf.offer(['r0']);
    await turn();
    before.saf.setLink(true);
    await waitFor('caught up', () => before.saf.state === 'up');
    before.saf.offer(['r1', 'r2']);
    await turn();
    assert.equal(before.sent.length, 3);
    before.puback();
    before.saf.serverAcked(before.spool.stream, [[0, 0]]);
    const stream = before.spool.stream;
    before.saf.close();
    const after = numbered(dir);
    assert.equal(after.spool.stream, stream);
    assert.equal(after.spool.headSeq, 1);
    after.saf.setLink(true);
    await waitFor('sent again', () => after.sent.length === 2);
    assert.deepEqual(
      after.sent.map((s) => [s.record, s.seq]),
      [
        ['r1', 1],
        ['r2', 2],
      ],
    );
    after.saf.offer(['r3']);
    await turn();
    assert.equal(after.sent.at(-1)!.seq, 3);
    after.puback();
    after.saf.serverAcked(stream, [[1, 3]]);
    assert.equal(after.spool.length, 0);
    after.saf.close();
    // A spool made afresh in another folder is another stream: old acknowledgements cannot release its records.
    assert.notEqual(numbered(tempDir('saf')).spool.stream, stream);
  });

  test('stored before its PUBACK came back: released, and its room in the window freed by the late PUBACK', async () => {
    const { saf, spool, sent } = numbered(tempDir('saf'), 4);
    saf.setLink(true);
    await waitFor('caught up', () => saf.state === 'up');
    saf.offer(['r0', 'r1', 'r2', 'r3']);
    await turn();
    assert.equal(saf.inFlight, 4);
    saf.serverAcked(spool.stream, [[0, 3]]);
    assert.equal(spool.length, 0);
    assert.equal(saf.inFlight, 4, 'the broker has not said it has them yet');
    for (const { token } of sent) saf.acknowledged(token);
    assert.equal(saf.inFlight, 0);
    saf.close();
  });

  test('numbers a server could not have had are ignored', async () => {
    const { saf, spool } = numbered(tempDir('saf'));
    saf.offer(['r0']);
    await turn();
    assert.equal(saf.serverAcked(spool.stream, [[0, 1_000_000]]), 0, 'nothing was sent');
    saf.setLink(true);
    await waitFor('sent', () => saf.state === 'up');
    assert.equal(saf.serverAcked(spool.stream, [[1, 1_000_000]]), 0, 'numbers past the tail');
    assert.equal(saf.serverAcked(spool.stream, [[0, 0]]), 1);
    saf.close();
  });
});

test('released by servers: a spool full while the servers are away drops its oldest, and the rest is numbered and released as sent', async () => {
  const sent: { record: string; seq: number; token: number }[] = [];
  const spool = new Spool(tempDir('saf'), { segmentBytes: 1024, maxBytes: 4096 });
  const saf = new SpoolForwarder(
    spool,
    { release: 'server', overlapMs: 1, stallMs: 60_000, replayBatch: 7, window: 1000 },
    (records, seqs, token) => {
      records.forEach((record, i) => sent.push({ record, seq: seqs[i], token }));
      return { messages: records.length, refused: [] };
    },
  );
  saf.setLink(true);
  await waitFor('caught up', () => saf.state === 'up');
  saf.offer(['r0', 'r1']);
  await turn();
  // The servers never answer: the spool fills and drops its oldest segments, r0 and r1 among them.
  for (let i = 2; i < 400; i++) saf.offer([`r${i}-${'x'.repeat(40)}`]);
  await turn();
  assert.ok(spool.counters.dropped > 0, 'dropped');
  assert.equal(spool.headSeq, spool.counters.dropped, 'the head is numbered past what was dropped');
  saf.serverAcked(spool.stream, [[0, 399]]);
  assert.equal(spool.length, 0, 'what was sent and acknowledged is released, whatever was dropped before it');
  assert.deepEqual(
    sent.map((s) => s.seq),
    Array.from({ length: 400 }, (_, i) => i),
    'each record went once, with its number',
  );
  saf.close();
});
