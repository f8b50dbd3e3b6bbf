import type { InfluxDatabase } from '../influx/database';
import { escapeKey, escapeMeasurement } from '../influx/line-protocol';
import { hourlyEnergy, ROLLUP_INDEXES, type EnergyAnomalies, type RawHour } from './energy';
import {
  HOUR_MS,
  hourStart,
  parisDayStart,
  parisMonthStart,
  parisNextDay,
  parisNextMonth,
} from './paris-time';

/**
 * Rollups that outlive the raw readings: per meter, each hour's and each Paris day's and month's energy by tariff
 * period (and a water or gas counter's consumption), maximum and mean apparent power.
 *
 * The hours a stored reading falls in are marked; each pass recomputes the marked hours from the raw readings (and
 * the days and months holding them from the hours), however late the readings came: a replayed backlog lands in
 * its rollups like a live reading. Recomputing is idempotent, so recomputing more than was marked is harmless.
 * InfluxDB aggregates (last index of each hour, sums of hours into Paris days with its own tz()); this code only
 * takes the differences, where a reset or an absurd jump must not make a negative or absurd hour.
 */

export interface RollupOptions {
  /** The raw readings' measurement and retention policy ('' for the database's default). */
  readonly measurement: string;
  readonly rawRetentionPolicy: string;
  /** Where the rollups go: `<measurement>_hourly`, `_daily`, `_monthly` in this retention policy. */
  readonly retentionPolicy: string;
  /** An hour's energy above this (Wh, per index) is a swapped meter, not consumption. */
  readonly maxWhPerHour: number;
  /** Meters with marked hours at most; past it, marks of other meters are dropped and counted. */
  readonly maxMeters: number;
  /** Hours of one meter recomputed per query: a long backlog goes in such slices, oldest first. */
  readonly hoursPerQuery: number;
  /**
   * The current hour, which every live reading marks, is recomputed at most this often (past hours at the next
   * pass): InfluxDB's cost of a pass grows with the meters, not with the readings, so a pass a minute over every
   * meter's current hour would cost a fleet's InfluxDB far more than storing the readings does.
   */
  readonly currentHourEveryMs: number;
}

export const DEFAULT_ROLLUP_OPTIONS: RollupOptions = {
  measurement: 'teleinfo',
  rawRetentionPolicy: '',
  retentionPolicy: 'forever',
  maxWhPerHour: 40_000,
  maxMeters: 100_000,
  hoursPerQuery: 48,
  currentHourEveryMs: 10 * 60_000,
};

export interface RollupCounters extends EnergyAnomalies {
  /** Hour rollups written. */
  hours: number;
  /** Marks dropped: more meters waiting than maxMeters. */
  dropped: number;
  /** Passes that failed (InfluxDB unreachable or refusing): their hours stay marked. */
  failures: number;
}

/** How far back a meter's previous hour is looked for: a meter silent longer starts again from its first reading. */
const BASELINE_HOURS = 24 * 7;
/** Above this many meters in one slice, the query covers every meter (cheaper than a long list of names). */
const METERS_NAMED_AT_MOST = 100;

/** Marked hours of one meter, from..to (hour starts, inclusive). */
interface Marked {
  from: number;
  to: number;
}

export class Rollup {
  readonly counters: RollupCounters = { hours: 0, dropped: 0, failures: 0, resets: 0, implausible: 0 };
  private marked = new Map<string, Marked>();
  /** When the current hour was last recomputed. */
  private currentHourAt = -Infinity;
  private readonly options: RollupOptions;

  constructor(
    private readonly db: InfluxDatabase,
    options: Partial<RollupOptions> = {},
  ) {
    this.options = { ...DEFAULT_ROLLUP_OPTIONS, ...options };
  }

  /** Meters with past hours waiting (the current hour, recomputed every currentHourEveryMs, is not counted). */
  waiting(now = Date.now()): number {
    const current = hourStart(now);
    let n = 0;
    for (const m of this.marked.values()) if (m.from < current) n++;
    return n;
  }

  /**
   * A reading of `meter` at `time` was stored: its hour, and the next (whose energy starts from this one's last
   * index), are to be recomputed. Hours after `now`'s are not. False when dropped (too many meters waiting).
   */
  mark(meter: string, time: number, now: number): boolean {
    const current = hourStart(now);
    const from = Math.min(hourStart(time), current);
    const to = Math.min(from + HOUR_MS, current);
    const m = this.marked.get(meter);
    if (m) {
      m.from = Math.min(m.from, from);
      m.to = Math.max(m.to, to);
      return true;
    }
    if (this.marked.size >= this.options.maxMeters) {
      this.counters.dropped++;
      return false;
    }
    this.marked.set(meter, { from, to });
    return true;
  }

  /**
   * Rollups for the readings stored before there were any (a database upgraded to rollups): when the hourly
   * rollup holds nothing yet, every meter's hours are marked from its first raw reading to now. False when there
   * was nothing to do.
   */
  async backfill(now: number, signal: AbortSignal): Promise<boolean> {
    const o = this.options;
    if ((await this.db.query(`SELECT * FROM ${this.target('hourly')} LIMIT 1`, signal)).length > 0)
      return false;
    const raw = rpQualified(o.rawRetentionPolicy, o.measurement);
    let marked = false;
    // A meter's points have its apparent power, a water or gas counter's its index.
    for (const field of ['apparent_power', 'index']) {
      for (const s of await this.db.query(
        `SELECT first(${ident(field)}) FROM ${raw} GROUP BY "meter"`,
        signal,
      )) {
        const meter = s.tags?.meter;
        const first = Number(s.values[0]?.[0]);
        if (!meter || !Number.isFinite(first)) continue;
        this.remark(meter, Math.min(hourStart(first), hourStart(now)), hourStart(now));
        marked = true;
      }
    }
    return marked;
  }

  /**
   * One pass: every meter's marked hours, up to `hoursPerQuery` of them, oldest first, and the days and months
   * holding them. True when hours are still marked (a longer backlog): call again.
   */
  async pass(signal: AbortSignal, now = Date.now()): Promise<boolean> {
    const taken = this.marked;
    this.marked = new Map();
    const current = hourStart(now);
    const currentDue = now - this.currentHourAt >= this.options.currentHourEveryMs;
    // Meters with the same slice share the queries: live, that is every meter in the current hour.
    const slices = new Map<string, { from: number; to: number; meters: string[] }>();
    let backlog = false;
    for (const [meter, m] of taken) {
      if (m.from === current) {
        // Only the current hour: it waits until it is due (past hours, and a new hour, go at once).
        if (!currentDue) {
          this.marked.set(meter, m);
          continue;
        }
        this.currentHourAt = now;
      }
      const to = Math.min(m.to, m.from + (this.options.hoursPerQuery - 1) * HOUR_MS);
      const key = `${m.from}:${to}`;
      let slice = slices.get(key);
      if (!slice) slices.set(key, (slice = { from: m.from, to, meters: [] }));
      slice.meters.push(meter);
      if (to < m.to) {
        backlog = true;
        this.remark(meter, to + HOUR_MS, m.to);
      }
    }
    const ordered = [...slices.values()].sort((a, b) => a.from - b.from);
    for (let i = 0; i < ordered.length; i++) {
      const slice = ordered[i];
      try {
        await this.rollUp(slice.from, slice.to, slice.meters, signal);
      } catch (e) {
        this.counters.failures++;
        // This slice and the ones not reached stay marked for the next pass.
        for (const s of ordered.slice(i)) for (const meter of s.meters) this.remark(meter, s.from, s.to);
        throw e;
      }
    }
    return backlog;
  }

  private remark(meter: string, from: number, to: number): void {
    const m = this.marked.get(meter);
    if (m) {
      m.from = Math.min(m.from, from);
      m.to = Math.max(m.to, to);
    } else this.marked.set(meter, { from, to });
  }

  /** Hours from..to (inclusive) of `meters`, then their days and months. */
  private async rollUp(
    from: number,
    to: number,
    meters: readonly string[],
    signal: AbortSignal,
  ): Promise<void> {
    const o = this.options;
    const where = meterFilter(meters);
    const hourly = this.target('hourly');
    const starts = await this.db.query(
      `SELECT ${ROLLUP_INDEXES.map((l) => `last(${ident(`end_${l}`)}) AS ${ident(l)}`).join(', ')} ` +
        `FROM ${hourly} WHERE time >= ${from - BASELINE_HOURS * HOUR_MS}ms AND time < ${from}ms${where} ` +
        'GROUP BY "meter"',
      signal,
    );
    // One hour (the live case) needs no GROUP BY time, which costs InfluxDB about twice as much.
    const raw = await this.db.query(
      `SELECT ${ROLLUP_INDEXES.map((l) => `last(${ident(l)}) AS ${ident(`last_${l}`)}, first(${ident(l)}) AS ${ident(`first_${l}`)}`).join(', ')}, ` +
        'max("apparent_power") AS "power_max", mean("apparent_power") AS "power_mean" ' +
        `FROM ${rpQualified(o.rawRetentionPolicy, o.measurement)} ` +
        `WHERE time >= ${from}ms AND time < ${to + HOUR_MS}ms${where} ` +
        (from === to ? 'GROUP BY "meter"' : 'GROUP BY time(1h), "meter" fill(none)'),
      signal,
    );
    const startOf = new Map<string, Record<string, number>>();
    for (const s of starts) startOf.set(s.tags?.meter ?? '', rowNumbers(s.columns, s.values[0] ?? []));
    const lines: string[] = [];
    for (const s of raw) {
      const meter = s.tags?.meter;
      if (!meter) continue;
      const hours = s.values.map((row) => rawHour(s.columns, row, from === to ? from : undefined));
      for (const h of hourlyEnergy(startOf.get(meter) ?? {}, hours, o.maxWhPerHour, this.counters)) {
        const fields = [
          ...Object.entries(h.energy).map(([l, v]) => `${escapeKey(l)}=${v}`),
          ...Object.entries(h.end).map(([l, v]) => `${escapeKey(`end_${l}`)}=${v}`),
          ...(h.powerMax === null ? [] : [`power_max=${h.powerMax}`]),
          ...(h.powerMean === null ? [] : [`power_mean=${h.powerMean}`]),
        ];
        if (fields.length > 0)
          lines.push(
            `${escapeMeasurement(`${o.measurement}_hourly`)},meter=${escapeKey(meter)} ${fields.join(',')} ${h.time}`,
          );
      }
    }
    if (lines.length === 0) return;
    await this.db.write(o.retentionPolicy, lines, signal);
    this.counters.hours += lines.length;
    // Days from their hours (InfluxDB's Paris days), months from their days.
    const sums = `${[...ROLLUP_INDEXES, 'energy'].map((l) => `sum(${ident(l)}) AS ${ident(l)}`).join(', ')}, max("power_max") AS "power_max", mean("power_mean") AS "power_mean"`;
    const dayFrom = parisDayStart(from);
    const dayTo = parisNextDay(to);
    await this.db.query(
      `SELECT ${sums} INTO ${this.target('daily')} FROM ${hourly} ` +
        `WHERE time >= ${dayFrom}ms AND time < ${dayTo}ms${where} GROUP BY time(1d), "meter" tz('Europe/Paris')`,
      signal,
    );
    for (let month = parisMonthStart(from); month < dayTo; month = parisNextMonth(month)) {
      // No GROUP BY time: the point is stamped with the range's start, the month's first instant.
      await this.db.query(
        `SELECT ${sums} INTO ${this.target('monthly')} FROM ${this.target('daily')} ` +
          `WHERE time >= ${month}ms AND time < ${parisNextMonth(month)}ms${where} GROUP BY "meter"`,
        signal,
      );
    }
  }

  private target(period: 'hourly' | 'daily' | 'monthly'): string {
    return rpQualified(this.options.retentionPolicy, `${this.options.measurement}_${period}`);
  }
}

/** An InfluxQL identifier, double-quoted. */
function ident(name: string): string {
  return `"${name.replace(/\\/g, '\\\\').replace(/"/g, '\\"')}"`;
}

function rpQualified(rp: string, measurement: string): string {
  return rp ? `${ident(rp)}.${ident(measurement)}` : ident(measurement);
}

/** Only `meters`, when they are few enough to name. */
function meterFilter(meters: readonly string[]): string {
  if (meters.length > METERS_NAMED_AT_MOST) return '';
  const literal = (s: string) => `'${s.replace(/\\/g, '\\\\').replace(/'/g, "\\'")}'`;
  return ` AND (${meters.map((m) => `"meter" = ${literal(m)}`).join(' OR ')})`;
}

function rowNumbers(columns: readonly string[], row: readonly unknown[]): Record<string, number> {
  const out: Record<string, number> = {};
  columns.forEach((c, i) => {
    if (c !== 'time' && typeof row[i] === 'number' && Number.isFinite(row[i])) out[c] = row[i];
  });
  return out;
}

/** A row of the raw query: its hour is its time, or `hour` for a query of one hour. */
function rawHour(columns: readonly string[], row: readonly unknown[], hour?: number): RawHour {
  const values = rowNumbers(columns, row);
  const last: Record<string, number> = {};
  const first: Record<string, number> = {};
  for (const [c, v] of Object.entries(values)) {
    if (c.startsWith('last_')) last[c.slice(5)] = v;
    else if (c.startsWith('first_')) first[c.slice(6)] = v;
  }
  return {
    time: hour ?? Number(row[columns.indexOf('time')]),
    last,
    first,
    powerMax: values.power_max ?? null,
    powerMean: values.power_mean ?? null,
  };
}
