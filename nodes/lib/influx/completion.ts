import type { Waiter } from '../spool';

/**
 * Which messages are complete. Lines leave the spool in the order they entered it (written, rejected or dropped
 * from the oldest end), so a message is complete once as many lines have left as had entered up to its last one.
 * Beyond `maxTracked` messages waiting, `expect` declines and the caller completes them once spooled instead: the
 * count of waiting callbacks is bounded.
 */
export class CompletionLedger {
  private readonly tracked: { end: number; done: Waiter }[] = [];
  private accepted: number;
  private consumed = 0;

  constructor(
    /** Lines already in the spool (from a previous run): nobody waits for them. */
    recovered: number,
    private readonly maxTracked = 10_000,
  ) {
    this.accepted = recovered;
  }

  /** `count` lines entered; `done` waits for all of them to leave. False: not tracked, complete it yourself. */
  expect(count: number, done?: Waiter): boolean {
    this.accepted += count;
    if (!done) return true;
    if (this.tracked.length >= this.maxTracked) return false;
    this.tracked.push({ end: this.accepted, done });
    return true;
  }

  /** The last `count` lines never reached the spool: their messages get `error`. */
  refused(count: number, error: Error): void {
    this.accepted -= count;
    while (this.tracked.length > 0 && this.tracked[this.tracked.length - 1].end > this.accepted)
      this.tracked.pop()!.done(error);
  }

  /**
   * `count` lines left the spool. A message completes with `error` if one of its lines is at an index of `failed`
   * (0-based within these lines, ascending), or if `failed` is omitted and `error` given.
   */
  released(count: number, error?: Error, failed?: readonly number[]): void {
    const first = this.consumed;
    this.consumed += count;
    let f = 0;
    let start = first;
    while (this.tracked.length > 0 && this.tracked[0].end <= this.consumed) {
      const { end, done } = this.tracked.shift()!;
      let mine = failed === undefined;
      if (failed) {
        while (f < failed.length && first + failed[f] < start) f++;
        mine = f < failed.length && first + failed[f] < end;
      }
      done(mine ? error : undefined);
      start = end;
    }
  }

  /** Everything still waiting completes now (at close: the spool keeps their lines for the next start). */
  completeAll(): void {
    for (const t of this.tracked.splice(0)) t.done();
  }
}
