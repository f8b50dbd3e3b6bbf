import { checkRecordSizes, type Spool, type SpoolPosition } from './spool';

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

/**
 * What a server publishes (on `teleinfo/replay`) after it connects, once its subscriptions are in place: it may
 * have missed readings published while it was not subscribed, so publishers forward their overlap again.
 */
export interface ReplayRequest {
  readonly request: 'replay';
  /** The server's MQTT client id, for the logs. */
  readonly by: string;
  readonly at: string;
}

export function replayRequest(by: string, now = new Date()): ReplayRequest {
  return { request: 'replay', by, at: now.toISOString() };
}

export function isReplayRequest(payload: unknown): payload is ReplayRequest {
  return typeof payload === 'object' && payload !== null && (payload as ReplayRequest).request === 'replay';
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
  /** Records offered in this event-loop turn, journaled together at its end, and who waits for that. */
  private pending: string[] = [];
  private journaled: ((err?: Error) => void)[] = [];
  private journalTimer: NodeJS.Immediate | null = null;
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
    return this.spool.length + this.pending.length - this.inWindow;
  }

  /**
   * Journal records, and forward them if the link is up and caught up. The records offered in one event-loop turn
   * (Node-RED delivers each message in its own callback of that turn) are journaled in one write at its end, then
   * forwarded: `journaled` is called once they are on disk, or with the error that kept them off.
   */
  offer(records: readonly string[], journaled?: (err?: Error) => void): void {
    checkRecordSizes(records);
    for (const record of records) this.pending.push(record);
    if (journaled) this.journaled.push(journaled);
    this.counters.offered += records.length;
    this.journalTimer ??= setImmediate(() => this.journalPending());
  }

  private journalPending(now = Date.now()): void {
    if (this.journalTimer) clearImmediate(this.journalTimer);
    this.journalTimer = null;
    if (this.pending.length === 0) return;
    const records = this.pending;
    const waiting = this.journaled;
    this.pending = [];
    this.journaled = [];
    try {
      this.spool.append(records);
    } catch (e) {
      for (const done of waiting) done(e as Error);
      this.changed();
      return;
    }
    // Behind a replay, the replay forwards them from the journal, in order.
    if (this.link && !this.replaying) {
      for (const record of records) this.forward(record);
      this.counters.forwarded += records.length;
      this.cursor = this.spool.tail;
      this.sent.push({ at: now, end: this.cursor, count: records.length });
      this.inWindow += records.length;
    }
    for (const done of waiting) done();
    this.changed();
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
      this.rewind();
    }
    this.changed();
  }

  /**
   * Forward the overlap again, in order, then carry on: a subscriber that could not receive for a while (a server
   * whose shared subscription the broker had forgotten) asks for it. While the link is down, nothing to do: the
   * whole journal is replayed when it is back.
   */
  replayOverlap(): void {
    if (!this.link) return;
    this.rewind();
    this.replaying = true;
    this.scheduleReplay();
    this.changed();
  }

  private rewind(): void {
    this.sent.length = 0;
    this.inWindow = 0;
    this.cursor = this.spool.headPosition;
    if (this.replayTimer) clearImmediate(this.replayTimer);
    this.replayTimer = null;
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
    this.journalPending();
    if (this.replayTimer) clearImmediate(this.replayTimer);
    if (this.expiryTimer) clearInterval(this.expiryTimer);
    this.replayTimer = null;
    this.expiryTimer = null;
    this.spool.close();
  }
}
