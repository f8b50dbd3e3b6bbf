import fs from 'node:fs';
import path from 'node:path';
import { backoffDelay, sleep, type BackoffPolicy } from '../retry';
import type { Spool } from '../spool';
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
  /** Lines ever put into the spool (including those recovered at start), and lines that left it. */
  private accepted: number;
  private consumed = 0;
  private timer: NodeJS.Timeout | null = null;
  private draining: Promise<void> | null = null;
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
    if (spool.length > 0) this.kick();
  }

  status(): PipelineStatus {
    return {
      state: this.state,
      spooled: this.spool.length,
      spoolBytes: this.spool.bytes,
      written: this.counters.written,
      deadLettered: this.counters.deadLettered,
      dropped: this.counters.dropped,
      lastError: this.lastError,
    };
  }

  /** Accept lines: once this returns they are on disk. `done` completes when they are written (or rejected). */
  accept(lines: readonly string[], done?: Done): void {
    if (this.closing) throw new Error('the InfluxDB writer is closing');
    const droppedBefore = this.spool.counters.dropped;
    this.spool.append(lines);
    this.accepted += lines.length;
    const dropped = this.spool.counters.dropped - droppedBefore;
    if (dropped > 0) {
      this.counters.dropped += dropped;
      this.consume(dropped, new Error(`spool full: the oldest ${dropped} lines were dropped`));
      this.listener.dropped(dropped);
    }
    if (done) {
      if (this.tracked.length < MAX_TRACKED) this.tracked.push({ end: this.accepted, done });
      else done();
    }
    if (this.spool.length >= this.options.batchSize) this.kick();
    else this.timer ??= setTimeout(() => this.kick(), this.options.flushMs);
  }

  /** Write what is spooled now (msg.flush). */
  flush(): Promise<void> {
    this.kick();
    return this.draining ?? Promise.resolve();
  }

  private kick(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    this.draining ??= this.drain().finally(() => {
      this.draining = null;
      if (this.spool.length > 0 && !this.closing)
        this.timer ??= setTimeout(() => this.kick(), this.options.flushMs);
    });
  }

  private setState(state: PipelineState): void {
    this.state = state;
    this.listener.status(this.status());
  }

  private async drain(): Promise<void> {
    while (this.spool.length > 0 && !this.abort.signal.aborted) {
      const batch = this.spool.peek(this.maxBatch);
      if (batch.lines.length === 0) break;
      this.setState(this.failures > 0 ? this.state : 'writing');
      this.counters.batches++;
      const result = await this.transport.write(batch.lines, this.abort.signal);
      if (this.abort.signal.aborted) return;
      const n = batch.lines.length;
      switch (result.verdict) {
        case 'written':
          this.spool.ack(batch.end, n);
          this.counters.written += n;
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
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    const timeout = new AbortController();
    const deadline = sleep(timeoutMs, timeout.signal);
    const flushed = (async () => {
      while (this.spool.length > 0 && this.failures === 0 && !this.abort.signal.aborted) {
        this.kick();
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
