/**
 * End-to-end acknowledgement between the Pis' spools and the servers that store their readings.
 *
 * Each record a Pi spools has a sequence number in its spool's stream: its ordinal since the spool was created,
 * kept with the spool's head on disk. A stream id (random, made with the spool) tells one spool from another, and
 * from the same folder started afresh. A Pi sends each reading's number with it, in MQTT 5 user properties of the
 * message that carries it; a server that stored a reading (written to InfluxDB, or refused for good) says so to
 * that Pi on `teleinfo/<pi>/ack`, as ranges of numbers per stream. Any server may store any reading: a Pi merges
 * what every server said, releases the head of its spool while it is acknowledged, and sends again what is not.
 */

/** MQTT 5 user properties of a message of readings: its spool's stream and each reading's number, in order. */
export const STREAM_PROPERTY = 'teleinfo-stream';
export const SEQ_PROPERTY = 'teleinfo-seq';

/** A stream id: what a spool makes when it is created (hex), and the most a server accepts. */
const STREAM_ID = /^[A-Za-z0-9]{8,32}$/;
/** A range list is at most this long when read from the network (1,000 numbers in distinct ranges fit). */
const MAX_RANGES_TEXT = 32 * 1024;
/** Streams in one acknowledgement message: a Pi runs a spool per source. */
const MAX_STREAMS = 16;

export function isStreamId(value: unknown): value is string {
  return typeof value === 'string' && STREAM_ID.test(value);
}

/**
 * A set of sequence numbers kept as sorted, disjoint, inclusive ranges, bounded: past `maxRanges`, the highest
 * ranges are forgotten (what forgets them says what that costs: a reading sent again, never one lost).
 */
export class SeqRanges {
  private readonly ranges: [number, number][] = [];
  /** Numbers forgotten because the set was full. */
  forgotten = 0;

  constructor(private readonly maxRanges = 10_000) {}

  get size(): number {
    return this.ranges.length;
  }

  get isEmpty(): boolean {
    return this.ranges.length === 0;
  }

  /** Add `from`..`to` (inclusive). */
  add(from: number, to = from): void {
    if (to < from) return;
    const r = this.ranges;
    // The first range that ends at or after from - 1 (it may merge with ours).
    let lo = 0;
    let hi = r.length;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (r[mid][1] < from - 1) lo = mid + 1;
      else hi = mid;
    }
    let end = lo;
    while (end < r.length && r[end][0] <= to + 1) end++;
    if (end > lo) {
      from = Math.min(from, r[lo][0]);
      to = Math.max(to, r[end - 1][1]);
    }
    r.splice(lo, end - lo, [from, to]);
    while (r.length > this.maxRanges) {
      const [a, b] = r.pop()!;
      this.forgotten += b - a + 1;
    }
  }

  addAll(seqs: readonly number[]): void {
    // Runs of consecutive numbers go in as one range.
    for (let i = 0; i < seqs.length;) {
      let j = i;
      while (j + 1 < seqs.length && seqs[j + 1] === seqs[j] + 1) j++;
      this.add(seqs[i], seqs[j]);
      i = j + 1;
    }
  }

  merge(other: SeqRanges): void {
    for (const [a, b] of other.ranges) this.add(a, b);
  }

  has(seq: number): boolean {
    return this.covers(seq, seq);
  }

  /** Whether every number from `from` to `to` is in the set. */
  covers(from: number, to: number): boolean {
    if (to < from) return true;
    const r = this.ranges;
    let lo = 0;
    let hi = r.length;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (r[mid][1] < from) lo = mid + 1;
      else hi = mid;
    }
    return lo < r.length && r[lo][0] <= from && r[lo][1] >= to;
  }

  /** Forget the numbers below `seq`. */
  dropBelow(seq: number): void {
    const r = this.ranges;
    let n = 0;
    while (n < r.length && r[n][1] < seq) n++;
    r.splice(0, n);
    if (r.length > 0 && r[0][0] < seq) r[0][0] = seq;
  }

  clear(): void {
    this.ranges.length = 0;
  }

  *[Symbol.iterator](): IterableIterator<readonly [number, number]> {
    yield* this.ranges;
  }

  /** `a-b,c,d-e`: what travels in a user property or an acknowledgement. */
  toString(): string {
    return this.ranges.map(([a, b]) => (a === b ? String(a) : `${a}-${b}`)).join(',');
  }
}

/** The numbers of `text` (`a-b,c`, ascending), at most `max` of them, or why it is not such a list. */
export function parseSeqList(text: unknown, max: number): number[] | string {
  const ranges = parseRanges(text, max);
  if (typeof ranges === 'string') return ranges;
  const seqs: number[] = [];
  for (const [a, b] of ranges) {
    if (seqs.length + (b - a + 1) > max) return `more than ${max} sequence numbers`;
    for (let s = a; s <= b; s++) seqs.push(s);
  }
  return seqs;
}

/** The ranges of `text`, ascending and disjoint, at most `maxRanges`, or why it is not such a list. */
export function parseRanges(text: unknown, maxRanges: number): [number, number][] | string {
  if (typeof text !== 'string' || text.length === 0) return 'no sequence numbers';
  if (text.length > MAX_RANGES_TEXT) return `a sequence list of ${text.length} characters`;
  const parts = text.split(',');
  if (parts.length > maxRanges) return `more than ${maxRanges} sequence ranges`;
  const ranges: [number, number][] = [];
  let last = -1;
  for (const part of parts) {
    const m = /^(\d{1,15})(?:-(\d{1,15}))?$/.exec(part);
    if (!m) return 'a sequence list is numbers and ranges a-b, comma-separated';
    const a = Number(m[1]);
    const b = m[2] === undefined ? a : Number(m[2]);
    if (b < a || a <= last) return 'sequence numbers go up';
    ranges.push([a, b]);
    last = b;
  }
  return ranges;
}

/** A Pi's numbers of one stream, as a message of readings carries them; `seq` as in `SeqRanges.toString()`. */
export interface StreamSeqs {
  readonly stream: string;
  readonly seq: string;
}

/** What a server acknowledges of readings it settled (`msg.ack`, from teleinfo-admit): the Pi and their numbers. */
export interface ReadingAck {
  readonly pi: string;
  readonly stream: string;
  readonly seqs: readonly number[];
}

/** What a server publishes on `teleinfo/<pi>/ack`: the readings of each of the Pi's streams it settled since. */
export interface AckPayload {
  readonly acks: StreamSeqs[];
}

export function ackTopic(pi: string): string {
  return `teleinfo/${pi}/ack`;
}

export function isAckTopic(topic: unknown): boolean {
  return typeof topic === 'string' && /^teleinfo\/[^/+#]+\/ack$/.test(topic);
}

/** An acknowledgement as it arrives on a Pi (JSON text or parsed), checked: each stream's ranges, or why not. */
export function parseAck(
  payload: unknown,
  maxRanges: number,
): { stream: string; ranges: [number, number][] }[] | string {
  let value = payload;
  if (typeof payload === 'string' || payload instanceof Uint8Array) {
    const text = typeof payload === 'string' ? payload : Buffer.from(payload).toString('utf8');
    if (text.length > MAX_STREAMS * (MAX_RANGES_TEXT + 64))
      return `an acknowledgement of ${text.length} characters`;
    try {
      value = JSON.parse(text);
    } catch {
      return 'an acknowledgement is JSON';
    }
  }
  const acks = (value as Partial<AckPayload> | null)?.acks;
  if (!Array.isArray(acks) || acks.length === 0 || acks.length > MAX_STREAMS)
    return `an acknowledgement has 1 to ${MAX_STREAMS} streams in "acks"`;
  const out: { stream: string; ranges: [number, number][] }[] = [];
  for (const ack of acks as unknown[]) {
    const { stream, seq } = (ack ?? {}) as Partial<StreamSeqs>;
    if (!isStreamId(stream)) return 'an acknowledged stream is an id of 8 to 32 letters and digits';
    const ranges = parseRanges(seq, maxRanges);
    if (typeof ranges === 'string') return `stream ${stream}: ${ranges}`;
    out.push({ stream, ranges });
  }
  return out;
}

/** A Pi id, as topics carry it (teleinfo-admit checked it already; a hand-made message is checked again). */
const PI_ID = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/;

/** Numbers in one `msg.ack`: a message of readings holds at most this many. */
const MAX_SEQS = 1000;

/** What is wrong with a `msg.ack`, or null. */
export function checkReadingAck(value: unknown): string | null {
  const ack = value as Partial<ReadingAck> | null;
  if (typeof ack !== 'object' || ack === null) return 'msg.ack is {pi, stream, seqs}';
  if (typeof ack.pi !== 'string' || !PI_ID.test(ack.pi)) return 'msg.ack.pi is a Pi id';
  if (!isStreamId(ack.stream)) return 'msg.ack.stream is a stream id';
  if (!Array.isArray(ack.seqs) || ack.seqs.length === 0 || ack.seqs.length > MAX_SEQS)
    return `msg.ack.seqs is an array of 1 to ${MAX_SEQS} sequence numbers`;
  for (const seq of ack.seqs)
    if (!Number.isSafeInteger(seq) || seq < 0) return 'msg.ack.seqs holds whole numbers';
  return null;
}

/**
 * A server's acknowledgements waiting to be published: per Pi and stream, the numbers settled since the last
 * publication, merged into ranges. Bounded: at most `maxPis` Pis wait (past them an acknowledgement is counted and
 * forgotten: its Pi sends those readings again after its stall), `maxRanges` ranges per stream.
 */
export class AckCollector {
  private readonly pending = new Map<string, Map<string, SeqRanges>>();
  readonly counters = { settled: 0, published: 0, forgotten: 0 };

  constructor(
    private readonly maxPis = 100_000,
    private readonly maxRanges = 10_000,
  ) {}

  get waiting(): number {
    return this.pending.size;
  }

  add(ack: ReadingAck): void {
    let streams = this.pending.get(ack.pi);
    if (!streams) {
      if (this.pending.size >= this.maxPis) {
        this.counters.forgotten += ack.seqs.length;
        return;
      }
      this.pending.set(ack.pi, (streams = new Map<string, SeqRanges>()));
    }
    let ranges = streams.get(ack.stream);
    if (!ranges) {
      if (streams.size >= MAX_STREAMS) {
        this.counters.forgotten += ack.seqs.length;
        return;
      }
      streams.set(ack.stream, (ranges = new SeqRanges(this.maxRanges)));
    }
    const before = ranges.forgotten;
    ranges.addAll(ack.seqs);
    this.counters.settled += ack.seqs.length;
    this.counters.forgotten += ranges.forgotten - before;
  }

  /** The acknowledgements to publish now, one per Pi, and forget them. */
  drain(): { pi: string; payload: AckPayload }[] {
    const out: { pi: string; payload: AckPayload }[] = [];
    for (const [pi, streams] of this.pending) {
      const acks = [...streams].map(([stream, ranges]) => ({ stream, seq: ranges.toString() }));
      out.push({ pi, payload: { acks } });
    }
    this.counters.published += out.length;
    this.pending.clear();
    return out;
  }
}
