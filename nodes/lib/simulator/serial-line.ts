import { execFile, spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import { hash01 } from './meter';

/**
 * A meter's TIC serial line, simulated on a pseudo-terminal pair made by socat: the simulator writes the meter's
 * frames into one end at the line's pace (baud / 10 bytes per second: 7 data bits, parity, start and stop), and a
 * serial reader (Node-RED's serial in) opens the other end like a USB TIC adapter.
 *
 * A pseudo-terminal carries bytes whatever its baud, so the line does what a UART would: while the reader's port
 * is set to another baud (read with `stty` on the reader's end), it delivers garbage instead of the frames.
 * Unplugging kills socat, so the reader's device disappears; plugging back makes it again at the same path.
 */
export interface SerialLineOptions {
  /** Where the reader opens the line (a symbolic link to the pseudo-terminal). */
  readonly path: string;
  /** The baud the meter sends at. */
  readonly baud: number;
  /** The next frame to send, as bytes. */
  frame(): Buffer;
  /** Line silence between frames (a meter leaves 16.7 to 33.4 ms). */
  readonly gapMs?: number;
  readonly seed?: number;
}

export interface SerialLineStats {
  frames: number;
  bytes: number;
  /** Bytes delivered as garbage because the reader's baud was not the line's. */
  garbled: number;
  /** Bytes sent while nothing could take them (unplugged, or the reader's buffer full). */
  lost: number;
  noise: number;
}

const TICK_MS = 20;

export class SerialLine {
  readonly stats: SerialLineStats = { frames: 0, bytes: 0, garbled: 0, lost: 0, noise: 0 };
  /** The baud the meter sends at; change it to play Enedis switching the meter's mode. */
  baud: number;
  private socat: ChildProcess | null = null;
  private fd: number | null = null;
  private pending: Buffer = Buffer.alloc(0);
  private silenceUntil = 0;
  private credit = 0;
  private last = Date.now();
  private readerBaud: number | null = null;
  private ticker: NodeJS.Timeout | null = null;
  private poller: NodeJS.Timeout | null = null;
  private polling = false;
  private garbleCount = 0;

  private constructor(private readonly options: SerialLineOptions) {
    this.baud = options.baud;
  }

  get meterEnd(): string {
    return `${this.options.path}.meter`;
  }

  /** Make the line (needs socat on PATH) and start sending. */
  static async open(options: SerialLineOptions): Promise<SerialLine> {
    const line = new SerialLine(options);
    await line.plug();
    line.ticker = setInterval(() => line.tick(), TICK_MS);
    line.poller = setInterval(() => line.pollReader(), 50);
    return line;
  }

  /** The reader's device appears (again). */
  async plug(): Promise<void> {
    if (this.socat) return;
    for (const p of [this.options.path, this.meterEnd]) fs.rmSync(p, { force: true });
    const socat = spawn(
      'socat',
      ['-d', '-d', `PTY,raw,echo=0,link=${this.meterEnd}`, `PTY,raw,echo=0,link=${this.options.path}`],
      { stdio: ['ignore', 'ignore', 'pipe'] },
    );
    this.socat = socat;
    await new Promise<void>((resolve, reject) => {
      let log = '';
      socat.once('error', reject);
      socat.once('exit', (code) => reject(new Error(`socat exited (${code}): ${log}`)));
      socat.stderr.on('data', (d: Buffer) => {
        log += d.toString();
        if (log.includes('starting data transfer loop')) resolve();
      });
    });
    socat.removeAllListeners('exit');
    socat.stderr.resume();
    // Non-blocking: a line never waits for its reader; bytes nobody takes are lost, as on a real wire.
    this.fd = fs.openSync(
      this.meterEnd,
      fs.constants.O_WRONLY | fs.constants.O_NOCTTY | fs.constants.O_NONBLOCK,
    );
  }

  /** The adapter is pulled out: the reader's device disappears. The meter keeps sending into nothing. */
  async unplug(): Promise<void> {
    const socat = this.socat;
    if (!socat) return;
    this.socat = null;
    if (this.fd !== null) fs.closeSync(this.fd);
    this.fd = null;
    this.readerBaud = null;
    await new Promise<void>((resolve) => {
      socat.once('exit', () => resolve());
      socat.kill('SIGTERM');
    });
    for (const p of [this.options.path, this.meterEnd]) fs.rmSync(p, { force: true });
  }

  /** Bytes on the line between frames (interference): the reader must skip them. */
  noise(bytes: Buffer): void {
    this.stats.noise += bytes.length;
    this.pending = Buffer.concat([this.pending, bytes]);
  }

  async close(): Promise<void> {
    if (this.ticker) clearInterval(this.ticker);
    if (this.poller) clearInterval(this.poller);
    await this.unplug();
  }

  private tick(): void {
    const now = Date.now();
    this.credit = Math.min(this.credit + ((now - this.last) / 1000) * (this.baud / 10), this.baud / 10);
    this.last = now;
    while (this.credit >= 1) {
      if (this.pending.length === 0) {
        if (now < this.silenceUntil) return;
        this.pending = this.options.frame();
        this.stats.frames++;
        this.silenceUntil = Infinity;
      }
      const n = Math.min(Math.floor(this.credit), this.pending.length);
      this.send(this.pending.subarray(0, n));
      this.pending = this.pending.subarray(n);
      this.credit -= n;
      if (this.pending.length === 0) this.silenceUntil = now + (this.options.gapMs ?? 30);
    }
  }

  private send(bytes: Buffer): void {
    this.stats.bytes += bytes.length;
    if (this.fd === null) {
      this.stats.lost += bytes.length;
      return;
    }
    const out = this.readerBaud === null || this.readerBaud === this.baud ? bytes : this.garble(bytes);
    try {
      fs.writeSync(this.fd, out);
    } catch {
      this.stats.lost += bytes.length;
    }
  }

  /**
   * What a UART at the wrong baud makes of the bytes: read faster than sent, each character spans several
   * receive slots and comes out as runs of 0x00/0xFx-like bytes; read slower, about one byte in eight survives,
   * as noise. Either way no group passes its checksum, which is all a reader can tell.
   */
  private garble(bytes: Buffer): Buffer {
    const seed = this.options.seed ?? 1;
    const out: number[] = [];
    for (const b of bytes) {
      const i = this.garbleCount++;
      if (this.readerBaud! > this.baud) {
        out.push([0x00, 0x80, 0xf8, 0xe0, 0xfe, 0xc0][Math.floor(hash01(seed, 41, i, b) * 6)]);
        if (hash01(seed, 43, i) < 0.5) out.push(0x00);
      } else if (i % 8 === 0) out.push(Math.floor(hash01(seed, 47, i, b) * 256));
    }
    this.stats.garbled += bytes.length;
    return Buffer.from(out);
  }

  /** The reader's baud, as its port is set (stty reads the settings of the pseudo-terminal it opened). */
  private pollReader(): void {
    if (this.polling || !this.socat) return;
    this.polling = true;
    execFile('stty', ['-F', this.options.path, 'speed'], (err, stdout) => {
      this.polling = false;
      if (!err && this.socat) this.readerBaud = Number(stdout.trim()) || null;
    });
  }
}
