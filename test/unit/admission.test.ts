import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import fc from 'fast-check';
import {
  Admission,
  DEFAULT_LIMITS,
  MeterBindings,
  parseDeclaredMeters,
  readingTopic,
  type AdmissionLimits,
} from '../../nodes/lib/admission';
import { decodeEcoDevicesRecord, counterReadings } from '../../nodes/lib/ecodevices/decode';
import { readingToLine } from '../../nodes/lib/influx/line-protocol';
import { SpoolShares } from '../../nodes/lib/influx/shares';
import { readingFromTicFrame, type Reading } from '../../nodes/lib/reading';
import { SimulatedMeter, type Contract } from '../../nodes/lib/simulator/meter';
import { TicStreamDecoder } from '../../nodes/lib/tic/decoder';
import { encodeTicFrame } from '../../nodes/lib/tic/encoder';
import { captures } from '../support/fixtures';

const NOW = Date.parse('2026-11-15T12:00:00Z');
const admission = (limits: Partial<AdmissionLimits> = {}, declared = {}) => {
  const l = { ...DEFAULT_LIMITS, ...limits };
  return new Admission(l, new MeterBindings(l, declared));
};
const topic = (pi: string, meter: string) => `teleinfo/${pi}/${meter}/reading`;

/** A reading as a Pi makes it: a simulated meter's frame through the TIC decoder, or an Eco-Devices page. */
const honestReading = fc
  .record({
    contract: fc.constantFrom<Contract>('BASE', 'HC', 'EJP', 'TEMPO'),
    phases: fc.constantFrom<1 | 3>(1, 3),
    seed: fc.integer({ min: 1, max: 1000 }),
    offset: fc.integer({ min: -80 * 86_400_000, max: 30 * 60_000 }),
    source: fc.constantFrom('tic-historic', 'tic-standard', 'ecodevices', 'counter'),
  })
  .map(({ contract, phases, seed, offset, source }): Reading => {
    const time = NOW + offset;
    const adco = `0218${String(seed).padStart(8, '0')}`;
    const meter = new SimulatedMeter({ adco, contract, phases, isousc: 45, seed, origin: time - 86_400_000 });
    if (source === 'counter')
      return counterReadings(
        { readings: [], counters: [{ input: 'C1', index: 1234.5 + seed, day: seed / 10, flow: 0 }] },
        { device: 'box', time: new Date(time) },
        { C1: { name: 'water', divider: 1 }, C2: { name: '', divider: 1 } },
      )[0];
    const mode = source === 'tic-standard' ? 'standard' : 'historic';
    const groups = mode === 'standard' ? meter.standardGroups(time) : meter.historicGroups(time);
    if (source === 'ecodevices') {
      const record = Object.fromEntries(groups.map((g) => [`T1_${g.label}`, g.value]));
      return decodeEcoDevicesRecord(record, { device: 'box', time: new Date(time) }).readings[0];
    }
    const { frames } = new TicStreamDecoder({ mode }).push(
      Buffer.from(encodeTicFrame(mode, groups), 'latin1'),
    );
    return readingFromTicFrame(frames[0], new Date(time));
  });

/** Our line protocol, strictly: nothing unescaped can hide in a tag or a field. */
const TAG_VALUE = String.raw`(?:[^ ,=\\]|\\[ ,=]|\\(?=[^ ,=]))+`;
const FIELD = String.raw`[A-Za-z0-9_+-]+=(?:-?\d+i|-?\d+(?:\.\d+)?(?:e[+-]?\d+)?|"(?:[^"\\]|\\["\\])*"|true|false)`;
const LINE = new RegExp(
  String.raw`^teleinfo,meter=[A-Za-z0-9._-]+,source=(?:tic-historic|tic-standard|ecodevices)(?:,tariff_option=${TAG_VALUE})?(?:,tariff_period=${TAG_VALUE})? ${FIELD}(?:,${FIELD})* \d+$`,
);

describe('admission of readings from untrusted Pis', () => {
  test('property: a reading our decoders make, sent as JSON on its topic, is admitted exactly as it was made', () => {
    fc.assert(
      fc.property(fc.array(honestReading, { minLength: 1, maxLength: 5 }), (readings) => {
        const a = admission();
        for (const r of readings) {
          const outcome = a.admit(topic('pi-1', r.meter), JSON.stringify(r), NOW);
          assert.deepEqual(outcome.refusals, []);
          assert.deepEqual(outcome.readings, [JSON.parse(JSON.stringify(r))]);
          const line = readingToLine(outcome.readings[0]);
          assert.match(line, LINE);
          // A water or gas counter has no phases and no overrun.
          assert.equal(/ phases=|,phases=|overrun=/.test(line), r.counter === undefined, line);
        }
      }),
      { numRuns: 300 },
    );
  });

  test('every frame of every real capture, as a Pi sends its reading, is admitted exactly as it was made', () => {
    let admitted = 0;
    for (const c of captures()) {
      const a = admission();
      for (const frame of new TicStreamDecoder({ mode: c.mode }).push(c.bytes).frames) {
        let reading: Reading;
        try {
          reading = readingFromTicFrame(frame, new Date(NOW));
        } catch {
          continue; // a frame without a meter id (hand-made test data) makes no reading
        }
        // A standard frame carries the meter's own date: the server's clock is then.
        const outcome = a.admit(
          topic('pi-1', reading.meter),
          JSON.stringify(reading),
          Date.parse(reading.time),
        );
        assert.deepEqual(outcome.refusals, [], c.file);
        assert.deepEqual(outcome.readings, [JSON.parse(JSON.stringify(reading))], c.file);
        admitted++;
      }
    }
    assert.ok(admitted >= 20, `${admitted} readings`);
  });

  /** A reading with one part replaced, removed or added by a hostile Pi. */
  const mutated = fc
    .tuple(
      honestReading,
      fc.array(
        fc.tuple(
          fc.constantFrom(
            'meter',
            'source',
            'time',
            'values',
            'tariffOption',
            'phases',
            'overrun',
            'counter',
            'horodates',
            'label',
            'newLabel',
          ),
          fc.oneof(fc.jsonValue(), fc.string(), fc.constant('1i,evil=1 0\nteleinfo_pi,pi=pi-1 online=false')),
        ),
        { minLength: 1, maxLength: 4 },
      ),
    )
    .map(([reading, changes]) => {
      const r = JSON.parse(JSON.stringify(reading)) as Record<string, unknown> & {
        values: Record<string, unknown>;
      };
      for (const [field, value] of changes) {
        // Once `values` itself was replaced, there is no label left to change.
        const labelled = typeof r.values === 'object' && r.values !== null && !Array.isArray(r.values);
        if ((field === 'label' || field === 'newLabel') && !labelled) continue;
        if (field === 'label') {
          const labels = Object.keys(r.values);
          if (labels.length > 0) r.values[labels[JSON.stringify(value).length % labels.length]] = value;
        } else if (field === 'newLabel') r.values[JSON.stringify(value).slice(0, 20)] = value;
        else if (value === null) delete r[field];
        else (r as Record<string, unknown>)[field] = value;
      }
      return { meter: reading.meter, payload: JSON.stringify(r) };
    });

  test('property (fuzz): random and mutated payloads never throw; what is admitted writes a strict line and is admitted again as it is', () => {
    const payloads = fc.oneof(
      mutated,
      fc.record({ meter: fc.constantFrom('021800000001', 'box-water', '../x', ''), payload: fc.json() }),
      fc.record({ meter: fc.string(), payload: fc.string() }),
    );
    fc.assert(
      fc.property(fc.array(payloads, { minLength: 1, maxLength: 8 }), (messages) => {
        const a = admission();
        for (const { meter, payload } of messages) {
          const outcome = a.admit(topic('pi-1', meter), payload, NOW);
          for (const r of outcome.readings) {
            assert.match(readingToLine(r), LINE);
            const again = admission().admit(topic('pi-1', r.meter), JSON.stringify(r), NOW);
            assert.deepEqual(again.readings, [r]);
          }
        }
      }),
      { numRuns: 1000 },
    );
  });

  const hc = (meter = '021861348497', time = NOW, extra: Record<string, unknown> = {}) => ({
    meter,
    source: 'tic-historic',
    time: new Date(time).toISOString(),
    values: {
      ADCO: meter,
      OPTARIF: 'HC..',
      ISOUSC: 45,
      HCHC: 1000,
      HCHP: 2000,
      PTEC: 'HP..',
      IINST: 5,
      PAPP: 1200,
    },
    ...extra,
  });

  test('what a hostile Pi sends is refused, counted, and said without its content', () => {
    const a = admission({ metersPerPi: 2 });
    const refused = (t: string, payload: unknown) => {
      const o = a.admit(t, payload, NOW);
      assert.equal(o.readings.length, 0, JSON.stringify(o));
      return o.refusals[0];
    };
    assert.equal(refused('teleinfo/pi-1/reading', JSON.stringify(hc())).reason, 'topic');
    assert.equal(refused(topic('pi 1', '021861348497'), JSON.stringify(hc())).reason, 'topic');
    assert.equal(refused(topic('pi-1', 'x'.repeat(70_000)), '{}').reason, 'topic');
    // The size is checked before parsing: 2 MB of what would not even parse.
    const huge = refused(topic('pi-1', '021861348497'), `{"meter":"${'x'.repeat(2_000_000)}`);
    assert.equal(huge.reason, 'oversize');
    assert.doesNotMatch(huge.detail, /xxx/);
    assert.equal(refused(topic('pi-1', '021861348497'), '{"meter": ').reason, 'malformed');
    assert.equal(refused(topic('pi-1', '021861348497'), { meter: 'object' }).reason, 'shape');
    assert.equal(refused(topic('pi-1', '021861348497'), JSON.stringify(hc('021861348498'))).reason, 'meter');
    const future = refused(
      topic('pi-1', '021861348497'),
      JSON.stringify(hc(undefined, Date.parse('2030-01-07T00:00:00Z'))),
    );
    assert.equal(future.reason, 'time');
    assert.equal(
      refused(topic('pi-1', '021861348497'), JSON.stringify(hc(undefined, NOW - 91 * 86_400_000))).reason,
      'time',
    );
    const poisoned = hc();
    (poisoned.values as Record<string, unknown>).PTEC = 3;
    assert.equal(refused(topic('pi-1', '021861348497'), JSON.stringify(poisoned)).reason, 'label');
    const fractional = hc();
    (fractional.values as Record<string, unknown>).HCHC = 1000.5;
    assert.equal(refused(topic('pi-1', '021861348497'), JSON.stringify(fractional)).reason, 'label');
    const many = hc();
    for (let i = 0; i < 2000; i++) (many.values as Record<string, unknown>)[`L${i}`] = 'x';
    assert.equal(refused(topic('pi-1', '021861348497'), JSON.stringify(many)).reason, 'label');

    // Derived fields come from the labels, never from the Pi: an injection attempt is simply not there.
    const injected = a.admit(
      topic('pi-1', '021861348497'),
      JSON.stringify(
        hc(undefined, NOW, {
          phases: '1i,evil=1 0\nteleinfo_pi,pi=pi-1 online=false',
          overrun: 'x',
          apparentPower: 99999,
        }),
      ),
      NOW,
    );
    assert.equal(injected.readings[0].phases, 1);
    assert.equal(injected.readings[0].overrun, false);
    assert.equal(injected.readings[0].apparentPower, 1200);
    assert.match(readingToLine(injected.readings[0]), LINE);

    // Meters belong to the Pi that sent them first; a Pi has room for metersPerPi.
    assert.equal(refused(topic('pi-evil', '021861348497'), JSON.stringify(hc())).reason, 'foreign-meter');
    assert.equal(
      a.admit(topic('pi-evil', '021800000002'), JSON.stringify(hc('021800000002')), NOW).readings.length,
      1,
    );
    assert.equal(
      a.admit(topic('pi-evil', '021800000003'), JSON.stringify(hc('021800000003')), NOW).readings.length,
      1,
    );
    assert.equal(
      refused(topic('pi-evil', '021800000004'), JSON.stringify(hc('021800000004'))).reason,
      'meter-quota',
    );
    // Junk does not take a Pi's room.
    refused(topic('pi-2', '021800000009'), '{"junk": true}');
    assert.deepEqual(a.bindings.toJSON(), {
      'pi-1': ['021861348497'],
      'pi-evil': ['021800000002', '021800000003'],
    });
    assert.equal(a.counters['foreign-meter'], 1);
    assert.equal(a.counters.oversize, 1);
  });

  test('declared meters: a declared Pi sends only those; bindings saved come back, within the limits', () => {
    const declared = parseDeclaredMeters(
      '# the kitchen\npi-1: 021861348497, 021861348498\n\npi-2: box-water',
    );
    assert.deepEqual(declared, { 'pi-1': ['021861348497', '021861348498'], 'pi-2': ['box-water'] });
    assert.throws(() => parseDeclaredMeters('pi-1 021861348497'), /line 1/);
    assert.throws(() => parseDeclaredMeters('pi-1: ../etc'), /line 1/);
    const limits = { ...DEFAULT_LIMITS, metersPerPi: 2 };
    const bindings = new MeterBindings(limits, declared, {
      'pi-3': ['m1', 'm2', 'm3'],
      'pi-1': ['m4'],
      '../x': ['m5'],
      'pi-4': ['021861348497'],
    });
    assert.equal(bindings.check('pi-1', '021861348498'), null);
    assert.equal(bindings.check('pi-1', 'other'), 'meter-quota');
    assert.equal(bindings.check('pi-3', 'm2'), null);
    assert.equal(bindings.check('pi-3', 'm3'), 'meter-quota', 'saved beyond the limit are not restored');
    assert.deepEqual(
      bindings.toJSON(),
      { 'pi-3': ['m1', 'm2'] },
      'declared Pis are not saved; invalid or taken are dropped',
    );
    const few = new MeterBindings({ metersPerPi: 2, maxPis: 1 });
    assert.equal(few.check('a', 'm'), null);
    assert.equal(few.check('b', 'n'), 'pi-quota');
  });

  test("a meter's tariff tags are bounded: a Pi cannot make a series per reading of its own meter", () => {
    const a = admission();
    const base = (ptec: string, i: number) => ({
      meter: 'm1',
      source: 'tic-historic',
      time: new Date(NOW - i * 1000).toISOString(),
      values: {
        ADCO: 'm1',
        OPTARIF: 'BASE',
        ISOUSC: 45,
        BASE: 1000 + i,
        PTEC: ptec,
        IINST: 1,
        IMAX: 90,
        PAPP: 200,
      },
    });
    const periods = new Set<string>();
    for (let i = 0; i < 100; i++) {
      const outcome = a.admit(topic('pi-1', 'm1'), JSON.stringify(base(`X${i}`, i)), NOW);
      for (const r of outcome.readings) periods.add(String(r.tariffPeriod));
    }
    assert.equal(periods.size, 32);
    assert.equal(a.counters.label, 68);
    // The tags it has keep coming in.
    assert.equal(a.admit(topic('pi-1', 'm1'), JSON.stringify(base('X3', 500)), NOW).readings.length, 1);
  });

  test('readingTopic takes ids only', () => {
    assert.deepEqual(readingTopic('teleinfo/pi-1/021861348497/reading'), {
      pi: 'pi-1',
      meter: '021861348497',
    });
    for (const t of [
      'teleinfo/+/x/reading',
      'teleinfo/pi/a b/reading',
      'teleinfo/pi/m/reading/x',
      '$share/g/teleinfo/p/m/reading',
    ])
      assert.equal(readingTopic(t), null, t);
  });
});

describe("a server spool's shares", () => {
  test('once half full, a Pi holding more than its share is refused; the others still get theirs; shares follow the spool', () => {
    const shares = new SpoolShares(1000);
    assert.ok(shares.admits('pi-evil', 400, 0), 'below half, anything');
    shares.added('pi-evil', 4, 400);
    shares.added('pi-1', 1, 100);
    assert.ok(!shares.admits('pi-evil', 200, 500), 'over its share of two (500)');
    assert.ok(shares.admits('pi-1', 200, 500));
    assert.ok(shares.admits('pi-2', 300, 500), 'a new Pi: a share of three');
    assert.ok(shares.admits('', 5000, 500), 'no known owner: not limited');
    shares.removed(3);
    assert.equal(shares.bytesOf('pi-evil'), 100);
    shares.withdrawn(1);
    assert.equal(shares.bytesOf('pi-1'), 0);
    shares.removed(10);
    assert.equal(shares.bytesOf('pi-evil'), 0);
  });
});
