import type { Reading } from './reading';

/**
 * Which readings to pass on, per meter: every one, only those whose values changed, at most one per
 * interval, or changes plus a heartbeat so that a steady meter is still heard from every N seconds.
 * Times are the readings' own, so a replay decides the same way.
 */

export type EmitPolicy = 'all' | 'change' | 'interval' | 'heartbeat';

/** Meters remembered; the least recently emitted is forgotten past this. */
const MAX_METERS = 10_000;

export class EmissionFilter {
  private readonly lastEmitted = new Map<string, Reading>();

  constructor(
    private readonly policy: EmitPolicy,
    /** `interval` and `heartbeat`: seconds. */
    private readonly intervalSeconds: number,
  ) {}

  admit(reading: Reading): boolean {
    if (this.policy === 'all') return true;
    const previous = this.lastEmitted.get(reading.meter);
    const elapsed = () =>
      Date.parse(reading.time) - Date.parse(previous!.time) >= this.intervalSeconds * 1000;
    const due =
      previous === undefined ||
      (this.policy === 'interval'
        ? elapsed()
        : !sameValues(previous.values, reading.values) || (this.policy === 'heartbeat' && elapsed()));
    if (due) {
      this.lastEmitted.delete(reading.meter);
      if (this.lastEmitted.size >= MAX_METERS)
        this.lastEmitted.delete(this.lastEmitted.keys().next().value as string);
      this.lastEmitted.set(reading.meter, reading);
    }
    return due;
  }
}

function sameValues(a: Record<string, number | string>, b: Record<string, number | string>): boolean {
  const keys = Object.keys(a);
  if (keys.length !== Object.keys(b).length) return false;
  return keys.every((k) => a[k] === b[k]);
}
