import fs from 'node:fs';
import path from 'node:path';

/** Repository root, from dist/test/support or test/support alike. */
export const ROOT = (() => {
  let dir = __dirname;
  while (!fs.existsSync(path.join(dir, 'package.json'))) dir = path.dirname(dir);
  return dir;
})();

export const FIXTURES = path.join(ROOT, 'test', 'fixtures');

export function fixture(...parts: string[]): Buffer {
  return fs.readFileSync(path.join(FIXTURES, ...parts));
}

/**
 * Text captures keep one group per line, with STX/ETX/CR stripped and a blank line where a frame ended.
 * Rebuild the TIC bytes: LF group CR per line, ETX STX at each blank line. A capture that starts mid-frame
 * gets no leading STX, so its partial first frame is dropped as a reader would drop it.
 */
export function textCapture(file: string, startsMidFrame: boolean): Buffer {
  const lines = fixture('tic', file).toString('latin1').replace(/\n+$/, '').split('\n');
  const body = lines.map((l) => (l === '' ? '\x03\x02' : `\n${l}\r`)).join('');
  return Buffer.from(`${startsMidFrame ? '' : '\x02'}${body}\x03`, 'latin1');
}

/** Every TIC capture, as the bytes a serial port would deliver, with what SOURCES.md says of it. */
export interface Capture {
  readonly file: string;
  readonly bytes: Buffer;
  readonly mode: 'historic' | 'standard';
  /** Groups the checksum must reject (named in SOURCES.md). */
  readonly badGroups: string[];
}

export function captures(): Capture[] {
  const bin = (file: string) => fixture('tic', file);
  return [
    {
      file: 'pyteleinfo_captured_frames.bin',
      bytes: bin('pyteleinfo_captured_frames.bin'),
      mode: 'historic',
      badGroups: [],
    },
    {
      file: 'pyteleinfo_captured_frames_txt_decoded.bin',
      bytes: bin('pyteleinfo_captured_frames_txt_decoded.bin'),
      mode: 'historic',
      badGroups: [],
    },
    {
      file: 'unresolved_go_testcases_historic_tri_hc_adir.bin',
      bytes: bin('unresolved_go_testcases_historic_tri_hc_adir.bin'),
      mode: 'historic',
      badGroups: [],
    },
    {
      file: 'goteleinfo_reader_test_standard.bin',
      bytes: bin('goteleinfo_reader_test_standard.bin'),
      mode: 'standard',
      badGroups: [],
    },
    {
      file: 'openhab_cbetm-base-option-1.txt',
      bytes: textCapture('openhab_cbetm-base-option-1.txt', true),
      mode: 'historic',
      badGroups: [],
    },
    {
      file: 'openhab_cbetm-ejp-option-1.txt',
      bytes: textCapture('openhab_cbetm-ejp-option-1.txt', true),
      mode: 'historic',
      badGroups: [],
    },
    {
      file: 'unresolved_arduino_comment_historic_hc_adps.txt',
      bytes: textCapture('unresolved_arduino_comment_historic_hc_adps.txt', false),
      mode: 'historic',
      badGroups: [],
    },
    // Truncated first group: the capture started mid-group.
    {
      file: 'openhab_linky-tic-mode-standard-single-phase-prod.txt',
      bytes: textCapture('openhab_linky-tic-mode-standard-single-phase-prod.txt', true),
      mode: 'standard',
      badGroups: ['EP*PREF\\t03\\tB'],
    },
    {
      file: 'openhab_linky-tic-mode-standard-three-phase-prod.txt',
      bytes: textCapture('openhab_linky-tic-mode-standard-three-phase-prod.txt', true),
      mode: 'standard',
      badGroups: ['774332\\tX'],
    },
    // ADSC anonymised by the reporter without recomputing its checksum.
    {
      file: 'issue_teleinfo2mqtt_29_standard_mono_excerpt.txt',
      bytes: textCapture('issue_teleinfo2mqtt_29_standard_mono_excerpt.txt', false),
      mode: 'standard',
      badGroups: ['ADSC\\t0XXXXXXXXXX\\tJ'],
    },
    // The corrupted reception from the bug report (a byte dropped).
    {
      file: 'issue_esphome_4690_standard_tri_excerpt.txt',
      bytes: textCapture('issue_esphome_4690_standard_tri_excerpt.txt', false),
      mode: 'standard',
      badGroups: ['EASD02\\t00134230\\t%'],
    },
  ];
}
