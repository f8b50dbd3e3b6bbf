import path from 'node:path';
import { backoffDelay, sleep, type BackoffPolicy } from '../retry';
import { checkRecordSizes, TurnBatcher, type Spool, type SpoolBatch, type Waiter } from '../spool';
import { CompletionLedger } from './completion';
import { DeadLetterFile } from './dead-letter';
import { SpoolShares } from './shares';
import type { InfluxTransport, LineBatch, WriteResult } from './transport';

/**
 * The write loop of one InfluxDB server: lines are accepted into the spool, sent in batches, removed only once
 * InfluxDB acknowledged them; failures are retried with backoff; a batch InfluxDB refuses
 * is bisected so that only the lines it refuses go to the dead-letter file, and never block the batches behind.
 */

export interface PipelineOptions {
  readonly batchSize: number;
  /**
   * The longest a line waits for its batch to fill. The wait adapts to the load: it is as long as the last write
   * took (at least MIN_LINGER_MS), so a light load is written within milliseconds and a heavy one in full batches
   * of `batchSize`, with one batch filling while the one before it is written.
   */
  readonly flushMs: number;
  readonly backoff: BackoffPolicy;
  /** The dead-letter file stops growing past this; further rejected lines are only counted. */
  readonly deadLetterMaxBytes?: number;
}

export type PipelineState = 'idle' | 'writing' | 'retrying' | 'misconfigured';

export interface PipelineStatus {
  readonly state: PipelineState;
  readonly spooled: number;
  readonly spoolBytes: number;
  readonly written: number;
  readonly deadLettered: number;
  readonly dropped: number;
  readonly lastError: string | null;
  /** The spool's disk is full (its last I/O error was ENOSPC and nothing succeeded since). */
  readonly diskFull: boolean;
}

export interface PipelineListener {
  /** Something worth showing changed. */
  status(status: PipelineStatus): void;
  /** Lines InfluxDB refused went to the dead-letter file (or could not: `stored` false). */
  rejected(result: WriteResult, lines: number, file: string, stored: boolean): void;
  /** The spool was full and dropped its oldest lines. */
  dropped(count: number): void;
  /** The failure kind changed (one report per kind, not one per retry). */
  failing(result: WriteResult): void;
}

interface Rejection {
  readonly result: WriteResult;
  /** Indexes within the batch. */
  readonly indexes: number[];
}

/** The shortest wait for a batch to fill: lines of a few turns go together, even to a fast InfluxDB. */
export const MIN_LINGER_MS = 5;

/**
 * Full batches written at once while InfluxDB answers: it ingests one while it commits the other (`npm run
 * bench:influx` on influxd 1.6: raw batches 2 at a time take 18 to 62 % more points per second than one at a time,
 * influx-teleinfo-out about 30 % more).
 */
export const WRITES_IN_FLIGHT = 2;

/** A batch sent to InfluxDB and not answered yet. */
interface Write {
  readonly batch: SpoolBatch;
  readonly started: number;
  readonly result: Promise<WriteResult>;
}

export class WritePipeline {
  private readonly ledger: CompletionLedger;
  private readonly batcher = new TurnBatcher((lines, waiters) => this.spoolTurn(lines, waiters));
  private readonly deadLetters: DeadLetterFile;
  private timer: NodeJS.Timeout | null = null;
  private draining: Promise<void> | null = null;
  /** Write everything spooled, not only full batches, until the spool is empty. */
  private flushAll = false;
  private readonly abort = new AbortController();
  private closing = false;
  private failures = 0;
  private lastFailureKind: string | null = null;
  private maxBatch: number;
  private state: PipelineState = 'idle';
  /** How long the last write took: the wait for the next batch to fill. */
  private lastWriteMs = 0;
  private lastError: string | null = null;
  readonly counters = {
    written: 0,
    deadLettered: 0,
    dropped: 0,
    /** Lines refused because their Pi held its share of a spool half full. */
    overShare: 0,
    batches: 0,
    retries: 0,
    bisections: 0,
  };
  private readonly shares: SpoolShares;

  constructor(
    private readonly spool: Spool,
    private readonly transport: InfluxTransport,
    private readonly options: PipelineOptions,
    private readonly listener: PipelineListener,
  ) {
    this.ledger = new CompletionLedger(spool.length);
    this.shares = new SpoolShares(spool.capacity, spool.length, spool.bytes);
    this.maxBatch = options.batchSize;
    this.deadLetters = new DeadLetterFile(
      path.join(spool.dir, 'dead-letter.jsonl'),
      options.deadLetterMaxBytes,
    );
    // What a previous run left in the spool drains first.
    if (spool.length > 0) this.kick(true);
  }

  get deadLetterFile(): string {
    return this.deadLetters.file;
  }

  status(): PipelineStatus {
    const problem = this.spool.problem;
    return {
      state: this.state,
      spooled: this.spool.length + this.batcher.pending,
      spoolBytes: this.spool.bytes,
      written: this.counters.written,
      deadLettered: this.counters.deadLettered,
      dropped: this.counters.dropped,
      lastError: problem?.message ?? this.lastError,
      diskFull: problem?.diskFull ?? false,
    };
  }

  /**
   * Accept lines. Returns false when `done` will be called once they are spooled rather than written (past the
   * bound of messages waiting). They reach the spool file before the next event-loop turn, in one write with the other lines of
   * that turn. `done` is never called before that; it completes when they are written (or rejected, or dropped).
   * `owner` (the Pi that sent them) holds at most its share of a spool half full: beyond, its lines are refused.
   */
  accept(lines: readonly string[], done?: Waiter, owner = ''): boolean {
    if (this.closing) throw new Error('the InfluxDB writer is closing');
    checkRecordSizes(lines, 'point');
    let bytes = 0;
    for (const line of lines) bytes += line.length + 1;
    if (!this.shares.admits(owner, bytes, this.spool.bytes)) {
      this.counters.overShare += lines.length;
      done?.(
        new Error(
          `${owner} holds its share of the spool (${this.shares.bytesOf(owner)} bytes of ${this.spool.capacity}) while InfluxDB does not take them: ${lines.length} lines refused`,
        ),
      );
      return true;
    }
    this.shares.added(owner, lines.length, bytes);
    // Past the ledger's bound, a message completes once its lines survive in the spool.
    const tracked = this.ledger.expect(lines.length, done);
    this.batcher.add(lines, tracked ? undefined : done);
    return tracked;
  }

  private spoolTurn(lines: string[], waiters: Waiter[]): void {
    const droppedBefore = this.spool.counters.dropped;
    try {
      this.spool.append(lines);
    } catch (e) {
      // A full or failing disk: these lines are lost, and their senders told.
      const error = new Error(
        `the spool could not be written; ${lines.length} lines lost: ${(e as Error).message}`,
      );
      this.ledger.refused(lines.length, error);
      this.shares.withdrawn(lines.length);
      for (const done of waiters) done(error);
      this.counters.dropped += lines.length;
      this.lastError = error.message;
      this.listener.status(this.status());
      return;
    }
    this.spool.commit((err) => {
      for (const done of waiters) done(err);
    });
    const dropped = this.spool.counters.dropped - droppedBefore;
    if (dropped > 0) {
      this.shares.removed(dropped);
      this.counters.dropped += dropped;
      this.ledger.released(dropped, new Error(`spool full: the oldest ${dropped} lines were dropped`));
      this.listener.dropped(dropped);
    }
    if (this.closing) return;
    if (this.spool.length >= this.options.batchSize) this.kick(false);
    else this.startTimer();
  }

  /** Write what is spooled now (msg.flush). */
  flush(): Promise<void> {
    this.kick(true);
    return this.draining ?? Promise.resolve();
  }

  /**
   * Start writing: full batches only, or everything (`all`: the flush interval passed, a flush was asked for,
   * a previous run left lines). Full batches are what InfluxDB ingests fastest.
   */
  private kick(all: boolean): void {
    this.batcher.flushNow();
    if (all) {
      this.flushAll = true;
      if (this.timer) clearTimeout(this.timer);
      this.timer = null;
    }
    this.draining ??= this.drain().finally(() => {
      this.draining = null;
      this.flushAll = false;
      if (this.spool.length > 0 && !this.closing) this.startTimer();
    });
  }

  private startTimer(): void {
    const linger = Math.min(this.options.flushMs, Math.max(MIN_LINGER_MS, this.lastWriteMs));
    this.timer ??= setTimeout(() => this.kick(true), linger);
  }

  private setState(state: PipelineState): void {
    this.state = state;
    this.listener.status(this.status());
  }

  private async drain(): Promise<void> {
    const inFlight: Write[] = [];
    const wanted = () => this.flushAll || this.failures > 0 || this.spool.length >= this.options.batchSize;
    while (this.spool.length > 0 && wanted() && !this.abort.signal.aborted) {
      // Keep up to WRITES_IN_FLIGHT full batches going while all is well; after a failure, one at a time.
      try {
        this.sendMore(inFlight);
      } catch (e) {
        await this.settle(inFlight);
        if (!(await this.failed({ verdict: 'retry', message: (e as Error).message }))) return;
        continue;
      }
      const sent = inFlight.shift();
      if (!sent) break;
      const { batch, started } = sent;
      const result = await sent.result;
      if (this.abort.signal.aborted) return;
      if (result.verdict === 'written') {
        this.lastWriteMs = Date.now() - started;
        this.counters.written += batch.count;
        this.release(batch);
        // The lines that started the flush interval are written: it starts again from the next ones.
        if (this.timer && !this.flushAll) {
          clearTimeout(this.timer);
          this.timer = null;
        }
        this.recovered();
        continue;
      }
      // The batches behind this one are sent again once it is dealt with (InfluxDB overwrites what it has).
      await this.settle(inFlight);
      if (this.abort.signal.aborted) return;
      switch (result.verdict) {
        case 'too-large':
          if (batch.count > 1) {
            this.maxBatch = Math.max(1, Math.floor(batch.count / 2));
            continue;
          }
          this.release(batch, [{ result, indexes: [0] }]);
          continue;
        case 'rejected': {
          const rejections =
            batch.count > 1 ? await this.isolate(batch.lines, 0, result) : [{ result, indexes: [0] }];
          if (this.abort.signal.aborted) return;
          if (!Array.isArray(rejections)) {
            if (!(await this.failed(rejections))) return;
            continue;
          }
          this.counters.written += batch.count - rejections.reduce((n, r) => n + r.indexes.length, 0);
          this.release(batch, rejections);
          continue;
        }
        default:
          if (!(await this.failed(result))) return;
      }
    }
    await this.settle(inFlight);
    this.maxBatch = this.options.batchSize;
    if (this.failures === 0) this.setState('idle');
  }

  /**
   * Send the next batches behind those in flight: the first whatever its size, the next ones only while all is
   * well and only full (a partial batch waits for the ones before it, and for more lines).
   */
  private sendMore(inFlight: Write[]): void {
    const depth = this.failures === 0 && this.maxBatch === this.options.batchSize ? WRITES_IN_FLIGHT : 1;
    let queued = inFlight.reduce((n, f) => n + f.batch.count, 0);
    while (inFlight.length < depth) {
      const left = this.spool.length - queued;
      if (left <= 0 || (inFlight.length > 0 && left < this.options.batchSize)) return;
      const batch = this.spool.peek(this.maxBatch, inFlight.at(-1)?.batch.end);
      if (batch.count === 0) return;
      if (this.failures === 0) this.setState('writing');
      this.counters.batches++;
      inFlight.push({ batch, started: Date.now(), result: this.transport.write(batch, this.abort.signal) });
      queued += batch.count;
    }
  }

  /** Wait for the writes in flight and forget their answers: their lines are still spooled, and go again. */
  private async settle(inFlight: Write[]): Promise<void> {
    await Promise.all(inFlight.splice(0).map((f) => f.result));
  }

  /**
   * InfluxDB refused a batch: halve it until the lines it refuses are alone (a type conflict or a bad line costs
   * only itself). Points InfluxDB 1.x already wrote from a partial write are written again, which overwrites them.
   * Returns the refused lines, or a failure that is worth retrying the whole batch for.
   */
  private async isolate(
    lines: readonly string[],
    offset: number,
    result: WriteResult,
  ): Promise<Rejection[] | WriteResult> {
    if (lines.length === 1) return [{ result, indexes: [offset] }];
    this.counters.bisections++;
    const half = lines.length >> 1;
    const out: Rejection[] = [];
    for (const [part, at] of [
      [lines.slice(0, half), offset],
      [lines.slice(half), offset + half],
    ] as const) {
      const answer = await this.transport.write(lineBatch(part), this.abort.signal);
      if (this.abort.signal.aborted) return { verdict: 'retry', message: 'aborted' };
      if (answer.verdict === 'written') continue;
      if (answer.verdict !== 'rejected' && answer.verdict !== 'too-large') return answer;
      const found = await this.isolate(part, at, answer);
      if (!Array.isArray(found)) return found;
      out.push(...found);
    }
    return out;
  }

  /** A batch left InfluxDB's door: out of the spool, refused lines to the dead-letter file, messages completed. */
  private release(batch: SpoolBatch, rejections: readonly Rejection[] = []): void {
    const failed: number[] = [];
    let error: Error | undefined;
    for (const { result, indexes } of rejections) {
      const lines = indexes.map((i) => batch.lines[i]);
      const outcome = this.deadLetters.write(result, lines);
      const stored = outcome === 'written';
      this.counters.deadLettered += lines.length;
      this.lastError = result.message;
      failed.push(...indexes);
      const where = stored
        ? `they are in ${this.deadLetters.file}`
        : outcome === 'full'
          ? 'the dead-letter file is full, so they were only counted'
          : `the dead-letter file could not be written (${outcome.message}), so they were only counted`;
      error = new RejectedLines(`InfluxDB rejected ${lines.length} lines (${result.message}); ${where}`);
      this.listener.rejected(result, lines.length, this.deadLetters.file, stored);
    }
    const released = this.spool.ack(batch.end);
    this.shares.removed(released);
    // Lines of the batch dropped meanwhile (the spool was full) were released then, from its start.
    const shift = batch.count - released;
    failed.sort((a, b) => a - b);
    this.ledger.released(
      released,
      error,
      failed.map((i) => i - shift).filter((i) => i >= 0),
    );
    if (rejections.length > 0) this.recovered();
  }

  /** A failure worth retrying: back off (false if closed meanwhile). */
  private async failed(result: WriteResult): Promise<boolean> {
    this.failures++;
    this.counters.retries++;
    this.lastError = result.message;
    const kind = `${result.verdict}:${result.status ?? 'network'}`;
    if (kind !== this.lastFailureKind) {
      this.lastFailureKind = kind;
      this.listener.failing(result);
    }
    this.setState(result.verdict === 'misconfigured' ? 'misconfigured' : 'retrying');
    const delay = Math.max(result.retryAfterMs ?? 0, backoffDelay(this.failures, this.options.backoff));
    return sleep(Math.min(delay, 10 * 60_000), this.abort.signal);
  }

  private recovered(): void {
    if (this.failures > 0 || this.state !== 'writing') {
      this.failures = 0;
      this.lastFailureKind = null;
      this.lastError = null;
      this.setState('writing');
    }
  }

  /** Best effort within `timeoutMs`: write what is spooled; the spool keeps the rest for the next start. */
  async close(timeoutMs: number): Promise<void> {
    this.closing = true;
    this.batcher.flushNow();
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    const timeout = new AbortController();
    const deadline = sleep(timeoutMs, timeout.signal);
    const flushed = (async () => {
      while (this.spool.length > 0 && this.failures === 0 && !this.abort.signal.aborted) {
        this.kick(true);
        await this.draining;
      }
    })();
    await Promise.race([flushed, deadline]);
    timeout.abort();
    this.abort.abort();
    await this.draining;
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    // Lines still spooled are safe: their messages complete now, the next start writes them.
    this.ledger.completeAll();
    this.spool.close();
    await this.transport.close();
  }
}

function lineBatch(lines: readonly string[]): LineBatch {
  return { lines, data: Buffer.from(lines.join('\n') + '\n') };
}

/** InfluxDB refused these lines for good (a 400, not a failure to retry): sending them again changes nothing. */
export class RejectedLines extends Error {}
