/**
 * npm run bench:parse — TIC decoding throughput on one core, ours against a public alternative, in one run.
 * Figures: frames/s and MB/s, median of 5 interleaved rounds, for a historic capture (esciara/pyteleinfo,
 * Linky Tempo) and a standard capture (j-vizcaino/goteleinfo, Linky single-phase), each repeated to ~4 MB and
 * fed in 4 KiB chunks as a serial reader would.
 */
import { readingFromTicFrame, TicStreamDecoder } from '../nodes/lib';
import { fixture } from '../test/support/fixtures';
import { TeleinfoNpmDecoder } from './alternatives/teleinfo-npm';
import { median } from './support/rounds';

const CHUNK = 4096;
const ROUNDS = 5;

function repeatTo(bytes: Buffer, targetBytes: number): { stream: Buffer; frames: number } {
  const perCopy = new TicStreamDecoder().push(bytes).frames.length;
  const copies = Math.ceil(targetBytes / bytes.length);
  return { stream: Buffer.concat(Array.from({ length: copies }, () => bytes)), frames: perCopy * copies };
}

function chunks(stream: Buffer): Buffer[] {
  const out: Buffer[] = [];
  for (let i = 0; i < stream.length; i += CHUNK) out.push(stream.subarray(i, i + CHUNK));
  return out;
}

type Runner = (pieces: Buffer[]) => number;

const runners: Record<string, Runner> = {
  'ours: TicStreamDecoder (frames)': (pieces) => {
    const d = new TicStreamDecoder();
    let n = 0;
    for (const p of pieces) n += d.push(p).frames.length;
    return n;
  },
  'ours: decoder + normalized reading': (pieces) => {
    const d = new TicStreamDecoder();
    const now = new Date();
    let n = 0;
    for (const p of pieces) {
      for (const f of d.push(p).frames) {
        readingFromTicFrame(f, now);
        n++;
      }
    }
    return n;
  },
  'alternative: npm teleinfo 0.1.0 algorithm (faithful port)': (pieces) => {
    const d = new TeleinfoNpmDecoder();
    for (const p of pieces) d.push(p);
    return d.frames;
  },
};

function bench(name: string, capture: Buffer): void {
  const { stream, frames } = repeatTo(capture, 4 * 1024 * 1024);
  const pieces = chunks(stream);
  const times: Record<string, number[]> = {};
  const counts: Record<string, number> = {};
  for (const r of Object.keys(runners)) runners[r]?.(pieces.slice(0, 64)); // warm-up
  for (let round = 0; round < ROUNDS; round++) {
    for (const [label, run] of Object.entries(runners)) {
      const t0 = process.hrtime.bigint();
      counts[label] = run(pieces);
      (times[label] ??= []).push(Number(process.hrtime.bigint() - t0) / 1e9);
    }
  }
  console.log(
    `\n${name}: ${(stream.length / 1e6).toFixed(1)} MB, ${frames} frames, ${CHUNK}-byte chunks, median of ${ROUNDS}`,
  );
  const oursRate = frames / median(times['ours: TicStreamDecoder (frames)'] ?? []);
  for (const label of Object.keys(runners)) {
    const t = median(times[label] ?? []);
    const decoded = counts[label] ?? 0;
    const rate = decoded / t;
    const ratio =
      label.startsWith('alternative') && decoded > 0 ? `  (ours is ${(oursRate / rate).toFixed(2)}x)` : '';
    console.log(
      `  ${label.padEnd(58)} ${decoded === 0 ? 'decodes no frame of this mode' : `${Math.round(rate).toLocaleString('en-US').padStart(10)} frames/s ${(stream.length / t / 1e6).toFixed(1).padStart(7)} MB/s`}${ratio}`,
    );
  }
}

console.log(`bench:parse on Node ${process.version}, one core (single thread)`);
bench(
  'historic (pyteleinfo_captured_frames.bin, Linky Tempo, 16 groups/frame)',
  fixture('tic', 'pyteleinfo_captured_frames.bin'),
);
bench(
  'standard (goteleinfo_reader_test_standard.bin, Linky mono, 38 groups/frame)',
  fixture('tic', 'goteleinfo_reader_test_standard.bin'),
);
