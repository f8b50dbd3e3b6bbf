import assert from 'node:assert/strict';
import { test } from 'node:test';
import { renderTopic, TeleinfoParser, type ParserOptions, type Reading } from '../../nodes/lib';
import { fixture } from '../support/fixtures';

const options = (o: Partial<ParserOptions> = {}): ParserOptions => ({
  mode: 'auto',
  emit: 'all',
  intervalSeconds: 0,
  labels: [],
  device: 'box',
  ...o,
});

const reading = (meter: string, time: string, papp: number): Reading => ({
  meter,
  source: 'tic-historic',
  time,
  tariffOption: 'BASE',
  tariffPeriod: 'TH',
  apparentPower: papp,
  energyTotal: 1,
  energyIndexes: { BASE: 1 },
  currents: [1],
  phases: 1,
  overrun: false,
  values: { ADCO: meter, PAPP: papp },
});

test('at most one reading per meter per interval, measured in reading time', () => {
  const p = new TeleinfoParser(options({ emit: 'interval', intervalSeconds: 10 }));
  const times = ['00', '04', '09', '10', '15', '21'].map((s) => `2026-11-29T10:00:${s}.000Z`);
  const emitted = times.flatMap((t) =>
    p.parse(reading('A', t, 1), '', new Date()).readings.map((r) => r.time.slice(17, 19)),
  );
  assert.deepEqual(emitted, ['00', '10', '21']);
  // Each meter has its own clock.
  assert.equal(p.parse(reading('B', times[1], 1), '', new Date()).readings.length, 1);
  assert.equal(p.counters.suppressed, 3);
});

test('streams on different ports are decoded apart, even interleaved byte by byte', () => {
  const p = new TeleinfoParser(options());
  const a = fixture('tic', 'pyteleinfo_captured_frames.bin');
  const b = fixture('tic', 'goteleinfo_reader_test_standard.bin');
  const out: Reading[] = [];
  for (let i = 0; i < Math.max(a.length, b.length); i++) {
    if (i < a.length) out.push(...p.parse(a.subarray(i, i + 1), '/dev/ttyUSB0', new Date()).readings);
    if (i < b.length) out.push(...p.parse(b.subarray(i, i + 1), '/dev/ttyUSB1', new Date()).readings);
  }
  assert.equal(out.filter((r) => r.source === 'tic-historic').length, 10);
  assert.equal(out.filter((r) => r.source === 'tic-standard').length, 1);
  assert.equal(p.counters.checksumErrors + p.counters.formatErrors, 0);
});

test('bad input is an error message and a counter, never a throw', () => {
  const p = new TeleinfoParser(options());
  for (const bad of [null, 42, { foo: 1 }, '{"product":', [1, 2], true]) {
    const { readings, errors } = p.parse(bad, '', new Date());
    assert.equal(readings.length, 0);
    assert.equal(errors.length, 1, JSON.stringify(bad));
  }
  assert.equal(p.counters.invalidInputs, 6);
});

test('topics: placeholders replaced, MQTT wildcards and levels in ids neutralised', () => {
  assert.equal(
    renderTopic('teleinfo/{meter}/reading', reading('a/b+c#d e', '2026-11-29T10:00:00Z', 1)),
    'teleinfo/a_b_c_d_e/reading',
  );
  assert.equal(renderTopic('{source}/{meter}', reading('X', '2026-11-29T10:00:00Z', 1)), 'tic-historic/X');
});
