/**
 * Who owns the lines of a server's spool (the Pi that sent them), in spool order, so that one Pi cannot take the
 * others' room while InfluxDB is away: once the spool is half full, a Pi that holds more than its share (the
 * capacity divided among the Pis holding lines) has its new lines refused, instead of the oldest lines of every Pi
 * being dropped for them. Lines of no known owner (left by a previous run, or from a flow without teleinfo-admit)
 * are not limited.
 */
export class SpoolShares {
  /** Runs of consecutive lines of one owner, oldest first from `head`. */
  private runs: { owner: string; lines: number; bytes: number }[] = [];
  private head = 0;
  private readonly held = new Map<string, number>();

  constructor(
    private readonly capacity: number,
    spooledLines = 0,
    spooledBytes = 0,
  ) {
    if (spooledLines > 0) this.runs.push({ owner: '', lines: spooledLines, bytes: spooledBytes });
  }

  /** Bytes the spool holds for an owner. */
  bytesOf(owner: string): number {
    return this.held.get(owner) ?? 0;
  }

  /** Whether `bytes` more of `owner` fit its share, the spool holding `spooledBytes` in all. */
  admits(owner: string, bytes: number, spooledBytes: number): boolean {
    if (owner === '' || spooledBytes + bytes < this.capacity / 2) return true;
    const holding = this.held.size + (this.held.has(owner) ? 0 : 1);
    return this.bytesOf(owner) + bytes <= this.capacity / holding;
  }

  /** Lines appended to the spool, at its tail. */
  added(owner: string, lines: number, bytes: number): void {
    const last = this.runs.at(-1);
    if (last && this.runs.length > this.head && last.owner === owner) {
      last.lines += lines;
      last.bytes += bytes;
    } else this.runs.push({ owner, lines, bytes });
    if (owner !== '') this.held.set(owner, this.bytesOf(owner) + bytes);
  }

  /** The last `lines` appended never reached the spool (the disk refused them). */
  withdrawn(lines: number): void {
    while (lines > 0 && this.runs.length > this.head) {
      const last = this.runs.at(-1)!;
      const n = Math.min(lines, last.lines);
      this.take(last, n);
      if (last.lines === 0) this.runs.pop();
      lines -= n;
    }
  }

  /** The oldest `lines` left the spool (written, refused or dropped). */
  removed(lines: number): void {
    while (lines > 0 && this.head < this.runs.length) {
      const first = this.runs[this.head];
      const n = Math.min(lines, first.lines);
      this.take(first, n);
      if (first.lines === 0) this.head++;
      lines -= n;
    }
    if (this.head > 1024 && this.head * 2 > this.runs.length) {
      this.runs = this.runs.slice(this.head);
      this.head = 0;
    }
  }

  private take(run: { owner: string; lines: number; bytes: number }, lines: number): void {
    const bytes = run.lines === lines ? run.bytes : Math.round((run.bytes * lines) / run.lines);
    run.lines -= lines;
    run.bytes -= bytes;
    if (run.owner === '') return;
    const left = this.bytesOf(run.owner) - bytes;
    if (left > 0) this.held.set(run.owner, left);
    else this.held.delete(run.owner);
  }
}
