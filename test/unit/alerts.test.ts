import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { AlertEngine, type AlertEvent, type AlertOptions } from '../../nodes/lib/alerts';
import { decodeStge, readingFromTicFrame, TicStreamDecoder, type Reading } from '../../nodes/lib';
import { captures } from '../support/fixtures';
import { hcReading } from '../support/readings';

const T0 = Date.parse('2026-03-01T00:00:00Z');
const OPTIONS: AlertOptions = {
  highConsumption: { thresholdVA: 6000, percent: 0, clearRatio: 0.9 },
  overrun: true,
  silenceMs: 5 * 60_000,
  index: true,
  tempo: { today: false },
  ejp: true,
  raiseAfterMs: 60_000,
  clearAfterMs: 60_000,
  reminderMs: 0,
};

/** A reading of meter m at second `s` with apparent power `va` and other values. */
function at(s: number, va: number, values: Record<string, number | string> = {}, i = s): Reading {
  const r = hcReading('021861348497', T0 + s * 1000, i);
  return { ...r, apparentPower: va, values: { ...r.values, PAPP: va, ...values } };
}

function feed(engine: AlertEngine, readings: Reading[]): AlertEvent[] {
  return readings.flatMap((r) => engine.reading(r, Date.parse(r.time)));
}

const states = (events: AlertEvent[], rule?: string) =>
  events.filter((e) => !rule || e.rule === rule).map((e) => `${e.rule}:${e.state}`);

/** Every reading of a real capture. */
function captureReadings(file: string): Reading[] {
  const c = captures().find((x) => x.file === file)!;
  const decoder = new TicStreamDecoder({ mode: c.mode });
  return decoder.push(c.bytes).frames.flatMap((f, i) => {
    try {
      return [readingFromTicFrame(f, new Date(T0 + i * 2000))];
    } catch {
      return []; // a frame that names no meter (a capture starting mid-stream)
    }
  });
}

describe('alert engine: each (meter, rule) raised once and cleared once', () => {
  test('high consumption: raised after the minimum duration above the threshold, cleared below 90 % of it', () => {
    const engine = new AlertEngine(OPTIONS);
    const brief = feed(engine, [at(0, 7000), at(30, 7000), at(40, 3000)]);
    assert.deepEqual(brief, [], 'above for 40 s only: nothing');
    const events = feed(engine, [
      ...Array.from({ length: 10 }, (_, k) => at(100 + k * 10, 7000)),
      at(200, 5800), // below the threshold but above 90 %: still raised
      ...Array.from({ length: 8 }, (_, k) => at(210 + k * 10, 4000)),
    ]);
    assert.deepEqual(states(events), ['high-consumption:raised', 'high-consumption:cleared']);
    assert.equal(events[0].since, new Date(T0 + 100_000).toISOString(), 'since the power went above');
    assert.equal(events[0].time, new Date(T0 + 160_000).toISOString(), 'once it held for 60 s');
    assert.equal(events[0].threshold, 6000);
    assert.equal(events[1].time, new Date(T0 + 270_000).toISOString(), 'once it was gone for 60 s');
  });

  test('a value hovering ±1 VA around the threshold does not flap', () => {
    const engine = new AlertEngine(OPTIONS);
    const events = feed(
      engine,
      Array.from({ length: 200 }, (_, k) => at(k * 10, 6000 + (k % 2 === 0 ? 1 : -1))),
    );
    assert.ok(states(events).length <= 1, states(events).join(' '));
    const held = new AlertEngine(OPTIONS);
    const above = feed(
      held,
      Array.from({ length: 10 }, (_, k) => at(k * 10, 6500)),
    );
    const hovering = feed(
      held,
      Array.from({ length: 200 }, (_, k) => at(100 + k * 10, 6000 + (k % 2 === 0 ? 1 : -1))),
    );
    assert.deepEqual(states(above), ['high-consumption:raised']);
    assert.deepEqual(hovering, [], 'raised, it stays raised while the power hovers above 90 %');
  });

  test('a share of the subscribed power: ISOUSC × 200 VA', () => {
    const engine = new AlertEngine({
      ...OPTIONS,
      highConsumption: { thresholdVA: 0, percent: 80, clearRatio: 0.9 },
    });
    // ISOUSC 45 A: 9000 VA subscribed, 7200 VA at 80 %.
    const events = feed(
      engine,
      Array.from({ length: 8 }, (_, k) => at(k * 10, 7300)),
    );
    assert.equal(events[0]?.threshold, 7200);
  });

  test('overrun: ADPS in a real capture raises at once; frames without it clear only after the delay', () => {
    const engine = new AlertEngine(OPTIONS);
    const readings = captureReadings('unresolved_arduino_comment_historic_hc_adps.txt');
    assert.ok(
      readings.some((r) => r.values.ADPS !== undefined),
      'the capture has ADPS',
    );
    const events = feed(engine, readings);
    assert.equal(states(events, 'overrun').filter((s) => s.endsWith('raised')).length, 1);
    assert.equal(events.find((e) => e.rule === 'overrun')!.kind, 'ADPS');
    const tri = feed(
      new AlertEngine(OPTIONS),
      captureReadings('unresolved_go_testcases_historic_tri_hc_adir.bin'),
    );
    assert.match(tri.find((e) => e.rule === 'overrun')?.kind ?? '', /^ADIR[123]$/, 'three-phase ADIRn');
  });

  test('overrun in standard mode: STGE bit 7, or the cut-off device open', () => {
    const engine = new AlertEngine(OPTIONS);
    const base = captureReadings('openhab_linky-tic-mode-standard-single-phase-prod.txt')[0];
    const withStge = (raw: string, s: number) => ({
      ...base,
      time: new Date(T0 + s * 1000).toISOString(),
      status: decodeStge(raw)!,
    });
    const events = feed(engine, [
      withStge('002A0381', 0),
      withStge('002A0301', 10),
      withStge('002A0301', 80),
    ]);
    assert.deepEqual(states(events), ['overrun:raised', 'overrun:cleared']);
    assert.equal(events[0].kind, 'STGE');
    const cut = feed(new AlertEngine(OPTIONS), [withStge('002A0303', 0)]);
    assert.equal(cut[0]?.value, 'open-overload');
  });

  test('silence: raised by the clock with no input at all, cleared by the next reading; Pi offline; box unreachable', () => {
    const engine = new AlertEngine(OPTIONS);
    engine.reading(at(0, 1000), T0);
    assert.deepEqual(engine.tick(T0 + 4 * 60_000), []);
    const silent = engine.tick(T0 + 5 * 60_000);
    assert.deepEqual(states(silent), ['silence:raised']);
    assert.deepEqual(engine.tick(T0 + 10 * 60_000), [], 'raised once');
    assert.deepEqual(states(engine.reading(at(700, 1000), T0 + 700_000)), ['silence:cleared']);
    assert.deepEqual(states(engine.piStatus('pi-1', false, T0)), ['silence:raised']);
    assert.deepEqual(engine.piStatus('pi-1', false, T0 + 1), [], 'a retained offline again: nothing new');
    const box = engine.boxEvent('ecodevices', true, T0, new Date(T0 - 30_000).toISOString());
    assert.equal(box[0].kind, 'unreachable');
    assert.equal(engine.activeCount, 2, 'the Pi and the box');
    assert.deepEqual(states(engine.piStatus('pi-1', true, T0 + 2)), ['silence:cleared']);
    assert.deepEqual(states(engine.boxEvent('ecodevices', false, T0 + 5)), ['silence:cleared']);
    assert.equal(engine.activeCount, 0);
  });

  test('index: backwards, or faster than the subscribed power allows, is reported; the next good one clears it', () => {
    const engine = new AlertEngine(OPTIONS);
    const hc = (s: number, hchc: number) => at(s, 1000, { HCHC: hchc }, 0);
    const r = (s: number, hchc: number) => ({
      ...hc(s, hchc),
      energyIndexes: { HCHC: hchc, HCHP: 20_000_000 },
    });
    const events = feed(engine, [
      r(0, 1_000_000),
      r(10, 1_000_010),
      r(20, 999_000),
      r(30, 999_010),
      r(40, 5_000_000),
    ]);
    assert.deepEqual(states(events), ['index:raised', 'index:cleared', 'index:raised']);
    assert.equal(events[0].kind, 'backwards:HCHC');
    assert.equal(events[0].value, 999_000);
    assert.equal(events[2].kind, 'too-fast:HCHC');
  });

  test('tempo: DEMAIN ROUG in a real capture, STGE bits 26-27 in standard mode; ---- is not a colour', () => {
    const readings = captureReadings('pyteleinfo_captured_frames.bin');
    assert.ok(readings.every((r) => r.values.DEMAIN === 'ROUG'));
    const engine = new AlertEngine(OPTIONS);
    const events = feed(engine, readings);
    assert.deepEqual(states(events, 'tempo'), ['tempo:raised']);
    assert.equal(events.find((e) => e.rule === 'tempo')!.kind, 'tomorrow');
    const last = readings[readings.length - 1];
    const dashes = (s: number) => ({
      ...last,
      time: new Date(Date.parse(last.time) + s * 1000).toISOString(),
      values: { ...last.values, DEMAIN: '----' },
    });
    assert.deepEqual(states(feed(engine, [dashes(10), dashes(100)]), 'tempo'), ['tempo:cleared']);
    const base = captureReadings('openhab_linky-tic-mode-standard-three-phase-prod.txt')[0];
    const red = {
      ...base,
      status: decodeStge(
        (0x0c000000 | parseInt('013A0501', 16)).toString(16).toUpperCase().padStart(8, '0'),
      )!,
    };
    assert.deepEqual(states(new AlertEngine(OPTIONS).reading(red, T0)), ['tempo:raised']);
  });

  test('ejp: a PEJP notice, then the peak (PTEC PM..)', () => {
    const engine = new AlertEngine(OPTIONS);
    const events = feed(engine, [
      at(0, 1000, { PEJP: 30 }),
      { ...at(1800, 1000), tariffPeriod: 'PM' },
      ...[1900, 2000].map((s) => ({ ...at(s, 1000), tariffPeriod: 'HN' })),
    ]);
    assert.deepEqual(states(events), ['ejp:raised', 'ejp:cleared']);
    assert.equal(events[0].kind, 'notice');
  });

  test('a mobile peak: announced by its start (DPM1) in standard mode, then STGE bits 30-31 while it lasts', () => {
    const engine = new AlertEngine(OPTIONS);
    const base = captureReadings('openhab_linky-tic-mode-standard-single-phase-prod.txt')[0];
    const at2 = (s: number, extra: Partial<Reading>) => ({
      ...base,
      time: new Date(T0 + s * 1000).toISOString(),
      ...extra,
    });
    const events = feed(engine, [
      at2(0, { horodates: { DPM1: '2026-03-02T06:00:00.000Z' } }),
      at2(10, { status: decodeStge('402A0301')! }),
      at2(20, { status: decodeStge('002A0301')! }),
      at2(90, { status: decodeStge('002A0301')! }),
    ]);
    assert.deepEqual(states(events), ['ejp:raised', 'ejp:cleared']);
    assert.equal(events[0].value, '2026-03-02T06:00:00.000Z');
  });

  test('reminders while raised, at their interval; the state survives a snapshot and a restore', () => {
    const engine = new AlertEngine({ ...OPTIONS, reminderMs: 10 * 60_000 });
    engine.piStatus('pi-1', false, T0);
    assert.deepEqual(engine.tick(T0 + 9 * 60_000), []);
    assert.deepEqual(states(engine.tick(T0 + 10 * 60_000)), ['silence:reminder']);
    assert.deepEqual(engine.tick(T0 + 15 * 60_000), []);
    const restored = new AlertEngine({ ...OPTIONS, reminderMs: 10 * 60_000 });
    restored.restore(JSON.parse(JSON.stringify(engine.snapshot())) as ReturnType<AlertEngine['snapshot']>);
    assert.deepEqual(
      restored.piStatus('pi-1', false, T0 + 16 * 60_000),
      [],
      'still raised: not raised again',
    );
    assert.deepEqual(states(restored.tick(T0 + 20 * 60_000)), ['silence:reminder']);
    assert.deepEqual(restored.active, [{ meter: 'pi-1', rule: 'silence' }]);
    assert.equal(restored.activeCount, 1);
  });
});
