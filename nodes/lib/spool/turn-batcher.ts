/**
 * What arrives in one event-loop turn, handed over in one piece at its end. Node-RED delivers each message in its
 * own callback of the same turn, so one spool write per turn instead of one per message is what makes one message
 * per reading affordable.
 */
export type Waiter = (err?: Error) => void;

export class TurnBatcher {
  private records: string[] = [];
  private waiters: Waiter[] = [];
  private timer: NodeJS.Immediate | null = null;

  constructor(private readonly flush: (records: string[], waiters: Waiter[]) => void) {}

  /** Records not handed over yet. */
  get pending(): number {
    return this.records.length;
  }

  add(records: readonly string[], waiter?: Waiter): void {
    for (const record of records) this.records.push(record);
    if (waiter) this.waiters.push(waiter);
    this.timer ??= setImmediate(() => this.flushNow());
  }

  /** Hand over now what this turn gathered (before a close, a flush or a replay that must see it). */
  flushNow(): void {
    if (this.timer) clearImmediate(this.timer);
    this.timer = null;
    if (this.records.length === 0 && this.waiters.length === 0) return;
    const records = this.records;
    const waiters = this.waiters;
    this.records = [];
    this.waiters = [];
    this.flush(records, waiters);
  }
}
