import fs from 'node:fs';
import path from 'node:path';
import { backoffDelay, sleep, type BackoffPolicy } from '../retry';
import { checkRecordSizes, type Spool } from '../spool';
import type { InfluxTransport, WriteResult } from './transport';

/**
 * The write pipeline of one InfluxDB server: lines are accepted into the spool, sent in batches (at N lines
 * or after T ms), removed only once InfluxDB acknowledged them; failures are retried with backoff,
 * rejected batches go to a dead-letter file and never block the batches behind them.
 */

export interface PipelineOptions {
  readonly batchSize: number;
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
}

export interface PipelineListener {
  /** Something worth showing changed. */
  status(status: PipelineStatus): void;
  /** A batch was rejected by InfluxDB and moved to the dead-letter file. */
  rejected(result: WriteResult, lines: number, file: string): void;
  /** The spool was full and dropped its oldest lines. */
  dropped(count: number): void;
  /** The failure kind changed (one report per kind, not one per retry). */
  failing(result: WriteResult): void;
}

type Done = (err?: Error) => void;

/** Messages whose completion waits for their lines to be written; beyond this they complete on spooling. */
const MAX_TRACKED = 10_000;

export class WritePipeline {
  private readonly tracked: { end: number; done: Done }[] = [];
  /** Messages beyond MAX_TRACKED: they complete once their lines are in the spool file. */
  private readonly untracked: Done[] = [];
  private pending: string[] = [];
  private appendTimer: NodeJS.Immediate | null = null;
  /** Lines ever put into the spool (including those recovered at start), and lines that left it. */
  private accepted: number;
  private consumed = 0;
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
  private lastError: string | null = null;
  readonly counters = {
    written: 0,
    deadLettered: 0,
    deadLetterOverflow: 0,
    dropped: 0,
    batches: 0,
    retries: 0,
  };
  readonly deadLetterFile: string;

  constructor(
    private readonly spool: Spool,
    private readonly transport: InfluxTransport,
    private readonly options: PipelineOptions,
    private readonly listener: PipelineListener,
  ) {
    this.accepted = spool.length;
    this.maxBatch = options.batchSize;
    this.deadLetterFile = path.join(spool.dir, 'dead-letter.jsonl');
    // What a previous run left in the spool drains first.
    if (spool.length > 0) this.kick(true);
  }

  status(): PipelineStatus {
    return {
      state: this.state,
      spooled: this.spool.length + this.pending.length,
      spoolBytes: this.spool.bytes,
      written: this.counters.written,
      deadLettered: this.counters.deadLettered,
      dropped: this.counters.dropped,
      lastError: this.lastError,
    };
  }

  /**
   * Accept lines. They reach the spool file before the next event-loop turn: the appends of one turn (Node-RED
   * delivers each message in its own callback of that turn) become one write, which is what makes one message
   * per reading affordable. `done` is never called before that; it completes when they are written (or rejected).
   */
  accept(lines: readonly string[], done?: Done): void {
    if (this.closing) throw new Error('the InfluxDB writer is closing');
    checkRecordSizes(lines, 'point');
    for (const line of lines) this.pending.push(line);
    this.accepted += lines.length;
    if (done) {
      if (this.tracked.length < MAX_TRACKED) this.tracked.push({ end: this.accepted, done });
      else this.untracked.push(done);
    }
    this.appendTimer ??= setImmediate(() => {
      this.appendPending();
      if (this.spool.length >= this.options.batchSize) this.kick(false);
      else this.startTimer();
    });
  }

  private appendPending(): void {
    if (this.appendTimer) clearImmediate(this.appendTimer);
    this.appendTimer = null;
    if (this.pending.length === 0) return;
    const droppedBefore = this.spool.counters.dropped;
    try {
      this.spool.append(this.pending);
    } catch (e) {
      this.lose(e as Error);
      return;
    }
    this.pending = [];
    for (const done of this.untracked.splice(0)) done();
    const dropped = this.spool.counters.dropped - droppedBefore;
    if (dropped > 0) {
      this.counters.dropped += dropped;
      this.consume(dropped, new Error(`spool full: the oldest ${dropped} lines were dropped`));
      this.listener.dropped(dropped);
    }
  }

  /** The spool could not be written (a full or failing disk): the pending lines are lost, and their senders told. */
  private lose(cause: Error): void {
    const lost = this.pending.length;
    this.pending = [];
    const firstLost = this.accepted - lost;
    this.accepted = firstLost;
    const error = new Error(`the spool could not be written; ${lost} lines lost: ${cause.message}`);
    while (this.tracked.length > 0 && this.tracked[this.tracked.length - 1].end > firstLost)
      this.tracked.pop()!.done(error);
    for (const done of this.untracked.splice(0)) done(error);
    this.counters.dropped += lost;
    this.lastError = error.message;
    this.listener.status(this.status());
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
    this.appendPending();
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
    this.timer ??= setTimeout(() => this.kick(true), this.options.flushMs);
  }

  private setState(state: PipelineState): void {
    this.state = state;
    this.listener.status(this.status());
  }

  private async drain(): Promise<void> {
    while (
      this.spool.length > 0 &&
      (this.flushAll || this.failures > 0 || this.spool.length >= this.options.batchSize) &&
      !this.abort.signal.aborted
    ) {
      const batch = this.spool.peek(this.maxBatch);
      if (batch.count === 0) break;
      this.setState(this.failures > 0 ? this.state : 'writing');
      this.counters.batches++;
      const result = await this.transport.write(batch, this.abort.signal);
      if (this.abort.signal.aborted) return;
      const n = batch.count;
      switch (result.verdict) {
        case 'written':
          this.spool.ack(batch.end, n);
          this.counters.written += n;
          // The lines that started the flush interval are written: it starts again from the next ones.
          if (this.timer && !this.flushAll) {
            clearTimeout(this.timer);
            this.timer = null;
          }
          this.consume(n);
          this.recovered();
          continue;
        case 'too-large':
          if (n > 1) {
            this.maxBatch = Math.max(1, Math.floor(n / 2));
            continue;
          }
          this.reject(result, batch.lines, batch.end);
          continue;
        case 'rejected':
          this.reject(result, batch.lines, batch.end);
          continue;
        default: {
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
          if (!(await sleep(Math.min(delay, 10 * 60_000), this.abort.signal))) return;
        }
      }
    }
    this.maxBatch = this.options.batchSize;
    if (this.failures === 0) this.setState('idle');
  }

  private recovered(): void {
    if (this.failures > 0 || this.state !== 'writing') {
      this.failures = 0;
      this.lastFailureKind = null;
      this.lastError = null;
      this.setState('writing');
    }
  }

  private reject(result: WriteResult, lines: string[], end: Parameters<Spool['ack']>[0]): void {
    const record =
      JSON.stringify({
        time: new Date().toISOString(),
        status: result.status,
        error: result.message,
        lines,
      }) + '\n';
    const size = fs.existsSync(this.deadLetterFile) ? fs.statSync(this.deadLetterFile).size : 0;
    if (size + record.length <= (this.options.deadLetterMaxBytes ?? 50 * 1024 * 1024)) {
      fs.appendFileSync(this.deadLetterFile, record);
    } else this.counters.deadLetterOverflow += lines.length;
    this.spool.ack(end, lines.length);
    this.counters.deadLettered += lines.length;
    this.lastError = result.message;
    this.consume(
      lines.length,
      new Error(
        `InfluxDB rejected ${lines.length} lines (${result.message}); they are in ${this.deadLetterFile}`,
      ),
    );
    this.listener.rejected(result, lines.length, this.deadLetterFile);
    this.recovered();
  }

  /** `count` lines left the spool: complete the messages whose lines have all left. */
  private consume(count: number, error?: Error): void {
    this.consumed += count;
    while (this.tracked.length > 0 && this.tracked[0].end <= this.consumed) this.tracked.shift()!.done(error);
  }

  /** Best effort within `timeoutMs`: write what is spooled; the spool keeps the rest for the next start. */
  async close(timeoutMs: number): Promise<void> {
    this.closing = true;
    this.appendPending();
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
    for (const t of this.tracked.splice(0)) t.done();
    this.spool.sync();
    this.spool.close();
    await this.transport.close();
  }
}
