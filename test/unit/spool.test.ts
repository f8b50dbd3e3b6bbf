import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { describe, test } from 'node:test';
import {
  messageRecord,
  payloadArray,
  Spool,
  spoolDir,
  splitMessageRecord,
  type SpoolIo,
} from '../../nodes/lib/spool';
import { tempDir } from '../support/services';
import { hcReading } from '../support/readings';
import { failingIo, rebuild, recordingIo, type Cut, type SpoolOp } from '../support/spool-io';

const records = (from: number, n: number) => Array.from({ length: n }, (_, i) => `line ${from + i}`);
const segmentFiles = (dir: string) => fs.readdirSync(dir).filter((f) => f.endsWith('.spool'));
/** Bytes of the segment files at or after the saved head's (those before it are acknowledged leftovers). */
function segmentBytes(dir: string): number {
  let first = 0;
  try {
    first = (JSON.parse(fs.readFileSync(path.join(dir, 'head.json'), 'utf8')) as { segment: number }).segment;
  } catch {
    // no head saved yet
  }
  return segmentFiles(dir)
    .filter((f) => Number(f.slice(0, 12)) >= first)
    .reduce((n, f) => n + fs.statSync(path.join(dir, f)).size, 0);
}

/** Everything a spool holds, acknowledged as it is read. */
function drain(spool: Spool): string[] {
  const out: string[] = [];
  for (;;) {
    const b = spool.peek(1000);
    if (b.count === 0) return out;
    out.push(...b.lines);
    spool.ack(b.end);
  }
}

describe('spool (disk-backed FIFO of checked records)', () => {
  test('records come back in order across segments and survive reopening until acknowledged', () => {
    const dir = tempDir('spool');
    const spool = new Spool(dir, { segmentBytes: 1024, maxBytes: 1 << 20 });
    for (let i = 0; i < 50; i++) spool.append(records(i * 10, 10));
    assert.equal(spool.length, 500);
    const first = spool.peek(120);
    assert.deepEqual(first.lines, records(0, 120));
    assert.equal(first.data.toString(), records(0, 120).join('\n') + '\n', 'a line-protocol body as it is');
    assert.equal(spool.ack(first.end), 120);
    spool.close();
    const reopened = new Spool(dir, { segmentBytes: 1024, maxBytes: 1 << 20 });
    assert.equal(reopened.length, 380);
    assert.equal(reopened.counters.recovered, 380);
    assert.deepEqual(drain(reopened), records(120, 380));
    assert.equal(reopened.length, 0);
    assert.ok(segmentFiles(dir).length <= 1, 'finished segments are deleted');
    assert.equal(reopened.counters.quarantines, 0);
  });

  test('records of any UTF-8 come back as they went in, across reopening', () => {
    const dir = tempDir('spool');
    const spool = new Spool(dir, { segmentBytes: 256 });
    // One to four bytes per character (𝄞 is two UTF-16 units and four UTF-8 bytes), and an empty record.
    const written = [
      'é',
      '',
      'Zählerstand 12 €',
      '𝄞'.repeat(40),
      'ascii',
      '日本語'.repeat(30),
      ...records(0, 20),
    ];
    spool.append(written);
    const whole = spool.peek(written.length);
    assert.deepEqual(whole.lines, written);
    assert.equal(whole.data.toString('utf8'), written.join('\n') + '\n');
    spool.close();
    const reopened = new Spool(dir, { segmentBytes: 256 });
    assert.deepEqual(drain(reopened), written);
    assert.equal(reopened.counters.quarantines, 0, "every frame's length and CRC match its bytes");
  });

  test('small peeks read little, and still return records longer than what they read first', () => {
    const spool = new Spool(tempDir('spool'), { segmentBytes: 4 << 20 });
    const big = (n: number, c: string) => c.repeat(n);
    const written = ['a', big(300_000, 'b'), 'c', big(900_000, 'd'), ...records(0, 500), big(70_000, 'e')];
    spool.append(written);
    const got: string[] = [];
    for (let max = 1; ; max = (max % 3) + 1) {
      const b = spool.peek(max);
      if (b.count === 0) break;
      got.push(...b.lines);
      spool.ack(b.end);
    }
    assert.equal(got.length, written.length);
    assert.ok(
      got.every((r, i) => r === written[i]),
      'every record, whole and in order',
    );
    assert.equal(spool.counters.quarantines, 0, 'a long record is not mistaken for damage');
  });

  test('a torn record at the end (a power cut mid-write) is quarantined on opening; the ones before are kept', () => {
    const dir = tempDir('spool');
    const spool = new Spool(dir);
    spool.append(records(0, 3));
    spool.close();
    const torn = Buffer.concat([Buffer.from('{"meter":"02186134'), Buffer.alloc(512)]);
    fs.appendFileSync(path.join(dir, segmentFiles(dir)[0]), torn);
    const reopened = new Spool(dir);
    assert.deepEqual(reopened.peek(10).lines, records(0, 3));
    assert.equal(reopened.counters.quarantinedBytes, torn.length);
    const quarantined = fs
      .readFileSync(reopened.quarantineFile, 'utf8')
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as { bytes: number; base64: string; reason: string });
    assert.equal(quarantined.length, 1);
    assert.deepEqual(
      Buffer.from(quarantined[0].base64, 'base64'),
      torn,
      'the damaged bytes, kept for a person',
    );
    reopened.append(['after']);
    assert.deepEqual(reopened.peek(10).lines, [...records(0, 3), 'after']);
    reopened.close();
    assert.equal(new Spool(dir).counters.quarantines, 0, 'the segment was repaired: nothing damaged is left');
  });

  test('a damaged record inside a segment costs only itself; the head keeps its place', () => {
    const dir = tempDir('spool');
    const spool = new Spool(dir);
    spool.append(records(0, 10));
    spool.ack(spool.peek(2).end);
    spool.close();
    const file = path.join(dir, segmentFiles(dir)[0]);
    const data = fs.readFileSync(file);
    const at = data.indexOf('line 5');
    data[at + 2] ^= 0x20; // one flipped bit: its checksum no longer matches
    fs.writeFileSync(file, data);
    const reopened = new Spool(dir);
    assert.deepEqual(drain(reopened), ['line 2', 'line 3', 'line 4', 'line 6', 'line 7', 'line 8', 'line 9']);
    assert.equal(reopened.counters.quarantines, 1);
  });

  test('segments of the first format (one record per line) are read and migrated, from the saved head', () => {
    const dir = tempDir('spool');
    fs.writeFileSync(path.join(dir, '000000000003.spool'), 'a 1\nb 2\nc 3\nd 4\ntorn');
    fs.writeFileSync(path.join(dir, 'head.json'), JSON.stringify({ segment: 3, offset: 8, lines: 2 }));
    const spool = new Spool(dir);
    assert.equal(spool.length, 2);
    assert.equal(spool.counters.quarantinedBytes, 4, 'the torn line');
    spool.append(['e 5']);
    assert.deepEqual(drain(spool), ['c 3', 'd 4', 'e 5']);
  });

  test('when full, whole segments are dropped from the oldest end and counted', () => {
    const spool = new Spool(tempDir('spool'), { segmentBytes: 1024, maxBytes: 4096 });
    for (let i = 0; i < 100; i++) spool.append(records(i * 10, 10));
    assert.ok(spool.bytes <= 4096, `${spool.bytes} bytes`);
    assert.equal(spool.counters.dropped + spool.length, 1000);
    assert.ok(spool.counters.dropped > 0);
    const head = spool.peek(1).lines[0];
    assert.equal(head, `line ${spool.counters.dropped}`, 'the oldest were dropped, the newest kept');
  });

  test('an acknowledgement of records dropped meanwhile releases nothing, and says so', () => {
    const spool = new Spool(tempDir('spool'), { segmentBytes: 1024, maxBytes: 4096 });
    spool.append(records(0, 10));
    const inFlight = spool.peek(10);
    for (let i = 1; i < 100; i++) spool.append(records(i * 10, 10));
    assert.equal(spool.ack(inFlight.end), 0);
    assert.equal(spool.counters.acked, 0);
  });

  test('power durability: commit calls back after a flush of the segment, grouped; the head is replaced durably', async () => {
    const syncs: number[] = [];
    const durableWrites: boolean[] = [];
    let dirSyncs = 0;
    const io: SpoolIo = {
      ...recordingIo([]),
      datasync: (fd, done) => {
        syncs.push(fd);
        fs.fdatasync(fd, (err) => done(err));
      },
      syncDir: () => void dirSyncs++,
      writeFile: (file, data, durable) => {
        durableWrites.push(durable);
        fs.writeFileSync(file, data);
      },
    };
    const spool = new Spool(tempDir('spool'), { durability: 'power', commitMs: 20, io });
    const committed: number[] = [];
    const started = Date.now();
    for (let i = 0; i < 5; i++) {
      spool.append([`r${i}`]);
      spool.commit(() => committed.push(Date.now() - started));
    }
    assert.deepEqual(committed, [], 'nothing is durable before the flush');
    await new Promise((r) => setTimeout(r, 100));
    assert.equal(committed.length, 5);
    assert.equal(syncs.length, 1, 'one flush for the group');
    assert.ok(dirSyncs >= 1, 'the new segment file name was flushed too');
    spool.ack(spool.peek(5).end);
    assert.equal(durableWrites.at(-1), true, 'the head file is flushed before its rename');
    spool.close();
  });

  test('full disk: an append fails cleanly, a head save or a flush fails without throwing; all resume by themselves', async () => {
    const failing = new Set<'write' | 'writeFile' | 'rename' | 'unlink' | 'datasync'>();
    const faults: string[] = [];
    const dir = tempDir('spool');
    const spool = new Spool(dir, {
      segmentBytes: 1024,
      durability: 'power',
      commitMs: 5,
      io: failingIo(failing),
      onFault: (e) => faults.push(`${e.kind} ${e.code}`),
    });
    spool.append(records(0, 100));
    failing.add('write');
    assert.throws(
      () => spool.append(['refused']),
      (e: Error & { diskFull?: boolean }) => e.diskFull === true,
    );
    assert.equal(spool.length, 100, 'nothing of the refused append is in the spool');
    assert.equal(spool.problem?.diskFull, true);
    failing.delete('write');
    failing.add('writeFile');
    const acked = spool.peek(70);
    assert.equal(spool.ack(acked.end), 70, 'delivered records are released in memory');
    assert.ok(segmentFiles(dir).length > 1, 'segment files stay until a head that passed them is saved');
    failing.add('datasync');
    spool.append(['a']);
    const err = await new Promise<Error | undefined>((r) => spool.commit(r));
    assert.match(String(err?.message), /EIO/);
    failing.clear();
    spool.append(['b']);
    assert.equal(await new Promise<Error | undefined>((r) => spool.commit(r)), undefined);
    spool.ack(spool.peek(5).end);
    assert.equal(spool.problem, null, 'space is back: nothing left to report');
    assert.deepEqual([...new Set(faults)].sort(), ['append ENOSPC', 'head ENOSPC', 'sync EIO']);
    spool.close();
    const reopened = new Spool(dir);
    assert.deepEqual(drain(reopened), [...records(75, 25), 'a', 'b']);
    assert.equal(segmentFiles(dir).length, 1, 'the passed segment went once the head was saved');
  });

  test('crash consistency: at any cut of any write, reopening returns exactly the unacknowledged records, in order', () => {
    const log: SpoolOp[] = [];
    const dir = tempDir('spool-run');
    const spool = new Spool(dir, { segmentBytes: 1024, io: recordingIo(log) });
    const written: string[] = [];
    /** After how many operations each append is whole, and each acknowledgement's head saved. */
    const appends: { ops: number; total: number }[] = [];
    const acks: { ops: number; total: number }[] = [];
    let acked = 0;
    for (let i = 0; i < 60; i++) {
      const batch = Array.from(
        { length: 1 + (i % 4) },
        (_, k) => `r${i}.${k} ${'x'.repeat((i * 37 + k * 11) % 90)}`,
      );
      spool.append(batch);
      written.push(...batch);
      appends.push({ ops: log.length, total: written.length });
      if (i % 3 === 2) {
        const b = spool.peek(4);
        spool.ack(b.end);
        acked += b.count;
        const rename = log.map((op) => op.kind === 'rename' && op.to === 'head.json').lastIndexOf(true);
        acks.push({ ops: rename + 1, total: acked });
      }
    }
    spool.close();

    const cuts: Cut[] = [];
    for (let at = 0; at <= log.length; at++) cuts.push({ at });
    const writes = log
      .map((op, i) => ({ op, i }))
      .filter(({ op }) => op.kind === 'write' || op.kind === 'writeFile');
    for (const { op, i } of writes.slice(-8)) {
      const length = 'data' in op ? op.data.length : 0;
      for (let bytes = 0; bytes <= length; bytes++) {
        cuts.push({ at: i, bytes });
        if (bytes % 5 === 0) cuts.push({ at: i, bytes, tail: 'nul' }, { at: i, bytes, tail: 'garbage' });
      }
    }
    let seed = 7;
    for (let n = 0; n < 200; n++) {
      seed = (seed * 48271) % 2147483647;
      const { op, i } = writes[seed % writes.length];
      const length = 'data' in op ? op.data.length : 0;
      cuts.push({
        at: i,
        bytes: seed % (length + 1),
        tail: (['absent', 'nul', 'garbage'] as const)[seed % 3],
      });
    }

    let damagedCuts = 0;
    for (const [n, cut] of cuts.entries()) {
      const where = `cut ${JSON.stringify(cut)} (${n} of ${cuts.length})`;
      const copy = tempDir('spool-cut');
      rebuild(log, cut, copy, n + 1);
      const before = segmentBytes(copy);
      let reopened: Spool;
      try {
        reopened = new Spool(copy, { segmentBytes: 1024 });
      } catch (e) {
        assert.fail(`${where}: opening threw ${(e as Error).message}`);
      }
      const damaged = before - segmentBytes(copy);
      assert.equal(reopened.counters.quarantinedBytes, damaged, `${where}: every damaged byte counted`);
      if (damaged > 0) damagedCuts++;
      const got = drain(reopened);
      reopened.close();
      const whole = appends.filter((a) => a.ops <= cut.at).at(-1)?.total ?? 0;
      const head = acks.filter((a) => a.ops <= cut.at).at(-1)?.total ?? 0;
      const torn = appends.find((a) => a.ops > cut.at)?.total ?? whole;
      assert.deepEqual(
        got,
        written.slice(head, head + got.length),
        `${where}: records in order from the saved head`,
      );
      assert.ok(
        head + got.length >= whole,
        `${where}: every whole append is there (${head + got.length} < ${whole})`,
      );
      assert.ok(head + got.length <= torn, `${where}: nothing that was not written`);
      fs.rmSync(copy, { recursive: true, force: true });
    }
    assert.ok(damagedCuts > 100, `torn tails were exercised (${damagedCuts} cuts)`);
    console.log(
      `# crash consistency: ${cuts.length} cuts of ${log.length} operations, ${damagedCuts} with damaged bytes`,
    );
  });
});

describe('spool folders', () => {
  test('a node id never puts a spool outside its folder', () => {
    for (const id of ['.', '..', '...', '../../etc', 'a/b', 'ab12.cd34'])
      assert.equal(path.dirname(spoolDir('/data/teleinfo-spool', id)), '/data/teleinfo-spool', id);
    assert.equal(spoolDir('/data', 'ab12.cd34'), '/data/ab12.cd34', 'ordinary ids keep their folder');
  });
});

describe('teleinfo-spool records ({topic, payload} as JSON text)', () => {
  test("the payload's JSON text comes back as spooled, arrays of them join into one JSON array", () => {
    const reading = hcReading('021861348497', Date.parse('2026-11-20T00:00:00Z'), 3);
    const split = splitMessageRecord(messageRecord('teleinfo/pi-1/021861348497/reading', reading));
    assert.deepEqual(split, {
      topic: 'teleinfo/pi-1/021861348497/reading',
      payload: JSON.stringify(reading),
    });
    const two = payloadArray([JSON.stringify(reading), JSON.stringify({ ...reading, meter: 'B' })]);
    assert.deepEqual(JSON.parse(two), [reading, { ...reading, meter: 'B' }]);
  });

  test('an escaped topic or keys in another order take the slow way, and come out the same', () => {
    for (const topic of ['a"b', 'a\\', 'x","payload":"y', 'é/ü'])
      assert.deepEqual(splitMessageRecord(messageRecord(topic, { v: [1, 'two'] })), {
        topic,
        payload: '{"v":[1,"two"]}',
      });
    assert.deepEqual(splitMessageRecord('{"payload":{"v":1},"topic":"t"}'), {
      topic: 't',
      payload: '{"v":1}',
    });
  });

  test('anything else is refused with the reason', () => {
    assert.match(splitMessageRecord('{"topic":"t","payload":') as string, /JSON/);
    assert.equal(splitMessageRecord('{"topic":"t"}'), 'not a {topic, payload} record');
    assert.equal(splitMessageRecord('{"topic":1,"payload":2}'), 'not a {topic, payload} record');
    assert.equal(splitMessageRecord('null'), 'not a {topic, payload} record');
  });
});
