import type { SpoolHealth } from './health';
import { SeqRanges } from './acknowledgement';
import { checkRecordSizes, TurnBatcher, type Spool, type SpoolPosition, type Waiter } from './spool';

/**
 * Store-and-forward over a spool, in front of a link that drops what it is given while down (Node-RED's mqtt out:
 * node-red issue #2864). Every record is spooled before it is forwarded, with its sequence number. When it leaves
 * the spool depends on `release`:
 * - `server`: once a server said it stored it (`serverAcked`, from the acknowledgements on `teleinfo/<pi>/ack`).
 *   What is not acknowledged is sent again, skipping what is, when the link comes back, when a server asks (a
 *   replay request), and when the oldest record waited longer than `stallMs` while servers acknowledged others (a
 *   server took it and left): then the wait doubles, up to 32 times, until acknowledgements move the head again.
 * - `broker`: once the broker acknowledged it (a token comes back through `acknowledged`, from a Complete node
 *   watching the mqtt out, which completes a QoS 1 message on its PUBACK) and its overlap has passed; a server that
 *   may have missed readings asks for the overlap again with a replay request.
 * - `overlap`: once its overlap has passed.
 * In the first two, never more than `window` records wait for the broker's acknowledgement. When the link goes
 * down, everything from the spool's head is forwarded again, in order, once it is back. Replayed readings keep their
 * own timestamps, so a duplicate overwrites the same InfluxDB point. The records forwarded together are handed over
 * in one call, so that the link may carry several in one message (a backlog costs the broker and its subscribers one
 * message per many readings).
 */

export type ReleaseOn = 'server' | 'broker' | 'overlap';

export interface ForwarderOptions {
  readonly release: ReleaseOn;
  /** `broker`, `overlap`: how long a forwarded record stays in the spool, to be forwarded again if asked (ms, > 0). */
  readonly overlapMs: number;
  /** `server`: how long the oldest record waits for its acknowledgement before it is sent again (ms, > 0). */
  readonly stallMs?: number;
  /** Records forwarded and not yet acknowledged by the broker, at most. */
  readonly window: number;
  /** Records forwarded per event-loop turn while replaying (at most: the window may leave less room). */
  readonly replayBatch: number;
}

/** Acknowledged numbers a Pi keeps above its head: past them, a reading may be sent again, never lost. */
const MAX_ACKED_RANGES = 10_000;
/** The stall wait doubles, up to this many times the first, while nothing is acknowledged. */
const MAX_STALL_FACTOR = 32;

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

/** A replay request, whose `by` is printable and short enough for a log line. */
export function isReplayRequest(payload: unknown): payload is ReplayRequest {
  if (typeof payload !== 'object' || payload === null) return false;
  const { request, by } = payload as Partial<ReplayRequest>;
  return request === 'replay' && typeof by === 'string' && /^[\x20-\x7e]{1,128}$/.test(by);
}

export type LinkState = 'down' | 'replaying' | 'up';

/** What the link did with records handed to it. */
export interface Forwarded {
  /** The messages it sent them in; each comes back once through `acknowledged(token)`. */
  readonly messages: number;
  /** Records it cannot send (damaged on disk yet passing their checksum, a bug): quarantined, never sent again. */
  readonly refused: readonly { readonly record: string; readonly reason: string }[];
}

/** Records forwarded together: released together once all are acknowledged (and the overlap has passed). */
interface SentGroup {
  readonly token: number;
  readonly end: SpoolPosition;
  /** The sequence number of its first record. */
  readonly first: number;
  /** Records of the spool up to `end`. */
  readonly count: number;
  readonly at: number;
  /** How many server acknowledgements had come when it was sent (serverAcks): any after it prove a server stores. */
  readonly acksBefore: number;
  /** Records sent (`count` less the refused ones): what the group holds of the window until it is acknowledged. */
  sent: number;
  /** Messages not yet acknowledged. */
  unacked: number;
}

export class SpoolForwarder {
  private link = false;
  private replaying = false;
  /** Position after the last record forwarded since the link came up (the replay cursor), and its number. */
  private cursor: SpoolPosition;
  private cursorSeq: number;
  /** `server`: numbers above the head a server acknowledged. */
  private readonly acked = new SeqRanges(MAX_ACKED_RANGES);
  /** The number after the last record sent since the start: a server cannot acknowledge more. */
  private sentEnd: number;
  private stallFactor = 1;
  /** Acknowledgements of this stream from servers so far: one after a record was sent proves a server stores. */
  private serverAcks = 0;
  /** Forwarded records still in the spool, oldest first; their tokens follow each other. */
  private readonly groups: SentGroup[] = [];
  private inGroups = 0;
  private nextToken = 1;
  /** Records sent in messages not all acknowledged yet. */
  private unacked = 0;
  /** Groups forwarded before a replay request started over, still in flight at the broker's client, by token. */
  private readonly staleGroups = new Map<number, SentGroup>();
  private pumpTimer: NodeJS.Immediate | NodeJS.Timeout | null = null;
  private releaseTimer: NodeJS.Timeout | null;
  private readonly batcher = new TurnBatcher((records, waiters) => this.spoolTurn(records, waiters));
  readonly counters = {
    offered: 0,
    forwarded: 0,
    replayed: 0,
    acknowledged: 0,
    undeliverable: 0,
    /** `server`: records a server acknowledged, and times the oldest waited too long. */
    stored: 0,
    stalls: 0,
  };

  constructor(
    readonly spool: Spool,
    private readonly options: ForwarderOptions,
    /**
     * Hand records to the link, in order, each with its sequence number; `token` comes back through `acknowledged`
     * once per message.
     */
    private readonly forward: (
      records: readonly string[],
      seqs: readonly number[],
      token: number,
    ) => Forwarded,
    /** Called when the state or the backlog changed. */
    private readonly changed: () => void = () => undefined,
  ) {
    const wait = options.release === 'server' ? options.stallMs : options.overlapMs;
    if (!(wait !== undefined && wait > 0))
      throw new Error(
        `the ${options.release === 'server' ? 'stall' : 'overlap'} must be more than 0 ms, got ${wait}`,
      );
    this.cursor = spool.headPosition;
    this.cursorSeq = spool.headSeq;
    this.sentEnd = spool.headSeq;
    this.releaseTimer = setInterval(() => this.tick(Date.now()), Math.min(1000, wait));
    this.releaseTimer.unref?.();
  }

  private get brokerAcks(): boolean {
    return this.options.release !== 'overlap';
  }

  get state(): LinkState {
    if (!this.link) return 'down';
    return this.replaying ? 'replaying' : 'up';
  }

  /** Records not yet forwarded since the link was last known down (what a replay would send). */
  get backlog(): number {
    return this.spool.length + this.batcher.pending - this.inGroups;
  }

  /** What the spool holds and what went through, for the Pi's health (lib/health.ts). */
  health(now: number): SpoolHealth {
    let oldestAgeS: number | null = null;
    if (this.spool.length > 0) {
      // The head record's first reading time: a record is {topic, payload} with the readings' own times.
      try {
        const head = this.spool.peek(1).lines[0] ?? '';
        const time = Date.parse(/"time":"([^"]{1,40})"/.exec(head)?.[1] ?? '');
        if (Number.isFinite(time)) oldestAgeS = Math.max(0, Math.round((now - time) / 1000));
      } catch {
        // A disk that cannot be read now: the spool reports it itself; the age is unknown this time.
      }
    }
    return {
      depth: this.spool.length + this.batcher.pending,
      bytes: this.spool.bytes,
      oldestAgeS,
      sent: this.counters.forwarded,
      acknowledged: this.options.release === 'server' ? this.counters.stored : this.counters.acknowledged,
      dropped: this.spool.counters.dropped,
      quarantinedBytes: this.spool.counters.quarantinedBytes,
    };
  }

  /** Records forwarded and not yet acknowledged by the broker. */
  get inFlight(): number {
    let stale = 0;
    for (const group of this.staleGroups.values()) stale += group.sent;
    return this.unacked + stale;
  }

  /**
   * Spool records, and forward them if the link is up and caught up. The records offered in one event-loop turn
   * are spooled in one write at its end: `spooled` is called once they survive what the spool's durability
   * promises, or with the error that kept them out. Throws at once for a record too long to spool.
   */
  offer(records: readonly string[], spooled?: Waiter): void {
    checkRecordSizes(records);
    this.counters.offered += records.length;
    this.batcher.add(records, spooled);
  }

  private spoolTurn(records: string[], waiters: Waiter[]): void {
    try {
      this.spool.append(records);
    } catch (e) {
      for (const done of waiters) done(e as Error);
      this.changed();
      return;
    }
    this.spool.commit((err) => {
      for (const done of waiters) done(err);
    });
    if (this.link && !this.replaying) {
      if (!this.brokerAcks || this.inFlight + records.length <= this.options.window) {
        const first = this.spool.nextSeq - records.length;
        this.send(
          records,
          seqsFrom(first, records.length),
          this.startGroup(this.spool.tail, first, records.length),
        );
        this.cursor = this.spool.tail;
        this.cursorSeq = this.sentEnd = this.spool.nextSeq;
      } else {
        // Over the window: the records wait in the spool and go as acknowledgements make room.
        this.replaying = true;
        this.pump();
      }
    }
    this.changed();
  }

  private startGroup(end: SpoolPosition, first: number, count: number): SentGroup {
    const group = {
      token: this.nextToken++,
      end,
      first,
      count,
      at: Date.now(),
      acksBefore: this.serverAcks,
      sent: 0,
      unacked: 0,
    };
    this.groups.push(group);
    this.inGroups += count;
    return group;
  }

  private send(records: readonly string[], seqs: readonly number[], group: SentGroup): void {
    let forwarded: Forwarded;
    if (records.length === 0) forwarded = { messages: 0, refused: [] };
    else
      try {
        forwarded = this.forward(records, seqs, group.token);
      } catch (e) {
        // A link that throws (a bug) sent none of them: like a refused record, each is quarantined and counted.
        const reason = (e as Error).message;
        forwarded = { messages: 0, refused: records.map((record) => ({ record, reason })) };
      }
    for (const { record, reason } of forwarded.refused) {
      this.counters.undeliverable++;
      this.spool.quarantine(Buffer.from(record), 'a spooled record', `cannot be forwarded: ${reason}`);
      // Never sent again: as good as acknowledged, or the head would wait for it forever.
      const i = records.indexOf(record);
      if (i >= 0) this.acked.add(seqs[i]);
    }
    group.sent = records.length - forwarded.refused.length;
    this.counters.forwarded += group.sent;
    if (this.brokerAcks && forwarded.messages > 0) {
      group.unacked = forwarded.messages;
      this.unacked += group.sent;
    }
  }

  /** The broker acknowledged a message forwarded with `token`. */
  acknowledged(token: number): void {
    const stale = this.staleGroups.get(token);
    if (stale) {
      if (--stale.unacked === 0) this.staleGroups.delete(token);
    } else {
      const group = this.groups[token - (this.groups[0]?.token ?? token)];
      if (!group || group.token !== token || group.unacked === 0) return;
      if (--group.unacked === 0) {
        this.unacked -= group.sent;
        this.counters.acknowledged += group.sent;
        if (this.options.release === 'broker') this.release(Date.now());
      }
    }
    if (this.replaying) this.pump();
  }

  /**
   * `server`: a server stored these records of `stream` (or refused them for good). Numbers of another stream, or
   * that this spool has not handed out, are ignored. Returns how many records that released.
   */
  serverAcked(stream: string, ranges: Iterable<readonly [number, number]>): number {
    if (this.options.release !== 'server' || stream !== this.spool.stream) return 0;
    this.serverAcks++;
    const head = this.spool.headSeq;
    const end = this.sentEnd;
    for (const [a, b] of ranges)
      if (b >= head && a < end) this.acked.add(Math.max(a, head), Math.min(b, end - 1));
    return this.release(Date.now());
  }

  /** The link's state, as its status reports it. */
  setLink(up: boolean): void {
    if (up === this.link) return;
    this.link = up;
    // What was forwarded may not have arrived, and its acknowledgements will not come: start again from the head.
    this.rewind(false);
    this.replaying = up;
    if (up) this.pump();
    this.changed();
  }

  /**
   * Forward again, in order, what a server may not have (`server`: what is not acknowledged; otherwise the
   * overlap), then carry on: a server that could not receive for a while asks for it when it is back. While the
   * link is down, nothing to do: the whole spool is forwarded again when it is back.
   */
  replayRequested(): void {
    if (!this.link) return;
    this.rewind(true);
    this.replaying = true;
    this.pump();
    this.changed();
  }

  private rewind(keepInFlight: boolean): void {
    if (!keepInFlight) this.staleGroups.clear();
    else for (const group of this.groups) if (group.unacked > 0) this.staleGroups.set(group.token, group);
    this.groups.length = 0;
    this.inGroups = 0;
    this.unacked = 0;
    this.cursor = this.spool.headPosition;
    this.cursorSeq = this.spool.headSeq;
    this.cancelPump();
  }

  private cancelPump(): void {
    if (this.pumpTimer) {
      clearImmediate(this.pumpTimer as NodeJS.Immediate);
      clearTimeout(this.pumpTimer as NodeJS.Timeout);
    }
    this.pumpTimer = null;
  }

  private pump(delayMs = 0): void {
    if (this.pumpTimer) return;
    const step = () => {
      this.pumpTimer = null;
      this.replayStep();
    };
    this.pumpTimer = delayMs > 0 ? setTimeout(step, delayMs) : setImmediate(step);
  }

  private replayStep(): void {
    if (!this.link || !this.replaying) return;
    const room = this.brokerAcks ? this.options.window - this.inFlight : this.options.replayBatch;
    if (room <= 0) return; // acknowledgements pump again
    let batch;
    try {
      batch = this.spool.peek(Math.min(room, this.options.replayBatch), this.cursor);
    } catch {
      // A read error, reported by the spool: try again shortly.
      this.pump(1000);
      return;
    }
    if (batch.count === 0) {
      this.replaying = false;
      this.changed();
      return;
    }
    // From the head if the spool dropped its oldest records past the cursor (as the peek does).
    const first = Math.max(this.cursorSeq, this.spool.headSeq);
    const group = this.startGroup(batch.end, first, batch.count);
    let { lines } = batch;
    let seqs = seqsFrom(first, batch.count);
    if (this.options.release === 'server' && !this.acked.isEmpty) {
      // What a server has already is not sent again.
      const keep = seqs.map((seq) => !this.acked.has(seq));
      lines = lines.filter((_, i) => keep[i]);
      seqs = seqs.filter((_, i) => keep[i]);
    }
    this.send(lines, seqs, group);
    this.counters.replayed += lines.length;
    this.cursor = batch.end;
    this.cursorSeq = first + batch.count;
    this.sentEnd = Math.max(this.sentEnd, this.cursorSeq);
    if (this.options.release === 'server') this.release(Date.now());
    this.changed();
    this.pump();
  }

  private tick(now: number): void {
    if (this.options.release !== 'server') {
      this.release(now);
      return;
    }
    // The oldest record forwarded waited too long while a server acknowledged others since: a server took it and
    // left, or its acknowledgement was lost. With no server acknowledging anything, sending again is in vain: each
    // server asks for what it missed when it is back.
    const oldest = this.groups[0];
    if (!this.link || this.replaying || !oldest || oldest.unacked > 0) return;
    if (now - oldest.at < this.options.stallMs! * this.stallFactor || this.serverAcks === oldest.acksBefore)
      return;
    this.counters.stalls++;
    this.stallFactor = Math.min(this.stallFactor * 2, MAX_STALL_FACTOR);
    this.replayRequested();
  }

  /**
   * Release from the spool its oldest records that are done with: `server`, the groups whose every record a server
   * acknowledged; otherwise, those the broker acknowledged (`broker`) and whose overlap has passed.
   */
  private release(now: number): number {
    let end: SpoolPosition | null = null;
    const server = this.options.release === 'server';
    while (this.groups.length > 0) {
      const group = this.groups[0];
      if (server) {
        // Records below the head were dropped meanwhile (the spool full): nothing to wait for.
        const from = Math.max(group.first, this.spool.headSeq);
        if (!this.acked.covers(from, group.first + group.count - 1)) break;
        if (group.unacked > 0) {
          // Stored before its PUBACK came back: that still holds room in the window until it does.
          this.unacked -= group.sent;
          this.staleGroups.set(group.token, group);
        }
      } else if (group.unacked > 0 || now - group.at < this.options.overlapMs) break;
      this.groups.shift();
      this.inGroups -= group.count;
      end = group.end;
    }
    if (end === null) return 0;
    const released = this.spool.ack(end);
    if (server) {
      this.acked.dropBelow(this.spool.headSeq);
      this.counters.stored += released;
      if (released > 0) this.stallFactor = 1;
    }
    this.changed();
    return released;
  }

  close(): void {
    this.batcher.flushNow();
    this.cancelPump();
    if (this.releaseTimer) clearInterval(this.releaseTimer);
    this.releaseTimer = null;
    this.spool.close();
  }
}

function seqsFrom(first: number, count: number): number[] {
  const seqs = new Array<number>(count);
  for (let i = 0; i < count; i++) seqs[i] = first + i;
  return seqs;
}
