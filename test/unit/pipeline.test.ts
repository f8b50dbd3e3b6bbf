import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { WritePipeline, type PipelineStatus } from '../../nodes/lib/influx/pipeline';
import type { LineBatch } from '../../nodes/lib/influx/transport';
import { DEFAULT_BACKOFF } from '../../nodes/lib/retry';
import { Spool } from '../../nodes/lib/spool';
import { tempDir, waitFor } from '../support/services';

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
    {
      status: (s) => statuses.push(s),
      rejected: () => undefined,
      dropped: () => undefined,
      failing: () => undefined,
    },
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
