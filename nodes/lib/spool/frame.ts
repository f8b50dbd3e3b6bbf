import { crc32 } from 'node:zlib';

/**
 * How a spool segment holds its records, so that recovery can tell exactly where the last good one ends:
 *
 *   file   = MAGIC frame*
 *   frame  = length (u32 LE, bytes of payload) | crc32 (u32 LE, of the payload) | payload | LF
 *
 * The LF closes every frame, so a torn or zero-filled tail never passes, and `payload LF` is what a line-protocol
 * body needs. Segments written before this format (records one per line, no header) are read and migrated.
 */

export const MAGIC = Buffer.from('TISPOOL2');
export const FRAME_OVERHEAD = 9;
const LF = 0x0a;
/** The longest record a spool holds; also bounds how far recovery reads ahead. */
export const MAX_RECORD_BYTES = (1 << 20) - 1;

/** Refuse a batch holding a record longer than the spool can hold, before any of it is queued. */
export function checkRecordSizes(records: readonly string[], what = 'record'): void {
  // UTF-8 is at most 3 bytes per UTF-16 unit: only long strings need measuring.
  const long = records.find(
    (r) => r.length * 3 > MAX_RECORD_BYTES && Buffer.byteLength(r) > MAX_RECORD_BYTES,
  );
  if (long !== undefined)
    throw new Error(`a ${what} of ${Buffer.byteLength(long)} bytes is longer than ${MAX_RECORD_BYTES}`);
}

/** The frames of `records`, back to back, optionally after the file header. */
export function encodeFrames(records: readonly string[], withMagic: boolean): Buffer {
  // Room for the longest UTF-8 the records can take (3 bytes per UTF-16 unit): each is measured as it is written,
  // not scanned once more beforehand.
  let room = withMagic ? MAGIC.length : 0;
  for (let i = 0; i < records.length; i++) room += records[i].length * 3 + FRAME_OVERHEAD;
  const out = Buffer.allocUnsafe(room);
  let at = 0;
  if (withMagic) at += MAGIC.copy(out, 0);
  for (let i = 0; i < records.length; i++) {
    const start = at + 8;
    const length = out.write(records[i], start, 'utf8');
    const end = start + length;
    out.writeUInt32LE(length, at);
    out.writeUInt32LE(crc32(out.subarray(start, end)), at + 4);
    out[end] = LF;
    at = end + 1;
  }
  return out.subarray(0, at);
}

/** The end of the frame starting at `at` in `buf`, or -1 if no whole, intact frame starts there. */
export function frameEnd(buf: Buffer, at: number, limit = buf.length): number {
  if (at + FRAME_OVERHEAD > limit) return -1;
  const length = buf.readUInt32LE(at);
  if (length > MAX_RECORD_BYTES) return -1;
  const end = at + 8 + length;
  if (end >= limit || buf[end] !== LF) return -1;
  return crc32(buf.subarray(at + 8, end)) === buf.readUInt32LE(at + 4) ? end + 1 : -1;
}

export interface Scan {
  /** Start and end offsets of each good frame, in order. */
  readonly starts: number[];
  readonly ends: number[];
  /** Byte ranges that hold no good frame: a torn tail, a damaged record, zeros. */
  readonly damaged: { from: number; to: number }[];
}

/**
 * Every good frame of `buf` from `start`: after a damaged stretch, the scan resumes at the next offset where an
 * intact frame starts (a CRC32 passing by chance is one in four billion, and it also needs the LF).
 */
export function scanFrames(buf: Buffer, start: number): Scan {
  const starts: number[] = [];
  const ends: number[] = [];
  const damaged: Scan['damaged'] = [];
  let at = start;
  let badFrom = -1;
  while (at < buf.length) {
    const end = frameEnd(buf, at);
    if (end < 0) {
      if (badFrom < 0) badFrom = at;
      at++;
      continue;
    }
    if (badFrom >= 0) damaged.push({ from: badFrom, to: at });
    badFrom = -1;
    starts.push(at);
    ends.push(end);
    at = end;
  }
  if (badFrom >= 0) damaged.push({ from: badFrom, to: buf.length });
  return { starts, ends, damaged };
}

/** A segment of the first format: records one per line; a last line without its newline was never accepted. */
export function linesOfLegacySegment(data: Buffer): { records: Buffer[]; tornBytes: number } {
  const end = data.lastIndexOf(LF) + 1;
  const records: Buffer[] = [];
  let from = 0;
  for (let nl = data.indexOf(LF); nl >= 0 && nl < end; nl = data.indexOf(LF, from)) {
    records.push(data.subarray(from, nl));
    from = nl + 1;
  }
  return { records, tornBytes: data.length - end };
}

/** Frames of raw record bytes (migration and repair copy records without decoding them). */
export function encodeRawFrames(records: readonly Buffer[]): Buffer {
  let size = MAGIC.length;
  for (const r of records) size += r.length + FRAME_OVERHEAD;
  const out = Buffer.allocUnsafe(size);
  let at = MAGIC.copy(out, 0);
  for (const r of records) {
    out.writeUInt32LE(r.length, at);
    out.writeUInt32LE(crc32(r), at + 4);
    r.copy(out, at + 8);
    out[at + 8 + r.length] = LF;
    at += r.length + FRAME_OVERHEAD;
  }
  return out;
}
