import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { hourlyEnergy, type RawHour } from '../../nodes/lib/rollup/energy';
import {
  parisDayStart,
  parisMonthStart,
  parisNextDay,
  parisNextMonth,
} from '../../nodes/lib/rollup/paris-time';
import type { InfluxDatabase } from '../../nodes/lib/influx/database';
import { Rollup } from '../../nodes/lib/rollup/rollup';

const H = 3_600_000;
const hour = (time: number, last: Record<string, number>, first = last): RawHour => ({
  time,
  last,
  first,
  powerMax: null,
  powerMean: null,
});

describe('Paris calendar', () => {
  test('days of 23, 24 and 25 hours, months from their first midnight', () => {
    const spring = Date.parse('2026-03-29T12:00:00Z');
    const autumn = Date.parse('2026-10-25T12:00:00Z');
    const plain = Date.parse('2026-06-15T12:00:00Z');
    assert.equal(parisDayStart(spring), Date.parse('2026-03-28T23:00:00Z'));
    assert.equal((parisNextDay(spring) - parisDayStart(spring)) / H, 23);
    assert.equal((parisNextDay(autumn) - parisDayStart(autumn)) / H, 25);
    assert.equal((parisNextDay(plain) - parisDayStart(plain)) / H, 24);
    assert.equal(parisDayStart(plain), Date.parse('2026-06-14T22:00:00Z'));
    assert.equal(parisMonthStart(plain), Date.parse('2026-05-31T22:00:00Z'));
    assert.equal(parisNextMonth(Date.parse('2026-12-31T22:30:00Z')), Date.parse('2026-12-31T23:00:00Z'));
    assert.equal(parisNextMonth(Date.parse('2027-01-15T12:00:00Z')), Date.parse('2027-01-31T23:00:00Z'));
    assert.equal(parisMonthStart(Date.parse('2026-12-31T23:30:00Z')), Date.parse('2026-12-31T23:00:00Z'));
  });
});

describe('hourly energy', () => {
  test('from the previous hour, or from the first reading; a reset and a jump count nothing and are counted', () => {
    const anomalies = { resets: 0, implausible: 0 };
    const hours = hourlyEnergy(
      { HCHC: 1000 },
      [
        hour(0, { HCHC: 1500, HCHP: 200 }, { HCHC: 1100, HCHP: 100 }),
        // A new meter from this hour's first reading: what it counted since.
        hour(H, { HCHC: 300, HCHP: 250 }, { HCHC: 100, HCHP: 210 }),
        // Swapped mid-hour: nothing.
        hour(2 * H, { HCHC: 50, HCHP: 300 }, { HCHC: 310, HCHP: 260 }),
        // An absurd jump: nothing.
        hour(3 * H, { HCHC: 10_000_050, HCHP: 400 }),
        hour(4 * H, { HCHC: 10_000_150, HCHP: 400 }),
      ],
      40_000,
      anomalies,
    );
    assert.deepEqual(
      hours.map((h) => h.energy),
      [
        { HCHC: 500, HCHP: 100, energy: 600 },
        { HCHC: 200, HCHP: 50, energy: 250 },
        { HCHC: 0, HCHP: 50, energy: 50 },
        { HCHC: 0, HCHP: 100, energy: 100 },
        { HCHC: 100, HCHP: 0, energy: 100 },
      ],
    );
    assert.deepEqual(anomalies, { resets: 2, implausible: 1 });
    assert.deepEqual(hours[4].end, { HCHC: 10_000_150, HCHP: 400 });
  });

  test("a counter's index (water, gas) is not held to a meter's Wh per hour, and has no `energy`", () => {
    const anomalies = { resets: 0, implausible: 0 };
    const [h] = hourlyEnergy({ index: 10 }, [hour(0, { index: 90_010 })], 40_000, anomalies);
    assert.deepEqual(h.energy, { index: 90_000 });
  });
});

describe('marked hours (a database standing in for InfluxDB)', () => {
  const silent: InfluxDatabase = {
    query: () => Promise.resolve([]),
    write: () => Promise.resolve(),
  };

  test('bounded: past the meters it may wait for, marks are dropped and counted', () => {
    const r = new Rollup(silent, { maxMeters: 2 });
    const now = Date.now();
    assert.equal(r.mark('a', now, now), true);
    assert.equal(r.mark('b', now, now), true);
    assert.equal(r.mark('a', now - 5 * H, now), true, 'a meter already waiting widens its hours');
    assert.equal(r.mark('c', now, now), false);
    assert.equal(r.counters.dropped, 1);
  });

  test('a failing database keeps the hours marked for the next pass', async () => {
    const failing: InfluxDatabase = { ...silent, query: () => Promise.reject(new Error('HTTP 503')) };
    const r = new Rollup(failing);
    const now = Date.now();
    r.mark('a', now - 3 * H, now);
    await assert.rejects(r.pass(AbortSignal.timeout(1000)), /503/);
    assert.equal(r.waiting(now), 1);
    assert.equal(r.counters.failures, 1);
  });

  test('the current hour is recomputed at most every currentHourEveryMs; a past hour at the next pass, the hour before once the next began', async () => {
    const raw: { from: number; byTime: boolean }[] = [];
    const db: InfluxDatabase = {
      query: (q) => {
        const m = /FROM "teleinfo" WHERE time >= (\d+)ms/.exec(q);
        if (m) raw.push({ from: Number(m[1]), byTime: q.includes('GROUP BY time(1h)') });
        return Promise.resolve([]);
      },
      write: () => Promise.resolve(),
    };
    const r = new Rollup(db, { currentHourEveryMs: 600_000 });
    const signal = AbortSignal.timeout(1000);
    const h0 = Date.parse('2026-12-07T10:00:00Z');
    const at = (ms: number) => h0 + ms;
    r.mark('a', at(60_000), at(60_000));
    await r.pass(signal, at(120_000));
    assert.deepEqual(raw, [{ from: h0, byTime: false }], 'the first pass: one hour, no GROUP BY time');
    r.mark('a', at(180_000), at(180_000));
    await r.pass(signal, at(240_000));
    assert.equal(raw.length, 1, 'three minutes later: not again');
    assert.equal(r.waiting(at(240_000)), 0, 'the current hour is no backlog');
    assert.equal(r.waiting(at(H)), 1, 'once the next hour began, it is');
    r.mark('b', at(-2 * H + 5), at(250_000));
    await r.pass(signal, at(300_000));
    assert.deepEqual(
      raw[1],
      { from: h0 - 2 * H, byTime: true },
      "a late reading's hour and the next, at once",
    );
    assert.equal(raw.length, 2);
    await r.pass(signal, at(720_000));
    assert.deepEqual(raw[2], { from: h0, byTime: false }, 'ten minutes after it was: the current hour again');
    r.mark('a', at(H - 1000), at(H - 1000));
    await r.pass(signal, at(H + 30_000));
    assert.deepEqual(raw[3], { from: h0, byTime: false }, 'the next hour began: the last one, at once');
    assert.equal(raw.length, 4);
  });

  test('a long backlog goes in slices, oldest first', async () => {
    const ranges: string[] = [];
    const db: InfluxDatabase = {
      query: (q) => {
        const m = /FROM "teleinfo" WHERE time >= (\d+)ms AND time < (\d+)ms/.exec(q);
        if (m) ranges.push(`${(Number(m[2]) - Number(m[1])) / H}h`);
        return Promise.resolve([]);
      },
      write: () => Promise.resolve(),
    };
    const r = new Rollup(db, { hoursPerQuery: 48 });
    const now = Date.now();
    for (let h = 100; h >= 0; h--) r.mark('a', now - h * H, now);
    const passes = [];
    for (let i = 0; i < 3; i++) passes.push(await r.pass(AbortSignal.timeout(1000)));
    assert.deepEqual(passes, [true, true, false]);
    assert.deepEqual(ranges, ['48h', '48h', '5h']);
  });
});
