import path from 'node:path';
import { randomBytes } from 'node:crypto';
import {
  checkRecordSizes,
  encodeFrames,
  encodeRawFrames,
  FRAME_OVERHEAD,
  frameEnd,
  linesOfLegacySegment,
  MAGIC,
  MAX_RECORD_BYTES,
  scanFrames,
} from './frame';
import { nodeIo, type SpoolIo } from './io';

/**
 * A bounded FIFO of text records on disk, in segment files of checked frames (./frame.ts). Appending is the
 * moment a record counts as accepted; it leaves only when its consumer acknowledges it, and the head position is
 * saved on every acknowledgement, so a crash, a power cut or a restart resumes from the first unacknowledged
 * record. When full, whole segments are dropped from the oldest end and counted. Damaged bytes (a torn write, a
 * bad sector) are moved to `quarantine.jsonl`, counted and reported; no I/O error ends the process: an append
 * that fails throws to its caller, everything else is reported through `onFault` and retried.
 */

/**
 * `process`: a record survives a crash of Node-RED once appended (the page cache holds it).
 * `power`: appends are flushed to the device in groups (`commitMs`), and `commit` waits for that; the head file is
 * replaced atomically and durably.
 */
export type Durability = 'process' | 'power';

export type SpoolFaultKind = 'append' | 'head' | 'unlink' | 'sync' | 'read' | 'quarantine' | 'repair';

export interface SpoolOptions {
  /** Total size limit (default 100 MB). */
  readonly maxBytes?: number;
  /** Size at which a new segment file starts (default 1 MiB); also the granularity of drops. */
  readonly segmentBytes?: number;
  readonly durability?: Durability;
  /** `power`: the longest an append waits for its flush (default 200 ms). */
  readonly commitMs?: number;
  /** The quarantine file stops growing past this; further damaged bytes are only counted. */
  readonly quarantineMaxBytes?: number;
  readonly io?: SpoolIo;
  /** An I/O error the spool carried on through (the caller shows it). */
  readonly onFault?: (error: SpoolError) => void;
  /** Damaged bytes moved to the quarantine file. */
  readonly onQuarantine?: (bytes: number, where: string, reason: string) => void;
}

/** An I/O error of the spool, with what it was doing. */
export class SpoolError extends Error {
  readonly code: string | undefined;
  constructor(
    readonly kind: SpoolFaultKind,
    readonly cause: Error,
  ) {
    super(`spool ${kind}: ${cause.message}`);
    this.code = (cause as NodeJS.ErrnoException).code;
  }

  get diskFull(): boolean {
    return this.code === 'ENOSPC' || this.code === 'EDQUOT';
  }
}

interface Segment {
  readonly id: number;
  /** Logical size: the file header and the good frames. */
  bytes: number;
  lines: number;
  /** Its file exists with its header. */
  created: boolean;
  /** A failed write could not be undone: nothing more is appended to it. */
  broken: boolean;
}

/** A place between two records: segment id, byte offset and record count within it. */
export interface SpoolPosition {
  readonly segment: number;
  readonly offset: number;
  readonly lines: number;
}

export interface SpoolBatch {
  readonly count: number;
  /** The records, each followed by a newline (a line-protocol body). */
  readonly data: Buffer;
  readonly lines: string[];
  /** Position after the batch, for `ack`. */
  readonly end: SpoolPosition;
}

const SEGMENT = /^(\d{12})\.spool$/;
const HEAD = 'head.json';
/** Written in the head file: segments of a folder that has it are all of the checked format. */
const FORMAT = 2;
export const QUARANTINE = 'quarantine.jsonl';
const READ_CHUNK = MAX_RECORD_BYTES + FRAME_OVERHEAD;
/** The least a peek reads at once. */
const READ_AHEAD = 64 * 1024;

export class Spool {
  readonly durability: Durability;
  private readonly maxBytes: number;
  private readonly segmentBytes: number;
  private readonly commitMs: number;
  private readonly quarantineMaxBytes: number;
  private readonly io: SpoolIo;
  private segments: Segment[] = [];
  private head: SpoolPosition = { segment: 1, offset: MAGIC.length, lines: 0 };
  /** The sequence number of the record at the head: records are numbered in order since the spool was made. */
  private seq = 0;
  private streamId = '';
  private fd: number | null = null;
  /** Sums over `segments`, kept up to date rather than recomputed on every append. */
  private totalBytes = 0;
  private totalLines = 0;
  /** Acknowledged segments whose files go once the head that passed them is saved. */
  private obsolete: number[] = [];
  /** `power`: files written since the last flush, segment files closed but not flushed, and who waits. */
  private readonly dirty = new Set<number>();
  private retired: number[] = [];
  private dirDirty = false;
  private waiters: ((err?: Error) => void)[] = [];
  private commitTimer: NodeJS.Timeout | null = null;
  private committing = false;
  private quarantineBytes = 0;
  /** I/O errors not yet followed by a success of the same kind, the latest last. */
  private readonly faults = new Map<SpoolFaultKind, SpoolError>();
  readonly counters = {
    appended: 0,
    acked: 0,
    dropped: 0,
    recovered: 0,
    quarantinedBytes: 0,
    quarantines: 0,
    errors: 0,
  };

  constructor(
    readonly dir: string,
    private readonly options: SpoolOptions = {},
  ) {
    this.maxBytes = options.maxBytes ?? 100 * 1024 * 1024;
    this.segmentBytes = Math.min(options.segmentBytes ?? 1024 * 1024, Math.max(1024, this.maxBytes / 4));
    this.durability = options.durability ?? 'process';
    this.commitMs = options.commitMs ?? 200;
    this.quarantineMaxBytes = options.quarantineMaxBytes ?? 10 * 1024 * 1024;
    this.io = options.io ?? nodeIo;
    this.io.mkdir(dir);
    this.load();
  }

  /** Records waiting (not yet acknowledged). */
  get length(): number {
    return this.totalLines - this.head.lines;
  }

  /** The most bytes it holds before it drops its oldest records. */
  get capacity(): number {
    return this.maxBytes;
  }

  get bytes(): number {
    return this.totalBytes - this.head.offset;
  }

  /** The last I/O error the spool carried on through, until the same operation succeeds again. */
  get problem(): SpoolError | null {
    return [...this.faults.values()].at(-1) ?? null;
  }

  get quarantineFile(): string {
    return path.join(this.dir, QUARANTINE);
  }

  private get durable(): boolean {
    return this.durability === 'power';
  }

  private file(id: number): string {
    return path.join(this.dir, `${String(id).padStart(12, '0')}.spool`);
  }

  private addSegment(segment: Segment): void {
    this.segments.push(segment);
    this.totalBytes += segment.bytes;
    this.totalLines += segment.lines;
  }

  private shiftSegment(): Segment {
    const oldest = this.segments.shift()!;
    this.totalBytes -= oldest.bytes;
    this.totalLines -= oldest.lines;
    this.obsolete.push(oldest.id);
    return oldest;
  }

  private load(): void {
    const ids = this.io
      .readdir(this.dir)
      .map((f) => SEGMENT.exec(f))
      .filter((m): m is RegExpExecArray => m !== null)
      .map((m) => Number(m[1]))
      .sort((a, b) => a - b);
    const saved = this.readHead();
    this.quarantineBytes = this.io.size(this.quarantineFile);
    let head: SpoolPosition | null = null;
    for (const id of ids) {
      // Left by a cut between saving the head that passed them and removing them: acknowledged already.
      if (saved && id < saved.segment) this.obsolete.push(id);
      else {
        // Only a folder whose head says this format was never written by the first one.
        const at = this.loadSegment(
          id,
          saved?.segment === id ? saved.offset : null,
          saved?.format !== FORMAT,
        );
        head ??= at;
      }
    }
    if (this.segments.length === 0) {
      const id = Math.max(saved?.segment ?? 1, (ids.at(-1) ?? 0) + 1);
      this.addSegment({ id, bytes: MAGIC.length, lines: 0, created: false, broken: false });
    }
    this.head = head ?? { segment: this.segments[0].id, offset: MAGIC.length, lines: 0 };
    // A head of before the numbering (or none): a new stream, numbered from here; nobody holds its numbers yet.
    const numbered =
      saved?.stream !== undefined && saved.segment === this.head.segment && saved.offset === this.head.offset;
    this.streamId = numbered ? saved.stream! : randomBytes(8).toString('hex');
    this.seq = numbered ? saved.seq! : 0;
    this.counters.recovered = this.length;
    if (
      !numbered ||
      this.obsolete.length > 0 ||
      saved?.format !== FORMAT ||
      saved.segment !== this.head.segment
    )
      this.saveHead();
  }

  private readHead(): {
    segment: number;
    offset: number;
    format: number;
    stream?: string;
    seq?: number;
  } | null {
    try {
      const saved = JSON.parse(this.io.readFile(path.join(this.dir, HEAD))?.toString() ?? 'null') as {
        segment?: unknown;
        offset?: unknown;
        format?: unknown;
        stream?: unknown;
        seq?: unknown;
      } | null;
      if (saved && Number.isSafeInteger(saved.segment) && Number.isSafeInteger(saved.offset)) {
        const numbered =
          typeof saved.stream === 'string' &&
          /^[0-9a-f]{16}$/.test(saved.stream) &&
          Number.isSafeInteger(saved.seq) &&
          (saved.seq as number) >= 0;
        return {
          segment: saved.segment as number,
          offset: saved.offset as number,
          format: Number(saved.format ?? 1),
          ...(numbered ? { stream: saved.stream as string, seq: saved.seq as number } : {}),
        };
      }
    } catch {
      // A torn head file: the old one was replaced atomically, so this is a head saved by hand. Start over.
    }
    return null;
  }

  /**
   * Read a segment, move what is damaged in it to the quarantine, and return where the head is in it (the first
   * record after `headOffset`, or its start).
   */
  private loadSegment(id: number, headOffset: number | null, mayBeLegacy: boolean): SpoolPosition {
    const file = this.file(id);
    let data = this.io.readFile(file) ?? Buffer.alloc(0);
    const headed = data.subarray(0, MAGIC.length).equals(MAGIC);
    // Old segments are text: no NUL byte, which a torn write leaves so often.
    const legacy = !headed && mayBeLegacy && data.length > 0 && !data.includes(0);
    if (!headed && !legacy) {
      // Created, its header torn or never written: no record in it.
      if (data.length > 0) {
        this.quarantine(data, file, 'torn file header');
        this.io.truncate(file, 0);
      }
      this.addSegment({ id, bytes: MAGIC.length, lines: 0, created: false, broken: false });
      return { segment: id, offset: MAGIC.length, lines: 0 };
    }
    let offset = headOffset;
    if (legacy) {
      const old = linesOfLegacySegment(data);
      if (old.tornBytes > 0)
        this.quarantine(data.subarray(data.length - old.tornBytes), `${file} (old format)`, 'torn record');
      // The old head counted bytes of lines; the same number of records is its place in the new frames.
      let consumed = 0;
      for (let end = 0; offset !== null && consumed < old.records.length; consumed++) {
        end += old.records[consumed].length + 1;
        if (end > offset) break;
      }
      data = encodeRawFrames(old.records);
      offset = offset === null ? null : frameOffsetAfter(data, consumed);
      this.replaceFile(file, data);
    }
    const scan = scanFrames(data, MAGIC.length);
    if (scan.damaged.length > 0) {
      for (const { from, to } of scan.damaged)
        this.quarantine(data.subarray(from, to), `${file} at byte ${from}`, describeDamage(data, from, to));
      const tailOnly = scan.damaged.length === 1 && scan.damaged[0].to === data.length;
      const good = tailOnly ? scan.damaged[0].from : MAGIC.length;
      if (tailOnly) {
        this.io.truncate(file, good);
        data = data.subarray(0, good);
      } else {
        // Damage inside: the good frames are written again, so that offsets in memory are offsets in the file.
        const records = scan.starts.map((start, i) => data.subarray(start + 8, scan.ends[i] - 1));
        const kept = offset === null ? 0 : scan.ends.filter((end) => end <= offset!).length;
        data = encodeRawFrames(records);
        const ends = scanFrames(data, MAGIC.length).ends;
        offset = offset === null ? null : kept === 0 ? MAGIC.length : ends[kept - 1];
        this.replaceFile(file, data);
        scan.ends.splice(0, scan.ends.length, ...ends);
      }
    }
    const ends = scan.ends;
    this.addSegment({ id, bytes: data.length, lines: ends.length, created: true, broken: false });
    // The head goes to the last record boundary at or before the saved offset: a record is replayed, never skipped.
    let lines = 0;
    while (offset !== null && lines < ends.length && ends[lines] <= offset) lines++;
    return { segment: id, offset: lines === 0 ? MAGIC.length : ends[lines - 1], lines };
  }

  private replaceFile(file: string, data: Buffer): void {
    const tmp = `${file}.tmp`;
    this.io.writeFile(tmp, data, this.durable);
    this.io.rename(tmp, file);
    if (this.durable) this.io.syncDir(this.dir);
  }

  /** Keep damaged bytes for a person to look at, within a bound; count them whatever happens. */
  quarantine(bytes: Buffer, where: string, reason: string): void {
    this.counters.quarantinedBytes += bytes.length;
    this.counters.quarantines++;
    this.options.onQuarantine?.(bytes.length, where, reason);
    const record =
      JSON.stringify({
        time: new Date().toISOString(),
        where,
        reason,
        bytes: bytes.length,
        base64: bytes.toString('base64'),
      }) + '\n';
    if (this.quarantineBytes + record.length > this.quarantineMaxBytes) return;
    try {
      const fd = this.io.openAppend(this.quarantineFile);
      try {
        const data = Buffer.from(record);
        for (let at = 0; at < data.length;) at += this.io.write(fd, data, at);
      } finally {
        this.io.close(fd);
      }
      this.quarantineBytes += record.length;
    } catch (e) {
      this.report('quarantine', e as Error);
    }
  }

  private report(kind: SpoolFaultKind, cause: Error): void {
    const error = cause instanceof SpoolError ? cause : new SpoolError(kind, cause);
    this.counters.errors++;
    this.faults.delete(kind);
    this.faults.set(kind, error);
    this.options.onFault?.(error);
  }

  private succeeded(kind: SpoolFaultKind): void {
    this.faults.delete(kind);
  }

  /**
   * Append records; once this returns they survive a crash of the process (and, with `power`, a power cut once
   * `commit` has called back). Throws a SpoolError if the disk refused them: then none of them is in the spool.
   */
  append(records: readonly string[]): void {
    if (records.length === 0) return;
    checkRecordSizes(records);
    // A large append is cut into segment-sized pieces, so that a full spool drops exactly the oldest records.
    let chars = 0;
    for (const r of records) chars += r.length;
    if (chars > this.segmentBytes && records.length > 1) {
      const half = records.length >> 1;
      this.append(records.slice(0, half));
      this.append(records.slice(half));
      return;
    }
    const data = encodeFrames(records, false);
    if (data.length > this.maxBytes)
      throw new Error(`a record of ${data.length} bytes is larger than the spool can hold`);
    while (this.bytes + data.length > this.maxBytes && this.segments.length > 1) this.dropOldest();
    let last = this.segments[this.segments.length - 1];
    if (last.broken || last.bytes >= this.segmentBytes) last = this.roll(last);
    this.write(last, data);
    last.lines += records.length;
    this.totalLines += records.length;
    this.counters.appended += records.length;
    this.succeeded('append');
  }

  private roll(last: Segment): Segment {
    this.retire();
    const next: Segment = { id: last.id + 1, bytes: MAGIC.length, lines: 0, created: false, broken: false };
    this.addSegment(next);
    return next;
  }

  private write(segment: Segment, data: Buffer): void {
    const header = !segment.created;
    const bytes = header ? Buffer.concat([MAGIC, data]) : data;
    const file = this.file(segment.id);
    try {
      this.fd ??= this.io.openAppend(file);
      for (let at = 0; at < bytes.length;) {
        const n = this.io.write(this.fd, bytes, at);
        if (n <= 0) throw new Error(`wrote nothing of ${bytes.length - at} bytes`);
        at += n;
      }
    } catch (e) {
      // Put the file back as it was, so that what is in memory is what is in the file.
      try {
        this.io.truncate(file, header ? 0 : segment.bytes);
      } catch {
        segment.broken = true; // its torn end is quarantined at the next start
      }
      const error = new SpoolError('append', e as Error);
      this.report('append', error);
      throw error;
    }
    segment.created = true;
    segment.bytes += data.length;
    this.totalBytes += data.length;
    if (this.durable) {
      this.dirty.add(this.fd);
      if (header) this.dirDirty = true;
    }
  }

  /** The current segment file is done with: closed now, or once flushed (`power`). */
  private retire(): void {
    if (this.fd === null) return;
    if (this.durable && this.dirty.has(this.fd)) this.retired.push(this.fd);
    else this.closeQuietly(this.fd);
    this.fd = null;
  }

  private closeQuietly(fd: number): void {
    try {
      this.io.close(fd);
    } catch (e) {
      this.report('sync', e as Error);
    }
  }

  /**
   * Call back once what was appended so far survives what the durability promises: at once for `process`; after
   * the next group flush (within `commitMs`) for `power`, with the error if the flush failed.
   */
  commit(done: (err?: Error) => void): void {
    if (!this.durable) return done();
    this.waiters.push(done);
    this.commitTimer ??= setTimeout(() => this.flushGroup(), this.commitMs);
  }

  private flushGroup(): void {
    this.commitTimer = null;
    if (this.committing) return; // rescheduled when the flush in progress ends
    const fds = [...this.dirty];
    const closing = this.retired;
    const dirDirty = this.dirDirty;
    const waiting = this.waiters;
    this.dirty.clear();
    this.retired = [];
    this.dirDirty = false;
    this.waiters = [];
    this.committing = true;
    let left = fds.length;
    let failure: Error | null = null;
    const finished = () => {
      if (dirDirty && !failure) {
        try {
          this.io.syncDir(this.dir);
        } catch (e) {
          failure = e as Error;
        }
      }
      for (const fd of closing) this.closeQuietly(fd);
      this.committing = false;
      const error = failure ? new SpoolError('sync', failure) : undefined;
      if (error) this.report('sync', error);
      else this.succeeded('sync');
      for (const done of waiting) done(error);
      if (this.waiters.length > 0) this.commitTimer ??= setTimeout(() => this.flushGroup(), this.commitMs);
    };
    if (left === 0) return finished();
    for (const fd of fds)
      this.io.datasync(fd, (err) => {
        if (err) failure ??= err;
        if (--left === 0) finished();
      });
  }

  /** The position after the last record. */
  get tail(): SpoolPosition {
    const last = this.segments[this.segments.length - 1];
    return { segment: last.id, offset: last.bytes, lines: last.lines };
  }

  /** This spool's stream: a random id made with it, kept with its head. */
  get stream(): string {
    return this.streamId;
  }

  /** The sequence number of the first record not yet acknowledged. */
  get headSeq(): number {
    return this.seq;
  }

  /** The sequence number the next record appended gets. */
  get nextSeq(): number {
    return this.seq + this.length;
  }

  /** The position of the first record not yet acknowledged. */
  get headPosition(): SpoolPosition {
    return { ...this.head };
  }

  /**
   * Up to `max` records from the head (or from `from`, a position this spool gave, if it was not dropped since),
   * without removing them. A frame found damaged since the start (the disk changed under us) is quarantined and
   * skipped. Throws a SpoolError if the disk cannot be read (the caller tries again later).
   */
  peek(max: number, from?: SpoolPosition): SpoolBatch {
    // Each record's bytes and LF are moved over the frame headers of the buffer just read as its frame is checked;
    // only their ends are kept (a batch in flight holds a buffer per read and an array of numbers, not an object per
    // record).
    const pieces: Buffer[] = [];
    const ends: number[] = [];
    let bodyBytes = 0;
    const start = from && !before(from, this.head) ? from : this.head;
    let { segment, offset, lines: lineNo } = start;
    let index = this.segments.findIndex((s) => s.id === segment);
    if (index < 0) {
      ({ segment, offset, lines: lineNo } = this.head);
      index = 0;
    }
    while (index < this.segments.length && ends.length < max) {
      const seg = this.segments[index];
      if (offset >= seg.bytes) {
        if (index === this.segments.length - 1) break;
        index++;
        segment = this.segments[index].id;
        offset = MAGIC.length;
        lineNo = 0;
        continue;
      }
      // Read about what is wanted (a replay step wants ~100 records, not a whole segment), and again, larger, when
      // the next frame is longer than that.
      const left = seg.bytes - offset;
      let size = Math.min(READ_CHUNK, left, Math.max(READ_AHEAD, (max - ends.length) * 1024));
      let buf = this.read(seg, offset, size);
      let n = buf.length;
      const length = n >= 8 ? buf.readUInt32LE(0) : 0;
      if (n < left && length + FRAME_OVERHEAD > n && length <= MAX_RECORD_BYTES) {
        size = Math.min(left, length + FRAME_OVERHEAD);
        buf = this.read(seg, offset, size);
        n = buf.length;
      }
      // Records are copied over their own frames' headers, towards the start of the buffer just read.
      let at = 0;
      let kept = 0;
      while (ends.length < max) {
        const end = frameEnd(buf, at, n);
        if (end < 0) break;
        buf.copyWithin(kept, at + 8, end);
        kept += end - at - 8;
        ends.push(bodyBytes + kept);
        at = end;
        lineNo++;
      }
      if (kept > 0) pieces.push(buf.subarray(0, kept));
      bodyBytes += kept;
      if (at === 0 && ends.length < max) at = this.skipDamage(seg, offset, buf, n);
      offset += at;
    }
    let data: Buffer | null = null;
    let lines: string[] | null = null;
    return {
      count: ends.length,
      get data() {
        data ??= pieces.length === 1 ? pieces[0] : Buffer.concat(pieces, bodyBytes);
        return data;
      },
      get lines() {
        if (lines === null) {
          const body = this.data;
          lines = ends.map((end, i) => body.toString('utf8', i === 0 ? 0 : ends[i - 1], end - 1));
        }
        return lines;
      },
      end: { segment, offset, lines: lineNo },
    };
  }

  /** `size` bytes of a segment from `offset` (fewer if the file is shorter); a read error is reported and thrown. */
  private read(seg: Segment, offset: number, size: number): Buffer {
    const buf = Buffer.allocUnsafe(size);
    try {
      return buf.subarray(0, this.io.readAt(this.file(seg.id), buf, offset));
    } catch (e) {
      const error = new SpoolError('read', e as Error);
      this.report('read', error);
      throw error;
    }
  }

  /** No good frame at `offset`: quarantine up to the next one (or the segment's end) and say how far that is. */
  private skipDamage(seg: Segment, offset: number, buf: Buffer, n: number): number {
    let to = 1;
    while (to < n && frameEnd(buf, to, n) < 0) to++;
    // Nothing could be read: the file is shorter than it was, and the rest of the segment is gone.
    if (n === 0) to = seg.bytes - offset;
    const where = `${this.file(seg.id)} at byte ${offset}`;
    this.quarantine(
      buf.subarray(0, Math.min(to, n)),
      where,
      n === 0 ? 'missing bytes' : 'damaged since start',
    );
    return to;
  }

  /**
   * The records up to `end` were delivered: move the head past them and forget finished segments. Returns how
   * many records that released (none if they were dropped meanwhile because the spool was full).
   */
  ack(end: SpoolPosition): number {
    if (!before(this.head, end)) return 0;
    let released = 0;
    while (this.segments.length > 1 && this.segments[0].id < end.segment) {
      const done = this.shiftSegment();
      released += done.lines - (done.id === this.head.segment ? this.head.lines : 0);
      if (this.segments[0].id === end.segment)
        this.head = { segment: end.segment, offset: MAGIC.length, lines: 0 };
    }
    released += end.lines - this.head.lines;
    this.head = { ...end };
    const only = this.segments[0];
    if (this.segments.length === 1 && only.bytes === this.head.offset && only.bytes >= this.segmentBytes) {
      // The only segment is finished and consumed: start afresh rather than grow it forever.
      this.retire();
      this.shiftSegment();
      this.addSegment({ id: only.id + 1, bytes: MAGIC.length, lines: 0, created: false, broken: false });
      this.head = { segment: only.id + 1, offset: MAGIC.length, lines: 0 };
    }
    this.counters.acked += released;
    this.seq += released;
    this.saveHead();
    return released;
  }

  private dropOldest(): void {
    const oldest = this.shiftSegment();
    const dropped = oldest.lines - (oldest.id === this.head.segment ? this.head.lines : 0);
    this.counters.dropped += dropped;
    this.seq += dropped;
    this.head = { segment: this.segments[0].id, offset: MAGIC.length, lines: 0 };
    this.saveHead();
  }

  /** Replace the head file atomically; only then remove the segment files it passed. */
  private saveHead(): void {
    const tmp = path.join(this.dir, `${HEAD}.tmp`);
    try {
      this.io.writeFile(
        tmp,
        JSON.stringify({ ...this.head, format: FORMAT, stream: this.streamId, seq: this.seq }),
        this.durable,
      );
      this.io.rename(tmp, path.join(this.dir, HEAD));
      if (this.durable) this.io.syncDir(this.dir);
    } catch (e) {
      // The old head stays: a restart would send some records again, which their consumers overwrite.
      this.report('head', e as Error);
      return;
    }
    this.succeeded('head');
    const keep: number[] = [];
    for (const id of this.obsolete) {
      try {
        this.io.unlink(this.file(id));
      } catch (e) {
        keep.push(id);
        this.report('unlink', e as Error);
      }
    }
    this.obsolete = keep;
  }

  /** Flush and close: what was appended survives whatever the durability, once this returns. */
  close(): void {
    if (this.commitTimer) clearTimeout(this.commitTimer);
    this.commitTimer = null;
    let failure: Error | undefined;
    for (const fd of new Set([...this.dirty, ...this.retired, ...(this.fd === null ? [] : [this.fd])])) {
      try {
        this.io.datasyncNow(fd);
      } catch (e) {
        failure ??= e as Error;
      }
      this.closeQuietly(fd);
    }
    this.dirty.clear();
    this.retired = [];
    this.fd = null;
    const error = failure ? new SpoolError('sync', failure) : undefined;
    if (error) this.report('sync', error);
    for (const done of this.waiters.splice(0)) done(error);
    if (this.faults.has('head')) this.saveHead();
  }
}

function before(a: SpoolPosition, b: SpoolPosition): boolean {
  return a.segment < b.segment || (a.segment === b.segment && a.offset < b.offset);
}

/** Offset after the first `count` frames of `data`. */
function frameOffsetAfter(data: Buffer, count: number): number {
  let at = MAGIC.length;
  for (let i = 0; i < count; i++) at = frameEnd(data, at);
  return at;
}

function describeDamage(data: Buffer, from: number, to: number): string {
  if (to === data.length && data.subarray(from, to).every((b) => b === 0)) return 'zero-filled tail';
  return to === data.length ? 'torn or damaged tail' : 'damaged record';
}
