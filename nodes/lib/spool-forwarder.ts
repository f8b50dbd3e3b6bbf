import { checkRecordSizes, TurnBatcher, type Spool, type SpoolPosition, type Waiter } from './spool';

/**
 * Store-and-forward over a spool, in front of a link that drops what it is given while down (Node-RED's mqtt out:
 * node-red issue #2864). Every record is spooled before it is forwarded. It leaves the spool only once the broker
 * acknowledged it (with `brokerAcks`: a token comes back through `acknowledged`, from a Complete node watching the
 * mqtt out, which completes a QoS 1 message on its PUBACK) and its overlap has passed: a server that acknowledged a
 * reading on receipt may still lose it, and asks for the overlap again with a replay request. When the link goes
 * down, everything from the spool's head is forwarded again, in order, once it is back, never more than `window`
 * records unacknowledged at a time. Replayed readings keep their own timestamps, so a duplicate overwrites the
 * same InfluxDB point. The records forwarded together are handed over in one call, so that the link may carry several
 * in one message (a backlog costs the broker and its subscribers one message per many readings).
 */

export interface ForwarderOptions {
  /** How long a forwarded record stays in the spool, to be forwarded again if asked (ms, > 0). */
  readonly overlapMs: number;
  /** Records forwarded and not yet acknowledged by the broker, at most. */
  readonly window: number;
  /** Records forwarded per event-loop turn while replaying (at most: the window may leave less room). */
  readonly replayBatch: number;
  /** Records are released on the broker's acknowledgement (and the overlap), not on the overlap alone. */
  readonly brokerAcks: boolean;
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

/** What the link did with records handed to it. */
export interface Forwarded {
  /** The messages it sent them in; each comes back once through `acknowledged(token)`. */
  readonly messages: number;
  /** Records it cannot send (damaged on disk yet passing their checksum, a bug): quarantined, never sent again. */
  readonly refused: readonly { readonly record: string; readonly reason: string }[];
}

/** Records forwarded together: released together once all are acknowledged and the overlap has passed. */
interface SentGroup {
  readonly token: number;
  readonly end: SpoolPosition;
  /** Records of the spool up to `end`. */
  readonly count: number;
  readonly at: number;
  /** Records sent (`count` less the refused ones): what the group holds of the window until it is acknowledged. */
  sent: number;
  /** Messages not yet acknowledged. */
  unacked: number;
}

export class SpoolForwarder {
  private link = false;
  private replaying = false;
  /** Position after the last record forwarded since the link came up (the replay cursor). */
  private cursor: SpoolPosition;
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
  readonly counters = { offered: 0, forwarded: 0, replayed: 0, acknowledged: 0, undeliverable: 0 };

  constructor(
    readonly spool: Spool,
    private readonly options: ForwarderOptions,
    /** Hand records to the link, in order; `token` comes back through `acknowledged` once per message. */
    private readonly forward: (records: readonly string[], token: number) => Forwarded,
    /** Called when the state or the backlog changed. */
    private readonly changed: () => void = () => undefined,
  ) {
    if (!(options.overlapMs > 0))
      throw new Error(`the overlap must be more than 0 ms, got ${options.overlapMs}`);
    this.cursor = spool.headPosition;
    this.releaseTimer = setInterval(() => this.release(Date.now()), Math.min(1000, options.overlapMs));
    this.releaseTimer.unref?.();
  }

  get state(): LinkState {
    if (!this.link) return 'down';
    return this.replaying ? 'replaying' : 'up';
  }

  /** Records not yet forwarded since the link was last known down (what a replay would send). */
  get backlog(): number {
    return this.spool.length + this.batcher.pending - this.inGroups;
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
      if (!this.options.brokerAcks || this.inFlight + records.length <= this.options.window) {
        this.send(records, this.startGroup(this.spool.tail, records.length));
        this.cursor = this.spool.tail;
      } else {
        // Over the window: the records wait in the spool and go as acknowledgements make room.
        this.replaying = true;
        this.pump();
      }
    }
    this.changed();
  }

  private startGroup(end: SpoolPosition, count: number): SentGroup {
    const group = { token: this.nextToken++, end, count, at: Date.now(), sent: 0, unacked: 0 };
    this.groups.push(group);
    this.inGroups += count;
    return group;
  }

  private send(records: readonly string[], group: SentGroup): void {
    let forwarded: Forwarded;
    try {
      forwarded = this.forward(records, group.token);
    } catch (e) {
      // A link that throws (a bug) sent none of them: like a refused record, each is quarantined and counted.
      const reason = (e as Error).message;
      forwarded = { messages: 0, refused: records.map((record) => ({ record, reason })) };
    }
    for (const { record, reason } of forwarded.refused) {
      this.counters.undeliverable++;
      this.spool.quarantine(Buffer.from(record), 'a spooled record', `cannot be forwarded: ${reason}`);
    }
    group.sent = records.length - forwarded.refused.length;
    this.counters.forwarded += group.sent;
    if (this.options.brokerAcks && forwarded.messages > 0) {
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
        this.release(Date.now());
      }
    }
    if (this.replaying) this.pump();
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
   * Forward the overlap again, in order, then carry on: a subscriber that could not receive for a while (a server
   * whose shared subscription the broker had forgotten) asks for it. While the link is down, nothing to do: the
   * whole spool is forwarded again when it is back.
   */
  replayOverlap(): void {
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
    const room = this.options.brokerAcks ? this.options.window - this.inFlight : this.options.replayBatch;
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
    this.send(batch.lines, this.startGroup(batch.end, batch.count));
    this.counters.replayed += batch.count;
    this.cursor = batch.end;
    this.changed();
    this.pump();
  }

  /** Release from the spool the oldest records that were acknowledged and whose overlap has passed. */
  private release(now: number): void {
    let end: SpoolPosition | null = null;
    while (
      this.groups.length > 0 &&
      this.groups[0].unacked === 0 &&
      now - this.groups[0].at >= this.options.overlapMs
    ) {
      const group = this.groups.shift()!;
      this.inGroups -= group.count;
      end = group.end;
    }
    if (end === null) return;
    this.spool.ack(end);
    this.changed();
  }

  close(): void {
    this.batcher.flushNow();
    this.cancelPump();
    if (this.releaseTimer) clearInterval(this.releaseTimer);
    this.releaseTimer = null;
    this.spool.close();
  }
}
