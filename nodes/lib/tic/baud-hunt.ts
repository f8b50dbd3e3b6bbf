import type { TicMode } from './labels';

/**
 * Which baud a TIC serial line runs at. A meter sends 7E1 at 1200 Bd in historic mode and 9600 Bd in standard mode
 * (Enedis-NOI-CPT_54E Table 3, §5.3.5), and Enedis may switch a Linky from one to the other remotely. Read at the wrong baud,
 * a UART still delivers bytes, but no group passes its checksum: that is how `auto` tells the right baud.
 */
export type TicBaud = 1200 | 9600;

export const BAUD_OF_MODE: Record<TicMode, TicBaud> = { historic: 1200, standard: 9600 };

/** A `serial control` message payload (node-red-node-serialport) that reopens the port for a TIC line. */
export interface SerialSettings {
  readonly serialbaud: TicBaud;
  readonly databits: 7;
  readonly parity: 'even';
  readonly stopbits: 1;
}

export function serialSettings(baud: TicBaud): SerialSettings {
  return { serialbaud: baud, databits: 7, parity: 'even', stopbits: 1 };
}

export interface BaudHuntOptions {
  /** Without a valid group for this long while bytes arrive, `auto` tries the other baud. */
  readonly windowMs?: number;
  /** ...and at least this many bytes: a silent line (meter off, adapter unplugged) is no reason to switch. */
  readonly minBytes?: number;
}

export class BaudHunt {
  baud: TicBaud;
  /** A valid group was read at the current baud (and none has been missing for a window since). */
  locked = false;
  switches = 0;
  /** Milliseconds from the start (or the last reopen) to the first valid group, once found. */
  detectedAfterMs: number | null = null;
  private readonly windowMs: number;
  private readonly minBytes: number;
  private since: number;
  private startedAt: number;
  private bytes = 0;

  constructor(
    readonly mode: TicMode | 'auto',
    now: number,
    options: BaudHuntOptions = {},
  ) {
    this.baud = mode === 'auto' ? 1200 : BAUD_OF_MODE[mode];
    this.windowMs = options.windowMs ?? 5000;
    this.minBytes = options.minBytes ?? 64;
    this.since = now;
    this.startedAt = now;
  }

  /** Bytes read and valid groups among them; returns the baud to reopen the port at, or null to stay. */
  observe(bytes: number, validGroups: number, now: number): TicBaud | null {
    if (validGroups > 0) {
      if (!this.locked) this.detectedAfterMs = now - this.startedAt;
      this.locked = true;
      this.since = now;
      this.bytes = 0;
      return null;
    }
    this.bytes += bytes;
    if (this.mode !== 'auto' || this.bytes < this.minBytes || now - this.since < this.windowMs) return null;
    this.baud = this.baud === 1200 ? 9600 : 1200;
    this.locked = false;
    this.switches++;
    this.since = now;
    this.bytes = 0;
    return this.baud;
  }

  /** The port was reopened (plugged back): give the line a full window again before judging it. */
  reopened(now: number): void {
    this.since = now;
    this.bytes = 0;
    if (!this.locked) this.startedAt = now;
  }
}
