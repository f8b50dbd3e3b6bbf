import type { Reading } from '../reading';
import { HISTORIC_LABELS, STANDARD_LABELS } from '../tic/labels';

/**
 * A reading as one InfluxDB line-protocol point, timestamped in ms with the reading's own time so that a
 * replay overwrites the same point. Schema (README "InfluxDB schema"):
 *   measurement (default `teleinfo`)
 *   tags   meter, source, tariff_option, tariff_period
 *   fields every numeric label (integers as `i`), apparent_power, energy_total, phases, overrun,
 *          and the strings a user needs: PTEC, LTARF, STGE
 */

const STRING_FIELDS = new Set(['PTEC', 'LTARF', 'STGE', 'OPTARIF', 'NGTF']);

/** A line is one record (of InfluxDB and of our spool): CR and LF cannot be carried and become spaces. */
const NEWLINES = /[\r\n]/g;
// Most names and values need no escaping: checking once is much cheaper than three replaces.
const MEASUREMENT_SPECIAL = /[\\, \r\n]/;
const KEY_SPECIAL = /[\\,= \r\n]/;
const STRING_SPECIAL = /[\\"\r\n]/;

/**
 * InfluxDB 1.x keeps a backslash in names and tag values as it is (an escaped one is stored twice), and a backslash
 * just before an escaped character or at the end cannot be stored at all (checked against influxd 1.6):
 * backslashes go through raw, and that one case becomes a slash.
 */
/** Escape `special` characters with a backslash, after the two unstorable cases above. */
function escapeName(s: string, test: RegExp, backslashBefore: RegExp, special: RegExp): string {
  if (!test.test(s)) return s;
  return s
    .replace(NEWLINES, ' ')
    .replace(backslashBefore, '/')
    .replace(special, (c) => `\\${c}`);
}

const MEASUREMENT_BACKSLASH = /\\(?=[, ]|$)/g;
const MEASUREMENT_ESCAPED = /[, ]/g;
const KEY_BACKSLASH = /\\(?=[,= ]|$)/g;
const KEY_ESCAPED = /[,= ]/g;

export function escapeMeasurement(s: string): string {
  return escapeName(s, MEASUREMENT_SPECIAL, MEASUREMENT_BACKSLASH, MEASUREMENT_ESCAPED);
}

/** Tag keys, tag values and field keys: comma, equals and space are escaped; see above for backslashes. */
export function escapeKey(s: string): string {
  return escapeName(s, KEY_SPECIAL, KEY_BACKSLASH, KEY_ESCAPED);
}

export function escapeStringField(s: string): string {
  if (!STRING_SPECIAL.test(s)) return `"${s}"`;
  return `"${s.replace(NEWLINES, ' ').replace(/[\\"]/g, (c) => `\\${c}`)}"`;
}

/** How a label is written as a field: its escaped key (after a comma, and first with none) and whether its numbers
 * are integers. Labels repeat, so this is worked out once per label (bounded: odd labels from odd input are not
 * remembered forever). */
interface FieldKey {
  readonly first: string;
  readonly next: string;
  readonly integer: boolean;
  readonly text: boolean;
}
const fieldKeys = new Map<string, FieldKey>();

function fieldKey(label: string): FieldKey {
  let k = fieldKeys.get(label);
  if (k === undefined) {
    const key = escapeKey(label);
    k = {
      first: `${key}=`,
      next: `,${key}=`,
      integer: (HISTORIC_LABELS[label] ?? STANDARD_LABELS[label])?.kind === 'int',
      text: STRING_FIELDS.has(label),
    };
    if (fieldKeys.size < 4096) fieldKeys.set(label, k);
  }
  return k;
}

/** Throws for a value that does not fit its label's type (an input error of that reading). */
export function readingToLine(reading: Reading, measurement = 'teleinfo'): string {
  let line = `${escapeMeasurement(measurement)},meter=${escapeKey(reading.meter)},source=${reading.source}`;
  if (reading.tariffOption) line += `,tariff_option=${escapeKey(reading.tariffOption)}`;
  if (reading.tariffPeriod) line += `,tariff_period=${escapeKey(reading.tariffPeriod)}`;
  line += ' ';
  // The line is built by appending only (no slicing), so that it is copied once, when the spool writes it.
  let first = true;
  const values = reading.values;
  for (const label in values) {
    const value = values[label];
    if (typeof value === 'number') {
      if (!Number.isFinite(value)) continue;
      const k = fieldKey(label);
      // A field's type is the label's, never the value's: one float in an integer field is a type conflict
      // that would cost InfluxDB the whole batch.
      if (k.integer && !Number.isSafeInteger(value))
        throw new Error(
          `${label} is an integer label, got ${value} (meter ${reading.meter} at ${reading.time})`,
        );
      line += first ? k.first : k.next;
      line += k.integer ? `${value}i` : value;
      first = false;
    } else {
      const k = fieldKey(label);
      if (!k.text) continue;
      line += first ? k.first : k.next;
      line += escapeStringField(value.trim());
      first = false;
    }
  }
  if (!first) line += ',';
  if (reading.apparentPower !== null) line += `apparent_power=${Math.round(reading.apparentPower)}i,`;
  if (reading.energyTotal !== null) line += `energy_total=${Math.round(reading.energyTotal)}i,`;
  return `${line}phases=${reading.phases}i,overrun=${reading.overrun} ${Date.parse(reading.time)}`;
}
