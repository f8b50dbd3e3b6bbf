import fs from 'node:fs';
import path from 'node:path';

/**
 * A bounded FIFO of text records (one per line) on disk, in segment files. Appending is the moment a
 * record counts as accepted; a record leaves only when its consumer acknowledges it, and the head position
 * is saved on every acknowledgement, so a crash or a restart replays from the first unacknowledged record.
 * When full, whole segments are dropped from the oldest end and counted.
 * Records must not contain a newline (line protocol never does).
 */

export interface SpoolOptions {
  /** Total size limit (default 100 MB). */
  readonly maxBytes?: number;
  /** Size at which a new segment file starts (default 1 MiB); also the granularity of drops. */
  readonly segmentBytes?: number;
}

interface Segment {
  readonly id: number;
  bytes: number;
  lines: number;
}

export interface SpoolBatch {
  /** The records as stored: each followed by a newline (a line-protocol body as it is). */
  readonly data: Buffer;
  readonly count: number;
  /** The records as strings, split on demand. */
  readonly lines: string[];
  /** Position after the batch, for `ack`. */
  readonly end: SpoolPosition;
}

/** A place between two records: segment id, byte offset and record count within it. */
export interface SpoolPosition {
  readonly segment: number;
  readonly offset: number;
  readonly lines: number;
}

const SEGMENT = /^(\d{12})\.spool$/;
const HEAD = 'head.json';
const READ_CHUNK = 1 << 20;
/** The longest record a spool can hold (it reads records in chunks of this size). */
export const MAX_RECORD_BYTES = READ_CHUNK - 1;

/** Refuse a batch holding a record longer than the spool can read back, before any of it is queued. */
export function checkRecordSizes(records: readonly string[], what = 'record'): void {
  // UTF-8 is at most 3 bytes per UTF-16 unit: only long strings need measuring.
  const long = records.find(
    (r) => r.length * 3 > MAX_RECORD_BYTES && Buffer.byteLength(r) > MAX_RECORD_BYTES,
  );
  if (long !== undefined)
    throw new Error(`a ${what} of ${Buffer.byteLength(long)} bytes is longer than ${MAX_RECORD_BYTES}`);
}

export class Spool {
  private readonly maxBytes: number;
  private readonly segmentBytes: number;
  private segments: Segment[] = [];
  private head = { segment: 0, offset: 0, lines: 0 };
  private fd: number | null = null;
  /** Sums over `segments`, kept up to date rather than recomputed on every append. */
  private totalBytes = 0;
  private totalLines = 0;
  /** Records accepted, acknowledged and dropped since this process opened the spool. */
  readonly counters = { appended: 0, acked: 0, dropped: 0, recovered: 0, truncatedBytes: 0 };

  constructor(
    readonly dir: string,
    options: SpoolOptions = {},
  ) {
    this.maxBytes = options.maxBytes ?? 100 * 1024 * 1024;
    this.segmentBytes = Math.min(options.segmentBytes ?? 1024 * 1024, Math.max(1024, this.maxBytes / 4));
    fs.mkdirSync(dir, { recursive: true });
    this.load();
  }

  /** Records waiting (not yet acknowledged). */
  get length(): number {
    return this.totalLines - this.head.lines;
  }

  get bytes(): number {
    return this.totalBytes - this.head.offset;
  }

  private addSegment(segment: Segment): void {
    this.segments.push(segment);
    this.totalBytes += segment.bytes;
    this.totalLines += segment.lines;
  }

  /** Remove the oldest segment file and return it. */
  private removeOldest(): Segment {
    const oldest = this.segments.shift()!;
    this.totalBytes -= oldest.bytes;
    this.totalLines -= oldest.lines;
    fs.rmSync(this.file(oldest.id), { force: true });
    return oldest;
  }

  private file(id: number): string {
    return path.join(this.dir, `${String(id).padStart(12, '0')}.spool`);
  }

  private load(): void {
    const ids = fs
      .readdirSync(this.dir)
      .map((f) => SEGMENT.exec(f))
      .filter((m): m is RegExpExecArray => m !== null)
      .map((m) => Number(m[1]))
      .sort((a, b) => a - b);
    for (const id of ids) {
      const data = fs.readFileSync(this.file(id));
      // A record cut by a crash mid-write has no newline yet: it was never accepted.
      const end = data.lastIndexOf(0x0a) + 1;
      if (end < data.length) {
        fs.truncateSync(this.file(id), end);
        this.counters.truncatedBytes += data.length - end;
      }
      let lines = 0;
      for (let i = 0; i < end; i++) if (data[i] === 0x0a) lines++;
      this.addSegment({ id, bytes: end, lines });
    }
    try {
      const saved = JSON.parse(fs.readFileSync(path.join(this.dir, HEAD), 'utf8')) as typeof this.head;
      const first = this.segments[0];
      if (first && saved.segment === first.id && saved.offset <= first.bytes) this.head = saved;
      else if (first) this.head = { segment: first.id, offset: 0, lines: 0 };
    } catch {
      this.head = { segment: this.segments[0]?.id ?? 1, offset: 0, lines: 0 };
    }
    if (this.segments.length === 0) this.addSegment({ id: this.head.segment || 1, bytes: 0, lines: 0 });
    this.head.segment = this.segments[0].id;
    this.counters.recovered = this.length;
  }

  /** Append records; once this returns they survive a crash of the process. */
  append(records: readonly string[]): void {
    if (records.length === 0) return;
    // Joined with a trailing empty record, the text is flat and ends with a newline: encoded once below.
    const text = records.concat('').join('\n');
    // A large append is cut into segment-sized pieces, so that a full spool drops exactly the oldest records.
    if (text.length > this.segmentBytes && records.length > 1) {
      const half = records.length >> 1;
      this.append(records.slice(0, half));
      this.append(records.slice(half));
      return;
    }
    const data = Buffer.from(text);
    const size = data.length;
    if (size > this.maxBytes || (records.length === 1 && size > MAX_RECORD_BYTES + 1))
      throw new Error(`a record of ${size} bytes is larger than the spool can hold`);
    while (this.bytes + size > this.maxBytes && this.segments.length > 1) this.dropOldest();
    let last = this.segments[this.segments.length - 1];
    if (last.bytes >= this.segmentBytes) {
      this.closeFd();
      last = { id: last.id + 1, bytes: 0, lines: 0 };
      this.addSegment(last);
    }
    this.fd ??= fs.openSync(this.file(last.id), 'a');
    fs.writeSync(this.fd, data);
    last.bytes += size;
    last.lines += records.length;
    this.totalBytes += size;
    this.totalLines += records.length;
    this.counters.appended += records.length;
  }

  /** Flush written records to the device (power loss, not only process crash). */
  sync(): void {
    if (this.fd !== null) fs.fdatasyncSync(this.fd);
  }

  /** The position after the last record (what `peek` would give as `end` for everything). */
  get tail(): SpoolPosition {
    const last = this.segments[this.segments.length - 1];
    return { segment: last.id, offset: last.bytes, lines: last.lines };
  }

  /** The position of the first record not yet acknowledged. */
  get headPosition(): SpoolPosition {
    return { ...this.head };
  }

  /**
   * Up to `max` records from the head (or from `from`, a position this spool gave, if it was not dropped since),
   * without removing them.
   */
  peek(max: number, from?: SpoolPosition): SpoolBatch {
    const parts: Buffer[] = [];
    let count = 0;
    const start = from && !this.before(from, this.head) ? from : this.head;
    let { segment, offset, lines: lineNo } = start;
    let index = this.segments.findIndex((s) => s.id === segment);
    while (index >= 0 && index < this.segments.length && count < max) {
      const seg = this.segments[index];
      if (offset >= seg.bytes) {
        if (index === this.segments.length - 1) break;
        index++;
        segment = this.segments[index].id;
        offset = 0;
        lineNo = 0;
        continue;
      }
      const buf = Buffer.allocUnsafe(Math.min(READ_CHUNK, seg.bytes - offset));
      const fd = fs.openSync(this.file(seg.id), 'r');
      let n: number;
      try {
        n = fs.readSync(fd, buf, 0, buf.length, offset);
      } finally {
        fs.closeSync(fd);
      }
      let taken = 0;
      for (let nl = buf.indexOf(0x0a); nl >= 0 && nl < n && count < max; nl = buf.indexOf(0x0a, nl + 1)) {
        taken = nl + 1;
        count++;
        lineNo++;
      }
      if (taken === 0)
        throw new Error(`spool record longer than ${READ_CHUNK} bytes in ${this.file(seg.id)}`);
      parts.push(buf.subarray(0, taken));
      offset += taken;
    }
    const data = parts.length === 1 ? parts[0] : Buffer.concat(parts);
    let lines: string[] | null = null;
    return {
      data,
      count,
      get lines() {
        lines ??= count === 0 ? [] : data.toString('utf8', 0, data.length - 1).split('\n');
        return lines;
      },
      end: { segment, offset, lines: lineNo },
    };
  }

  /** The batch was delivered: move the head past it and forget finished segments. */
  ack(end: SpoolPosition, count: number): void {
    // A position from before the head (its segment was dropped when the spool was full) has nothing left to ack.
    if (!this.before(this.head, end)) return;
    while (this.segments.length > 1 && this.segments[0].id < end.segment) this.removeOldest();
    this.head = { ...end };
    const first = this.segments[0];
    if (this.segments.length === 1 && first.bytes === this.head.offset && first.bytes >= this.segmentBytes) {
      // The only segment is finished and consumed: start afresh rather than grow it forever.
      this.closeFd();
      this.removeOldest();
      this.addSegment({ id: first.id + 1, bytes: 0, lines: 0 });
      this.head = { segment: first.id + 1, offset: 0, lines: 0 };
    }
    this.counters.acked += count;
    this.saveHead();
  }

  private before(a: SpoolPosition, b: SpoolPosition): boolean {
    return a.segment < b.segment || (a.segment === b.segment && a.offset < b.offset);
  }

  private dropOldest(): void {
    const oldest = this.removeOldest();
    const lost = oldest.lines - (oldest.id === this.head.segment ? this.head.lines : 0);
    this.counters.dropped += lost;
    this.head = { segment: this.segments[0].id, offset: 0, lines: 0 };
    this.saveHead();
  }

  private saveHead(): void {
    const tmp = path.join(this.dir, `${HEAD}.tmp`);
    fs.writeFileSync(tmp, JSON.stringify(this.head));
    fs.renameSync(tmp, path.join(this.dir, HEAD));
  }

  private closeFd(): void {
    if (this.fd !== null) fs.closeSync(this.fd);
    this.fd = null;
  }

  close(): void {
    this.closeFd();
  }
}
