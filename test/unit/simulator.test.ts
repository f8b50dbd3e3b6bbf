import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import path from 'node:path';
import { describe, test } from 'node:test';
import {
  decodeEcoDevicesPayload,
  readingFromTicFrame,
  TicStreamDecoder,
  type Reading,
} from '../../nodes/lib';
import { simulatedBox } from '../../nodes/lib/simulator/cli';
import { SimClock } from '../../nodes/lib/simulator/ecodevices-server';
import { EmissionFilter } from '../../nodes/lib/emission';
import { backoffDelay, retryAfterMs } from '../../nodes/lib/retry';
import { SimulatedMeter, type Contract } from '../../nodes/lib/simulator/meter';
import { encodeTicFrame } from '../../nodes/lib/tic/encoder';
import { ROOT } from '../support/fixtures';
import { startBox } from '../support/simulator';

const WINTER_DAY = Date.parse('2026-01-14T23:00:00Z'); // midnight in Paris
const meter = (contract: Contract, phases: 1 | 3 = 1, seed = 5) =>
  new SimulatedMeter({ adco: '021234567890', contract, phases, isousc: 45, seed, origin: WINTER_DAY });

describe('simulated meter', () => {
  for (const contract of ['BASE', 'HC', 'EJP', 'TEMPO'] as Contract[]) {
    for (const phases of [1, 3] as const) {
      test(`${contract} ${phases}-phase: historic and standard frames decode with valid checksums and the model's values`, () => {
        const m = meter(contract, phases);
        const t = WINTER_DAY + 19 * 3_600_000;
        for (const mode of ['historic', 'standard'] as const) {
          const groups = mode === 'historic' ? m.historicGroups(t) : m.standardGroups(t);
          const decoder = new TicStreamDecoder({ mode });
          const bytes = Buffer.from(encodeTicFrame(mode, groups).repeat(2), 'latin1');
          const { frames, errors } = decoder.push(bytes);
          assert.deepEqual(errors, []);
          assert.equal(frames.length, 2);
          const reading = readingFromTicFrame(frames[1], new Date(t));
          const state = m.state(t);
          assert.equal(reading.apparentPower, state.papp);
          assert.equal(reading.phases, phases);
          assert.equal(reading.tariffOption, contract);
          if (mode === 'historic') assert.deepEqual(reading.energyIndexes, state.indexes);
          else {
            assert.equal(
              reading.time,
              new Date(t).toISOString(),
              'the meter clock (DATE) is the reading time',
            );
            assert.equal(
              reading.energyTotal,
              Object.values(state.indexes).reduce((a, b) => a + b, 0),
            );
          }
        }
      });
    }
  }

  test('indexes only grow, and their growth is the integral of the apparent power', () => {
    const m = meter('HC');
    let previous = m.state(WINTER_DAY);
    let expectedWh = 0;
    for (let minute = 0; minute < 3 * 24 * 60; minute++) {
      const t = WINTER_DAY + minute * 60_000;
      const s = m.state(t);
      for (const [label, wh] of Object.entries(s.indexes)) assert.ok(wh >= previous.indexes[label], label);
      expectedWh += (s.papp * 60) / 3600;
      previous = s;
    }
    const end = m.state(WINTER_DAY + 3 * 86_400_000);
    const start = meter('HC').state(WINTER_DAY);
    const grown = Object.keys(end.indexes).reduce((sum, l) => sum + end.indexes[l] - start.indexes[l], 0);
    assert.ok(Math.abs(grown - expectedWh) <= 2, `${grown} Wh vs ${expectedWh} Wh`);
  });

  test('HC follows the 22:00 to 06:00 off-peak schedule in French time', () => {
    const m = meter('HC');
    const at = (h: number) => m.state(WINTER_DAY + h * 3_600_000).ptec;
    assert.deepEqual([at(3), at(5.9), at(6.1), at(21.9), at(22.1)], ['HC..', 'HC..', 'HP..', 'HP..', 'HC..']);
  });

  test('Tempo: mostly blue days, some white and red in winter, none red on Sunday; DEMAIN is tomorrow', () => {
    const m = meter('TEMPO');
    const colours = { BLEU: 0, BLANC: 0, ROUGE: 0 };
    const day0 = Math.floor(Date.parse('2025-09-01T12:00:00Z') / 86_400_000);
    for (let d = day0; d < day0 + 365; d++) {
      const colour = m.tempoColour(d);
      colours[colour]++;
      if (new Date(d * 86_400_000).getUTCDay() === 0) assert.notEqual(colour, 'ROUGE');
    }
    assert.ok(colours.BLEU > 250 && colours.BLANC > 20 && colours.ROUGE > 10, JSON.stringify(colours));
  });

  test('same seed, same values; another seed, other values', () => {
    const t = WINTER_DAY + 40_000_000;
    assert.deepEqual(meter('TEMPO', 1, 9).state(t), meter('TEMPO', 1, 9).state(t));
    assert.notDeepEqual(meter('TEMPO', 1, 9).state(t), meter('TEMPO', 1, 10).state(t));
  });

  test('teleinfo-sim --tic standard on stdout: frames our decoder accepts, at the requested count', async () => {
    const child = spawn(process.execPath, [
      path.join(ROOT, 'bin', 'teleinfo-sim.js'),
      '--no-http',
      '--tic',
      'standard',
      '--tic-interval',
      '0',
      '--tic-frames',
      '5',
      '--seed',
      '3',
    ]);
    const chunks: Buffer[] = [];
    child.stdout.on('data', (c: Buffer) => chunks.push(c));
    const code = await new Promise((r) => child.on('exit', r));
    assert.equal(code, 0);
    const { frames, errors } = new TicStreamDecoder({ mode: 'auto' }).push(Buffer.concat(chunks));
    assert.deepEqual(errors, []);
    assert.equal(frames.length, 5);
    assert.ok(frames.every((f) => f.mode === 'standard'));
  });
});

describe('retry policy and emission filter', () => {
  test('backoff doubles from the base, stays within ± jitter, and never exceeds the cap', () => {
    const policy = { baseMs: 1000, maxMs: 30_000, jitter: 0.2 };
    assert.deepEqual(
      [1, 2, 3, 4, 5, 6, 40].map((a) => backoffDelay(a, policy, () => 0.5)),
      [1000, 2000, 4000, 8000, 16000, 30000, 30000],
    );
    assert.equal(
      backoffDelay(1, policy, () => 0),
      800,
    );
    assert.equal(
      backoffDelay(1, policy, () => 0.999999),
      1200,
    );
    assert.equal(
      backoffDelay(10, policy, () => 0.999999),
      30_000,
    );
  });

  test('Retry-After in seconds or as an HTTP date', () => {
    assert.equal(retryAfterMs('7'), 7000);
    assert.equal(retryAfterMs(new Date(Date.now() + 5000).toUTCString(), Date.now()) !== null, true);
    assert.equal(retryAfterMs('soon'), null);
    assert.equal(retryAfterMs(undefined), null);
  });

  test('heartbeat: changes pass, a steady meter passes again once the heartbeat has elapsed (reading time)', () => {
    const filter = new EmissionFilter('heartbeat', 60);
    const r = (s: number, papp: number) =>
      ({ meter: 'm', time: new Date(s * 1000).toISOString(), values: { PAPP: papp } }) as unknown as Reading;
    assert.deepEqual(
      [r(0, 10), r(10, 10), r(20, 20), r(50, 20), r(80, 20), r(81, 20)].map((x) => filter.admit(x)),
      [true, false, true, false, true, false],
    );
  });
});

describe('simulated box: meter events for alerts (admin API)', () => {
  test('a spike, an overrun, a red tomorrow, an EJP notice and an index going back show in the pages it serves', async () => {
    const box = simulatedBox(
      {
        boxes: 1,
        contract: 'TEMPO',
        contract2: 'EJP',
        phases: 1,
        isousc: 45,
        seed: 5,
        start: Date.parse('2026-01-10T10:00:00Z'),
      },
      0,
      new SimClock(Date.parse('2026-01-10T10:00:00Z'), 0),
    );
    await box.listen(0);
    try {
      const page = async (p: string) => (await fetch(`http://127.0.0.1:${box.port}${p}`)).text();
      const reading = async (input: 1 | 2) =>
        decodeEcoDevicesPayload(await page(`/protect/settings/teleinfo${input}.xml`), {
          device: 'box',
          time: new Date(),
        }).readings[0];
      const before = await reading(1);
      const post = (body: object) =>
        fetch(`http://127.0.0.1:${box.port}/__sim/events`, { method: 'POST', body: JSON.stringify(body) });
      await post({
        spikeVa: 9500,
        spikeSeconds: 60,
        overrunSeconds: 60,
        tomorrowRed: true,
        indexBackWh: 5000,
      });
      await post({ input: 2, ejpSeconds: 60 });
      const after = await reading(1);
      assert.equal(after.apparentPower, 9500);
      assert.ok(typeof after.values.ADPS === 'number' && after.values.ADPS > 0, 'ADPS while overrunning');
      assert.equal(after.values.DEMAIN, 'ROUG');
      assert.equal(after.energyTotal, before.energyTotal! - 5000 * Object.keys(before.energyIndexes).length);
      assert.equal((await reading(2)).values.PEJP, 30);
      box.clock.set({ advanceMs: 61_000 });
      const later = await reading(1);
      assert.notEqual(later.apparentPower, 9500, 'the spike is over');
      assert.equal(later.values.ADPS, undefined, 'and the overrun');
    } finally {
      await box.close();
    }
  });
});

describe('simulated box: its admin API behind its own password', () => {
  test('with protection on, /__sim/ answers 401 without the box credentials, and works with them', async () => {
    const box = await startBox({ user: 'admin', password: 's3cret' });
    try {
      const url = `http://127.0.0.1:${box.port}`;
      const auth = { authorization: `Basic ${Buffer.from('admin:s3cret').toString('base64')}` };
      for (const p of ['/__sim/state', '/__sim/stats'])
        assert.equal((await fetch(`${url}${p}`)).status, 401, p);
      const faults = await fetch(`${url}/__sim/faults`, { method: 'POST', body: '{"status":503}' });
      assert.equal(faults.status, 401, 'no fault set without the password');
      assert.equal((await fetch(`${url}/protect/settings/teleinfo1.xml`, { headers: auth })).status, 200);
      assert.equal((await fetch(`${url}/__sim/state`, { headers: auth })).status, 200);
    } finally {
      await box.close();
    }
  });
});
