import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { describe, test } from 'node:test';
import { Spool } from '../../nodes/lib/spool';
import { tempDir } from '../support/services';

const records = (from: number, n: number) => Array.from({ length: n }, (_, i) => `line ${from + i}`);

describe('spool (disk-backed FIFO)', () => {
  test('records come back in order across segments and survive reopening until acknowledged', () => {
    const dir = tempDir('spool');
    const spool = new Spool(dir, { segmentBytes: 1024, maxBytes: 1 << 20 });
    for (let i = 0; i < 50; i++) spool.append(records(i * 10, 10));
    assert.equal(spool.length, 500);
    const first = spool.peek(120);
    assert.deepEqual(first.lines, records(0, 120));
    spool.ack(first.end, 120);
    spool.close();
    const reopened = new Spool(dir, { segmentBytes: 1024, maxBytes: 1 << 20 });
    assert.equal(reopened.length, 380);
    assert.equal(reopened.counters.recovered, 380);
    const rest: string[] = [];
    for (;;) {
      const b = reopened.peek(77);
      if (b.lines.length === 0) break;
      rest.push(...b.lines);
      reopened.ack(b.end, b.lines.length);
    }
    assert.deepEqual(rest, records(120, 380));
    assert.equal(reopened.length, 0);
    assert.ok(
      fs.readdirSync(dir).filter((f) => f.endsWith('.spool')).length <= 1,
      'finished segments are deleted',
    );
  });

  test('a record cut by a crash mid-write is discarded on reopening; the ones before it are kept', () => {
    const dir = tempDir('spool');
    const spool = new Spool(dir);
    spool.append(records(0, 3));
    spool.close();
    const file = fs.readdirSync(dir).find((f) => f.endsWith('.spool'))!;
    fs.appendFileSync(path.join(dir, file), 'line 3 half wri');
    const reopened = new Spool(dir);
    assert.deepEqual(reopened.peek(10).lines, records(0, 3));
    assert.equal(reopened.counters.truncatedBytes, 15);
    reopened.append(['after']);
    assert.deepEqual(reopened.peek(10).lines, [...records(0, 3), 'after']);
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
});
