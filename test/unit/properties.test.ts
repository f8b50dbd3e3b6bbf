import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import {
  HISTORIC_LABELS,
  STANDARD_LABELS,
  TicStreamDecoder,
  type LabelSpec,
  type TicFrame,
  type TicMode,
} from '../../nodes/lib';
import { groupKey, validGroups } from '../support/independent-tic';

const printable = (exclude: string) =>
  fc
    .string({ unit: fc.integer({ min: 0x20, max: 0x7e }).map((c) => String.fromCharCode(c)), maxLength: 24 })
    .filter((s) => ![...exclude].some((x) => s.includes(x)));

const horodate = fc
  .tuple(
    fc.constantFrom('H', 'E', 'h', 'e', ' '),
    fc.integer({ min: 0, max: 99 }),
    fc.integer({ min: 1, max: 12 }),
    fc.integer({ min: 1, max: 28 }),
    fc.integer({ min: 0, max: 23 }),
    fc.integer({ min: 0, max: 59 }),
    fc.integer({ min: 0, max: 59 }),
  )
  .map(([s, ...n]) => s + n.map((x) => String(x).padStart(2, '0')).join(''));

function dataFor(spec: LabelSpec, mode: TicMode): fc.Arbitrary<{ data: string; value: number | string }> {
  if (spec.kind === 'int') {
    return fc
      .tuple(fc.integer({ min: 0, max: 999_999_999 }), fc.integer({ min: 1, max: 9 }))
      .map(([v, w]) => {
        const data = String(v).padStart(w, '0');
        return { data, value: v };
      });
  }
  if (spec.kind === 'hex') return fc.stringMatching(/^[0-9A-F]{8}$/).map((data) => ({ data, value: data }));
  return printable(mode === 'standard' ? '\t' : '').map((data) => ({ data, value: data }));
}

interface Generated {
  readonly wire: string;
  readonly group: { label: string; value: number | string; horodate?: string };
}

function groupArb(mode: TicMode): fc.Arbitrary<Generated> {
  const table = mode === 'historic' ? HISTORIC_LABELS : STANDARD_LABELS;
  return fc.constantFrom(...Object.entries(table)).chain(([label, spec]) =>
    fc
      .tuple(dataFor(spec, mode), spec.horodate ? horodate : fc.constant(undefined))
      .map(([{ data, value }, h]) => {
        const sep = mode === 'historic' ? ' ' : '\t';
        const body =
          mode === 'historic' ? `${label} ${data}` : `${label}\t${h !== undefined ? `${h}\t` : ''}${data}\t`;
        let sum = 0;
        for (const c of body) sum += c.charCodeAt(0);
        const chk = String.fromCharCode((sum & 0x3f) + 0x20);
        const wire = mode === 'historic' ? `\n${body}${sep}${chk}\r` : `\n${body}${chk}\r`;
        return { wire, group: h !== undefined ? { label, value, horodate: h } : { label, value } };
      }),
  );
}

const streamArb = fc
  .constantFrom<TicMode>('historic', 'standard')
  .chain((mode) =>
    fc
      .array(fc.array(groupArb(mode), { minLength: 1, maxLength: 20 }), { minLength: 1, maxLength: 5 })
      .map((frames) => ({ mode, frames })),
  );

const wireOf = (frames: Generated[][]) =>
  Buffer.from(frames.map((f) => `\x02${f.map((g) => g.wire).join('')}\x03`).join(''), 'latin1');

test('property: any frame built from the label tables decodes to its values, in any chunking', () => {
  fc.assert(
    fc.property(streamArb, fc.array(fc.nat(), { maxLength: 30 }), ({ mode, frames }, cuts) => {
      const bytes = wireOf(frames);
      const expected: TicFrame[] = frames.map((f) => ({ mode, groups: f.map((g) => g.group) }));
      const whole = new TicStreamDecoder().push(bytes);
      assert.deepEqual(whole.errors, []);
      assert.deepEqual(whole.frames, expected);
      const positions = [...new Set(cuts.map((c) => c % (bytes.length + 1)))].sort((a, b) => a - b);
      const decoder = new TicStreamDecoder();
      const pieces: TicFrame[] = [];
      let from = 0;
      for (const to of [...positions, bytes.length]) {
        pieces.push(...decoder.push(bytes.subarray(from, to)).frames);
        from = to;
      }
      assert.deepEqual(pieces, expected);
    }),
    { numRuns: 300 },
  );
});

function onlyValidGroups(bytes: Uint8Array): void {
  const decoder = new TicStreamDecoder();
  const { frames } = decoder.push(bytes);
  const valid = new Set(validGroups(bytes).map(groupKey));
  for (const f of frames) {
    for (const g of f.groups)
      assert.ok(valid.has(`${g.label}|${g.horodate ?? ''}|${String(g.value)}`), JSON.stringify(g));
  }
}

test('property: random bytes never throw and never yield a group whose checksum is wrong', () => {
  fc.assert(fc.property(fc.uint8Array({ maxLength: 3000 }), onlyValidGroups), { numRuns: 500 });
  // Bytes drawn from the TIC alphabet reach far deeper into the state machine.
  const ticByte = fc.constantFrom(0x02, 0x03, 0x04, 0x0a, 0x0d, 0x09, 0x20, 0x41, 0x30, 0x31, 0x2e);
  fc.assert(
    fc.property(
      fc.array(ticByte, { maxLength: 3000 }).map((a) => Uint8Array.from(a)),
      onlyValidGroups,
    ),
    {
      numRuns: 500,
    },
  );
});

test('property: mutated frames never throw and never yield a group whose checksum is wrong', () => {
  fc.assert(
    fc.property(
      streamArb,
      fc.array(fc.tuple(fc.nat(), fc.integer({ min: 0, max: 255 })), { minLength: 1, maxLength: 10 }),
      ({ frames }, mutations) => {
        const bytes = wireOf(frames);
        for (const [at, b] of mutations) bytes[at % bytes.length] = b;
        onlyValidGroups(bytes);
      },
    ),
    { numRuns: 500 },
  );
});
