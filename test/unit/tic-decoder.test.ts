import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { labelSpec, readingFromTicFrame, TicStreamDecoder, type TicFrame } from '../../nodes/lib';
import { captures, fixture } from '../support/fixtures';
import { groupKey, validGroups } from '../support/independent-tic';

function decodeAll(bytes: Buffer | string, mode: 'auto' | 'historic' | 'standard' = 'auto') {
  const decoder = new TicStreamDecoder({ mode });
  const { frames, errors } = decoder.push(bytes);
  return { decoder, frames, errors };
}

describe('TIC decoder over every real capture', () => {
  for (const c of captures()) {
    test(c.file, () => {
      const { decoder, frames, errors } = decodeAll(c.bytes);
      const independent = validGroups(c.bytes);
      // Every group the checksum accepts is either in a frame or counted as part of a partial frame.
      assert.equal(decoder.counters.groups + decoder.counters.partialGroups, independent.length);
      const expected = new Set(independent.map(groupKey));
      for (const frame of frames) {
        assert.equal(frame.mode, c.mode);
        for (const g of frame.groups) {
          assert.ok(
            expected.has(`${g.label}|${g.horodate ?? ''}|${String(g.value)}`),
            `${g.label} ${String(g.value)}`,
          );
          if (labelSpec(c.mode, g.label).kind === 'int') assert.equal(typeof g.value, 'number', g.label);
        }
      }
      // The corrupted and truncated groups named in SOURCES.md, and only those, are rejected and counted.
      assert.deepEqual(
        errors.map((e) => e.bytes),
        c.badGroups,
      );
      assert.ok(errors.every((e) => e.kind === 'checksum'));
      assert.equal(decoder.counters.checksumErrors, c.badGroups.length);
    });
  }

  test('historic Tempo capture: ten readings with the meter values', () => {
    const { frames } = decodeAll(fixture('tic', 'pyteleinfo_captured_frames.bin'));
    assert.equal(frames.length, 10);
    const r = readingFromTicFrame(frames[0], new Date('2026-01-01T00:00:00Z'));
    assert.equal(r.meter, '021861348497');
    assert.equal(r.source, 'tic-historic');
    assert.equal(r.time, '2026-01-01T00:00:00.000Z');
    assert.equal(r.tariffOption, 'TEMPO');
    assert.equal(r.tariffPeriod, 'HCJB');
    assert.equal(r.values.OPTARIF, 'BBR(');
    assert.equal(r.values.BBRHCJB, 18328856);
    assert.equal(r.apparentPower, 2840);
    assert.deepEqual(r.currents, [12]);
    assert.equal(r.phases, 1);
    assert.equal(r.energyTotal, 18328856 + 23739545 + 1466099 + 2132883 + 860118 + 844115);
  });

  test('standard capture: meter clock, horodates, STGE, units', () => {
    const { frames } = decodeAll(fixture('tic', 'goteleinfo_reader_test_standard.bin'));
    const r = readingFromTicFrame(frames[0], new Date(0));
    assert.equal(r.source, 'tic-standard');
    assert.equal(r.meter, '12345678900');
    // DATE H191203125805: winter time, UTC+1.
    assert.equal(r.time, '2019-12-03T11:58:05.000Z');
    assert.equal(r.values.DATE, '');
    assert.equal(r.values.SINSTS, 519);
    assert.equal(r.apparentPower, 519);
    assert.equal(r.energyTotal, r.values.EAST);
    assert.equal(typeof r.values.PREF, 'number');
    assert.equal(r.status?.ticMode, 'standard');
    assert.ok(r.horodates?.SMAXSN);
  });

  test('the checksum that is itself a space is accepted (PTEC HP..␠␠)', () => {
    const { frames, errors } = decodeAll(fixture('tic', 'unresolved_go_testcases_historic_tri_hc_adir.bin'));
    assert.equal(errors.length, 0);
    const ptec = frames[0]?.groups.find((g) => g.label === 'PTEC');
    assert.equal(ptec?.value, 'HP..');
  });

  test('three-phase short frame (ADIR1) is an overrun reading', () => {
    const { frames } = decodeAll(fixture('tic', 'unresolved_go_testcases_historic_tri_hc_adir.bin'));
    const short = frames.find((f) => f.groups.some((g) => g.label === 'ADIR1')) as TicFrame;
    const r = readingFromTicFrame(short, new Date(0));
    assert.equal(r.overrun, true);
    assert.equal(r.phases, 3);
    assert.equal(r.currents.length, 3);
  });

  test('data with spaces is kept as sent (NGTF, LTARF, MSG1, PJOURF+1)', () => {
    const c = captures().find((x) => x.file.includes('three-phase-prod'));
    const { frames } = decodeAll(c?.bytes as Buffer);
    const r = readingFromTicFrame(frames[0], new Date(0));
    assert.equal(r.values.NGTF, '     TEMPO      ');
    assert.equal(r.tariffOption, 'TEMPO');
    assert.match(String(r.values.MSG1), /^PAS DE +MESSAGE +$/);
    assert.match(String(r.values['PJOURF+1']), / /);
    assert.equal(r.phases, 3);
    assert.equal(r.status?.producer, true);
    assert.equal(r.status?.tempoToday, 'BLEU');
  });
});

describe('TIC decoder framing', () => {
  const frame = (groups: string[]) => `\x02${groups.map((g) => `\n${g}\r`).join('')}\x03`;
  const fixGroup = (label: string, data: string) => {
    let s = 0;
    for (const c of `${label} ${data}`) s += c.charCodeAt(0);
    return `${label} ${data} ${String.fromCharCode((s & 0x3f) + 0x20)}`;
  };
  const good = [fixGroup('ADCO', '021861348497'), fixGroup('OPTARIF', 'BASE'), fixGroup('PAPP', '00420')];

  test('partial first frame is dropped, not an error', () => {
    const { frames, errors, decoder } = decodeAll(`\n${good[1]}\r\n${good[2]}\r\x03${frame(good)}`);
    assert.equal(frames.length, 1);
    assert.equal(errors.length, 0);
    assert.equal(decoder.counters.partialGroups, 2);
  });

  test('EOT interrupts a frame: it is dropped and counted, the next frame decodes', () => {
    const { frames, errors, decoder } = decodeAll(`\x02\n${good[0]}\r\x04${frame(good)}`);
    assert.equal(frames.length, 1);
    assert.equal(decoder.counters.interruptedFrames, 1);
    assert.equal(errors[0]?.kind, 'interrupted');
  });

  test('a bad group is dropped and counted; the rest of the frame survives', () => {
    const corrupted = good[2]?.replace('00420', '00430');
    const { frames, errors, decoder } = decodeAll(frame([good[0], good[1], corrupted]));
    assert.equal(frames[0]?.groups.length, 2);
    assert.equal(decoder.counters.checksumErrors, 1);
    assert.match(errors[0]?.message ?? '', /bad checksum.*PAPP 00430/);
  });

  test('7-bit data read on an 8-bit port: the parity bit is masked', () => {
    const bytes = Buffer.from(frame(good), 'latin1').map((b) => (b % 2 ? b | 0x80 : b));
    const { frames, errors } = decodeAll(Buffer.from(bytes));
    assert.equal(errors.length, 0);
    assert.equal(frames[0]?.groups.find((g) => g.label === 'PAPP')?.value, 420);
  });

  test('byte by byte gives the same frames as one chunk', () => {
    const c = captures().find((x) => x.file === 'goteleinfo_reader_test_standard.bin') as { bytes: Buffer };
    const whole = decodeAll(c.bytes).frames;
    const decoder = new TicStreamDecoder();
    const pieces: TicFrame[] = [];
    for (const b of c.bytes) pieces.push(...decoder.push(Buffer.from([b])).frames);
    assert.deepEqual(pieces, whole);
  });

  test('lines without STX/ETX: a repeated label starts the next frame', () => {
    const decoder = new TicStreamDecoder();
    const lines = [...good, ...good, ...good].map((g) => `\n${g}\r`);
    const frames = lines.flatMap((l) => decoder.push(l).frames);
    assert.equal(frames.length, 2);
    assert.deepEqual(
      frames[0]?.groups.map((g) => g.label),
      ['ADCO', 'OPTARIF', 'PAPP'],
    );
  });

  test('forced mode rejects groups of the other mode', () => {
    const { frames, errors } = decodeAll(frame(good), 'standard');
    assert.equal(frames.length, 0);
    assert.ok(errors.every((e) => e.kind === 'mode'));
  });

  test('an oversized group and garbage between groups never grow a buffer', () => {
    const { errors, decoder } = decodeAll(`\x02\n${'A'.repeat(10_000)}\r${'junk'}${frame(good)}`);
    assert.equal(errors[0]?.kind, 'oversize');
    assert.ok(decoder.counters.noiseBytes >= 4);
  });
});
