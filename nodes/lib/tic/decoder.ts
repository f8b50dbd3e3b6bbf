import { labelSpec, type TicMode } from './labels';

/**
 * Byte-level TIC stream decoder: bytes arrive in any chunking (as a serial port delivers them) and
 * complete frames come out. Frame = STX groups ETX; group = LF label SEP [horodate SEP] data SEP checksum CR,
 * SEP = SP (historic) or HT (standard). Each group is checked on its own: a bad group is dropped and counted,
 * the rest of its frame survives.
 */

export interface TicGroup {
  readonly label: string;
  /** Typed by the label table: a number for decimal labels, the data as sent (padding kept) otherwise. */
  readonly value: number | string;
  /** Standard mode: the raw horodate `SAAMMJJhhmmss`. */
  readonly horodate?: string;
}

export interface TicFrame {
  readonly mode: TicMode;
  readonly groups: TicGroup[];
}

export type TicErrorKind = 'checksum' | 'format' | 'interrupted' | 'oversize' | 'mode' | 'value';

export interface TicError {
  readonly kind: TicErrorKind;
  readonly message: string;
  /** The offending bytes, printable, control characters escaped. */
  readonly bytes: string;
}

export interface TicCounters {
  frames: number;
  groups: number;
  checksumErrors: number;
  formatErrors: number;
  interruptedFrames: number;
  oversizeErrors: number;
  modeErrors: number;
  valueErrors: number;
  /** Groups of a frame whose start was not seen (the port opened mid-frame): expected, not an error. */
  partialGroups: number;
  /** Bytes outside any group. */
  noiseBytes: number;
}

export interface TicDecoderOptions {
  /** `auto` takes each group's mode from its separator; a forced mode rejects groups of the other. */
  readonly mode?: TicMode | 'auto';
  /** A group longer than this is dropped (PJOURF+1, the longest, is 109 bytes). */
  readonly maxGroupBytes?: number;
  /** A frame with more groups than this is dropped (a standard three-phase frame has about 70). */
  readonly maxGroupsPerFrame?: number;
}

export interface TicPushResult {
  readonly frames: TicFrame[];
  readonly errors: TicError[];
}

const STX = 0x02;
const ETX = 0x03;
const EOT = 0x04;
const LF = 0x0a;
const CR = 0x0d;
const HT = 0x09;
const SP = 0x20;

const ERROR_COUNTER: Record<TicErrorKind, keyof TicCounters> = {
  checksum: 'checksumErrors',
  format: 'formatErrors',
  interrupted: 'interruptedFrames',
  oversize: 'oversizeErrors',
  mode: 'modeErrors',
  value: 'valueErrors',
};

export function ticChecksum(bytes: Uint8Array, start: number, end: number): number {
  let sum = 0;
  for (let i = start; i < end; i++) sum += bytes[i];
  return (sum & 0x3f) + 0x20;
}

export function newCounters(): TicCounters {
  return {
    frames: 0,
    groups: 0,
    checksumErrors: 0,
    formatErrors: 0,
    interruptedFrames: 0,
    oversizeErrors: 0,
    modeErrors: 0,
    valueErrors: 0,
    partialGroups: 0,
    noiseBytes: 0,
  };
}

export class TicStreamDecoder {
  readonly counters: TicCounters = newCounters();
  private readonly mode: TicMode | 'auto';
  private readonly maxGroupsPerFrame: number;
  private readonly group: Buffer;
  /** Bytes in the current group, or -1 between groups. */
  private groupLength = -1;
  private groupOverflow = false;
  /** STX seen and no ETX/EOT yet. */
  private inFrame = false;
  /** An STX, ETX or EOT has been seen: frames are delimited. Until then, lines may come without them. */
  private framed = false;
  private groups: TicGroup[] = [];
  private frameMode: TicMode | null = null;
  private frames: TicFrame[] = [];
  private errors: TicError[] = [];

  constructor(options: TicDecoderOptions = {}) {
    this.mode = options.mode ?? 'auto';
    this.group = Buffer.alloc(options.maxGroupBytes ?? 256);
    this.maxGroupsPerFrame = options.maxGroupsPerFrame ?? 128;
  }

  push(chunk: Uint8Array | string): TicPushResult {
    const bytes = typeof chunk === 'string' ? Buffer.from(chunk, 'latin1') : chunk;
    const group = this.group;
    const capacity = group.length;
    for (let i = 0; i < bytes.length; i++) {
      // 7-bit data read on an 8-bit port: bit 7 is the parity bit.
      const b = bytes[i] & 0x7f;
      if (this.groupLength >= 0) {
        if (b >= SP || b === HT) {
          if (this.groupLength < capacity) group[this.groupLength++] = b;
          else this.groupOverflow = true;
          continue;
        }
        if (b === CR) {
          this.endGroup();
          continue;
        }
        this.fail('format', 'group cut short by a control byte before its CR', group, 0, this.groupLength);
        this.groupLength = -1;
      }
      switch (b) {
        case LF:
          this.groupLength = 0;
          this.groupOverflow = false;
          break;
        case STX:
          if (this.inFrame) this.dropFrame('format', 'frame not terminated: STX before ETX');
          else this.dropPartialGroups();
          this.framed = true;
          this.inFrame = true;
          break;
        case ETX:
          if (this.inFrame) this.emitFrame();
          else this.dropPartialGroups();
          this.framed = true;
          this.inFrame = false;
          break;
        case EOT:
          if (this.inFrame) this.dropFrame('interrupted', 'frame interrupted by the meter (EOT)');
          else this.dropPartialGroups();
          this.framed = true;
          this.inFrame = false;
          break;
        default:
          this.counters.noiseBytes++;
      }
    }
    const result = { frames: this.frames, errors: this.errors };
    this.frames = [];
    this.errors = [];
    return result;
  }

  /**
   * The line went away (a serial adapter unplugged, a port reopened at another baud): the frame in progress can
   * never complete, so it is dropped as interrupted rather than glued to bytes from after the gap.
   */
  lineLost(): void {
    if (this.inFrame || this.groupLength >= 0 || (!this.framed && this.groups.length > 0)) {
      this.groupLength = -1;
      this.inFrame = false;
      this.dropFrame('interrupted', 'frame interrupted: the serial line was lost');
    }
  }

  /** Errors recorded outside push() (lineLost), handed over once. */
  takeErrors(): TicError[] {
    const errors = this.errors;
    this.errors = [];
    return errors;
  }

  private endGroup(): void {
    const g = this.group;
    const len = this.groupLength;
    this.groupLength = -1;
    if (this.groupOverflow) {
      return this.fail('oversize', `group longer than ${g.length} bytes`, g, 0, Math.min(len, 48));
    }
    if (len < 4) return this.fail('format', 'group too short', g, 0, len);
    const checksum = g[len - 1];
    const separator = g[len - 2];
    const groupMode: TicMode | null = separator === SP ? 'historic' : separator === HT ? 'standard' : null;
    if (groupMode === null) return this.fail('format', 'no separator before the checksum', g, 0, len);
    if (this.mode !== 'auto' && groupMode !== this.mode) {
      return this.fail('mode', `${groupMode} group while the decoder is set to ${this.mode}`, g, 0, len);
    }
    const bodyEnd = len - 2;
    let sum = 0;
    for (let i = 0; i < bodyEnd; i++) sum += g[i];
    // Standard mode includes the separator before the checksum in the sum; historic mode does not.
    if (groupMode === 'standard') sum += HT;
    const expected = (sum & 0x3f) + 0x20;
    if (expected !== checksum) {
      return this.fail('checksum', `bad checksum, expected '${String.fromCharCode(expected)}'`, g, 0, len);
    }

    const sepByte = groupMode === 'historic' ? SP : HT;
    const labelEnd = g.indexOf(sepByte);
    if (labelEnd <= 0 || labelEnd >= bodyEnd) return this.fail('format', 'no label', g, 0, len);
    const label = g.toString('latin1', 0, labelEnd);
    let dataStart = labelEnd + 1;
    let horodate: string | undefined;
    if (groupMode === 'standard') {
      const second = g.indexOf(HT, dataStart);
      if (second >= 0 && second < bodyEnd) {
        const third = g.indexOf(HT, second + 1);
        if (third >= 0 && third < bodyEnd) return this.fail('format', 'too many fields', g, 0, len);
        horodate = g.toString('latin1', dataStart, second);
        dataStart = second + 1;
      }
    }

    const spec = labelSpec(groupMode, label);
    if (spec.horodate === true && horodate === undefined) {
      return this.fail('format', `${label} needs a horodate`, g, 0, len);
    }
    let value: number | string;
    if (spec.kind === 'int') {
      value = 0;
      if (dataStart === bodyEnd) return this.fail('value', `${label} is empty`, g, 0, len);
      for (let i = dataStart; i < bodyEnd; i++) {
        const c = g[i];
        if (c < 0x30 || c > 0x39) return this.fail('value', `${label} is not a number`, g, 0, len);
        value = value * 10 + (c - 0x30);
      }
    } else {
      value = g.toString('latin1', dataStart, bodyEnd);
      if (spec.kind === 'hex' && !/^[0-9A-Fa-f]{8}$/.test(value)) {
        return this.fail('value', `${label} is not 8 hex digits`, g, 0, len);
      }
    }
    this.addGroup(groupMode, horodate === undefined ? { label, value } : { label, value, horodate }, len);
  }

  private addGroup(groupMode: TicMode, group: TicGroup, len: number): void {
    if (this.framed && !this.inFrame) {
      this.counters.partialGroups++;
      return;
    }
    // Lines without STX/ETX (a text capture, a line-splitting reader): a repeated label starts a new frame.
    if (!this.framed && this.groups.some((g) => g.label === group.label)) this.emitFrame();
    if (this.frameMode === null) this.frameMode = groupMode;
    else if (this.frameMode !== groupMode) {
      return this.fail('mode', `${groupMode} group inside a ${this.frameMode} frame`, this.group, 0, len);
    }
    if (this.groups.length >= this.maxGroupsPerFrame) {
      this.dropFrame('oversize', `frame with more than ${this.maxGroupsPerFrame} groups`);
      return;
    }
    this.counters.groups++;
    this.groups.push(group);
  }

  private emitFrame(): void {
    if (this.groups.length > 0 && this.frameMode !== null) {
      this.counters.frames++;
      this.frames.push({ mode: this.frameMode, groups: this.groups });
    }
    this.groups = [];
    this.frameMode = null;
  }

  private dropFrame(kind: TicErrorKind, message: string): void {
    const labels = this.groups.map((g) => g.label).join(' ');
    this.record(kind, `${message}; dropped ${this.groups.length} groups`, labels);
    this.groups = [];
    this.frameMode = null;
  }

  /** Groups seen before the first STX/ETX belong to a frame whose start was missed. */
  private dropPartialGroups(): void {
    this.counters.groups -= this.groups.length;
    this.counters.partialGroups += this.groups.length;
    this.groups = [];
    this.frameMode = null;
  }

  private fail(kind: TicErrorKind, message: string, bytes: Uint8Array, start: number, end: number): void {
    this.record(kind, message, printable(bytes, start, end));
  }

  private record(kind: TicErrorKind, message: string, bytes: string): void {
    this.counters[ERROR_COUNTER[kind]]++;
    this.errors.push({ kind, message: `${message}: "${bytes}"`, bytes });
  }
}

/** Bytes as text with control characters escaped (`\t`, `\x02`), for error messages. */
export function printable(bytes: Uint8Array, start = 0, end = bytes.length, max = 80): string {
  let out = '';
  for (let i = start; i < end && out.length < max; i++) {
    const b = bytes[i];
    if (b === HT) out += '\\t';
    else if (b === 0x5c) out += '\\\\';
    else if (b === 0x22) out += '\\"';
    else if (b < SP || b > 0x7e) out += `\\x${b.toString(16).padStart(2, '0')}`;
    else out += String.fromCharCode(b);
  }
  return end - start > max ? `${out}…` : out;
}
