import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import {
  WRITES_IN_FLIGHT,
  WritePipeline,
  type PipelineListener,
  type PipelineStatus,
} from '../../nodes/lib/influx/pipeline';
import type { LineBatch, WriteResult } from '../../nodes/lib/influx/transport';
import { DEFAULT_BACKOFF } from '../../nodes/lib/retry';
import { Spool } from '../../nodes/lib/spool';
import { tempDir, waitFor } from '../support/services';

/** A pipeline listener that hears nothing. */
const quiet: PipelineListener = {
  status: () => undefined,
  rejected: () => undefined,
  dropped: () => undefined,
  failing: () => undefined,
};

/** The write pipeline alone, with an in-memory transport standing for InfluxDB (this tests the spool side). */
function pipeline() {
  const spool = new Spool(tempDir('pipeline'), { maxBytes: 1 << 20 });
  const written: string[] = [];
  const statuses: PipelineStatus[] = [];
  const writer = new WritePipeline(
    spool,
    {
      write: (batch: LineBatch) => {
        written.push(...batch.lines);
        return Promise.resolve({ verdict: 'written', message: 'ok' });
      },
      close: () => Promise.resolve(),
    },
    { batchSize: 100, flushMs: 10, backoff: DEFAULT_BACKOFF },
    { ...quiet, status: (s) => statuses.push(s) },
  );
  return { spool, writer, written, statuses };
}

describe('InfluxDB write pipeline, spool side', () => {
  test('a spool that cannot be written (full disk): each message of that turn gets the error, nothing crashes', async () => {
    const { spool, writer, written, statuses } = pipeline();
    const errors: (Error | undefined)[] = [];
    writer.accept(['teleinfo v=1i 1'], (err) => errors.push(err));
    await waitFor('the first line written', () => written.length === 1 && errors.length === 1);
    assert.equal(errors[0], undefined);

    const append = spool.append.bind(spool);
    spool.append = () => {
      throw new Error('ENOSPC: no space left on device');
    };
    writer.accept(['teleinfo v=2i 2'], (err) => errors.push(err));
    writer.accept(['teleinfo v=3i 3', 'teleinfo v=4i 4'], (err) => errors.push(err));
    await waitFor('both messages told', () => errors.length === 3);
    assert.match(String(errors[1]?.message), /3 lines lost: ENOSPC/);
    assert.match(String(errors[2]?.message), /3 lines lost: ENOSPC/);
    assert.equal(writer.status().dropped, 3);
    assert.match(String(statuses.at(-1)?.lastError), /ENOSPC/);

    spool.append = append; // the disk has room again: the pipeline carries on
    writer.accept(['teleinfo v=5i 5'], (err) => errors.push(err));
    await waitFor('the next line written', () => written.length === 2 && errors.length === 4);
    assert.deepEqual(written, ['teleinfo v=1i 1', 'teleinfo v=5i 5']);
    assert.equal(errors[3], undefined);
    await writer.close(1000);
  });
});

describe('InfluxDB write pipeline, writes in flight', () => {
  /** A transport standing for InfluxDB whose answers the test gives, one request at a time. */
  function heldTransport() {
    const requests: { lines: readonly string[]; answer: (verdict: 'written' | 'retry') => void }[] = [];
    return {
      requests,
      transport: {
        write: (batch: LineBatch) =>
          new Promise<WriteResult>((resolve) =>
            requests.push({
              lines: batch.lines,
              answer: (verdict) => resolve({ verdict, message: verdict === 'written' ? 'ok' : 'HTTP 503' }),
            }),
          ),
        close: () => Promise.resolve(),
      },
    };
  }

  test(`${WRITES_IN_FLIGHT} full batches go at once; when the first fails, both go again, one at a time, and each message completes only once its lines are written`, async () => {
    assert.equal(WRITES_IN_FLIGHT, 2);
    const { requests, transport } = heldTransport();
    const writer = new WritePipeline(
      new Spool(tempDir('pipeline-in-flight'), { maxBytes: 1 << 20 }),
      transport,
      { batchSize: 100, flushMs: 10, backoff: { baseMs: 10, maxMs: 10, jitter: 0 } },
      quiet,
    );
    const line = (i: number) => `teleinfo v=${i}i ${i}`;
    const completed: number[] = [];
    // Five messages of 50 lines: 250 lines, two full batches and half of one.
    for (let m = 0; m < 5; m++)
      writer.accept(
        Array.from({ length: 50 }, (_, k) => line(m * 50 + k)),
        (err) => {
          assert.equal(err, undefined);
          completed.push(m);
        },
      );
    await waitFor('two batches in flight', () => requests.length === 2);
    assert.deepEqual([requests[0].lines[0], requests[1].lines[0]], [line(0), line(100)]);
    assert.equal(requests[1].lines.length, 100);

    requests[1].answer('written'); // behind a batch that is not written yet: nothing completes
    requests[0].answer('retry');
    await waitFor('the first batch sent again', () => requests.length === 3);
    assert.equal(requests[2].lines[0], line(0));
    assert.deepEqual(completed, []);
    await new Promise((resolve) => setImmediate(resolve));
    assert.equal(requests.length, 3, 'after a failure, one batch at a time');

    requests[2].answer('written');
    await waitFor('the second batch sent again', () => requests.length === 4);
    assert.deepEqual(completed, [0, 1]);
    assert.equal(requests[3].lines[0], line(100));
    requests[3].answer('written');
    // The last 50 lines wait for the flush interval, then go alone.
    await waitFor('the last, partial batch', () => requests.length === 5);
    assert.deepEqual(
      requests[4].lines,
      Array.from({ length: 50 }, (_, k) => line(200 + k)),
    );
    requests[4].answer('written');
    await waitFor('every message complete', () => completed.length === 5);
    assert.deepEqual(completed, [0, 1, 2, 3, 4]);
    assert.equal(writer.counters.written, 250);
    await writer.close(1000);
  });
});
