import fs from 'node:fs';
import type { WriteResult } from './transport';

/**
 * Where lines InfluxDB refused go, one JSON record per refusal with the server's message, so a person can fix and
 * replay them. Bounded: past `maxBytes` lines are only counted. Never throws: a disk that refuses the file is
 * said in the outcome.
 */
export class DeadLetterFile {
  private size: number;
  readonly counters = { lines: 0, overflow: 0, errors: 0 };

  constructor(
    readonly file: string,
    private readonly maxBytes = 50 * 1024 * 1024,
  ) {
    try {
      this.size = fs.statSync(file).size;
    } catch {
      this.size = 0;
    }
  }

  write(result: WriteResult, lines: readonly string[]): 'written' | 'full' | Error {
    this.counters.lines += lines.length;
    const record = Buffer.from(
      JSON.stringify({
        time: new Date().toISOString(),
        status: result.status,
        error: result.message,
        lines,
      }) + '\n',
    );
    if (this.size + record.length > this.maxBytes) {
      this.counters.overflow += lines.length;
      return 'full';
    }
    try {
      fs.appendFileSync(this.file, record);
    } catch (e) {
      this.counters.errors++;
      this.counters.overflow += lines.length;
      return e as Error;
    }
    this.size += record.length;
    return 'written';
  }
}
