import type { Spool, SpoolPosition } from './spool';

/**
 * Store-and-forward in front of a link that drops what it is given while down (Node-RED's mqtt out: node-red
 * issue #2864). Every record is journaled in the spool before it is forwarded, and stays there for `overlapMs`
 * after it was forwarded: a link that died silently is only noticed after its keepalive, and what was forwarded
 * in between may be gone. When the link goes down, everything from the journal's head (the overlap included) is
 * replayed in order once it is back. Replayed readings keep their own timestamps, so a duplicate overwrites the
 * same InfluxDB point.
 */

export interface StoreForwardOptions {
  /** How long a forwarded record stays in the journal, to be replayed if the link turns out to be down. */
  readonly overlapMs: number;
  /** Records forwarded per event-loop turn while replaying. */
  readonly replayBatch: number;
}

export type LinkState = 'down' | 'replaying' | 'up';

export class StoreAndForward {
  private link = false;
  private replaying = false;
  /** Position after the last record forwarded since the link came up (the replay cursor). */
  private cursor: SpoolPosition;
  /** Forwarded records still inside the overlap window, oldest first. */
  private readonly sent: { at: number; end: SpoolPosition; count: number }[] = [];
  private inWindow = 0;
  private replayTimer: NodeJS.Immediate | null = null;
  private expiryTimer: NodeJS.Timeout | null = null;
  readonly counters = { offered: 0, forwarded: 0, replayed: 0 };

  constructor(
    private readonly spool: Spool,
    private readonly options: StoreForwardOptions,
    private readonly forward: (record: string) => void,
    /** Called when the state or the backlog changed. */
    private readonly changed: () => void = () => undefined,
  ) {
    this.cursor = spool.headPosition;
    // Overlap records: acknowledged once their window has passed.
    this.expiryTimer = setInterval(() => this.expire(Date.now()), Math.min(1000, options.overlapMs));
    this.expiryTimer.unref?.();
  }

  get state(): LinkState {
    if (!this.link) return 'down';
    return this.replaying ? 'replaying' : 'up';
  }

  /** Records not yet forwarded since the link was last known down (what a replay would send). */
  get backlog(): number {
    return this.spool.length - this.inWindow;
  }

  /** Journal a record (once this returns it is on disk), and forward it if the link is up and caught up. */
  offer(record: string, now = Date.now()): void {
    this.spool.append([record]);
    this.counters.offered++;
    if (this.link && !this.replaying) this.send(record, this.spool.tail, now);
  }

  /** The link's state, as its status reports it. */
  setLink(up: boolean): void {
    if (up === this.link) return;
    this.link = up;
    if (up) {
      this.replaying = true;
      this.scheduleReplay();
    } else {
      // What was forwarded within the overlap may not have arrived: replay from the journal's head.
      this.replaying = false;
      this.sent.length = 0;
      this.inWindow = 0;
      this.cursor = this.spool.headPosition;
      if (this.replayTimer) clearImmediate(this.replayTimer);
      this.replayTimer = null;
    }
    this.changed();
  }

  private send(record: string, end: SpoolPosition, now: number): void {
    this.forward(record);
    this.counters.forwarded++;
    this.cursor = end;
    this.sent.push({ at: now, end, count: 1 });
    this.inWindow++;
  }

  private scheduleReplay(): void {
    this.replayTimer ??= setImmediate(() => {
      this.replayTimer = null;
      this.replayStep();
    });
  }

  private replayStep(): void {
    if (!this.link) return;
    const batch = this.spool.peek(this.options.replayBatch, this.cursor);
    if (batch.count === 0) {
      this.replaying = false;
      this.changed();
      return;
    }
    const now = Date.now();
    const lines = batch.lines;
    // Only the batch's end position is known: the batch is one overlap entry.
    for (const line of lines) {
      this.forward(line);
      this.counters.forwarded++;
      this.counters.replayed++;
    }
    this.cursor = batch.end;
    this.sent.push({ at: now, end: batch.end, count: batch.count });
    this.inWindow += batch.count;
    this.changed();
    this.scheduleReplay();
  }

  /** Acknowledge the forwarded records whose overlap window has passed. */
  private expire(now: number): void {
    let count = 0;
    let end: SpoolPosition | null = null;
    while (this.sent.length > 0 && now - this.sent[0].at >= this.options.overlapMs) {
      const entry = this.sent.shift()!;
      count += entry.count;
      end = entry.end;
    }
    if (end === null) return;
    this.inWindow -= count;
    this.spool.ack(end, count);
    this.changed();
  }

  close(): void {
    if (this.replayTimer) clearImmediate(this.replayTimer);
    if (this.expiryTimer) clearInterval(this.expiryTimer);
    this.replayTimer = null;
    this.expiryTimer = null;
    this.spool.close();
  }
}
