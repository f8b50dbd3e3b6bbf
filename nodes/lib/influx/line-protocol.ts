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

/** The labels of a water or gas counter's readings (lib/reading.ts counterReading): floats. */
const COUNTER_FIELDS = new Set(['index', 'day', 'flow']);
const SOURCES = new Set(['tic-historic', 'tic-standard', 'ecodevices']);

/** How a label is written as a field: its escaped key (after a comma, and first with none) and its type. Labels
 * repeat, so this is worked out once per label (bounded: odd labels from odd input are not remembered forever). */
interface FieldKey {
  readonly first: string;
  readonly next: string;
  /** From the label table: an integer label, a text label written as a string field, any other text label. */
  readonly kind: 'int' | 'string' | 'text' | 'unknown';
}
const fieldKeys = new Map<string, FieldKey>();

function fieldKey(label: string): FieldKey {
  let k = fieldKeys.get(label);
  if (k === undefined) {
    const key = escapeKey(label);
    const spec = Object.hasOwn(HISTORIC_LABELS, label)
      ? HISTORIC_LABELS[label]
      : Object.hasOwn(STANDARD_LABELS, label)
        ? STANDARD_LABELS[label]
        : undefined;
    k = {
      first: `${key}=`,
      next: `,${key}=`,
      kind: spec?.kind === 'int' ? 'int' : STRING_FIELDS.has(label) ? 'string' : spec ? 'text' : 'unknown',
    };
    if (fieldKeys.size < 4096) fieldKeys.set(label, k);
  }
  return k;
}

/**
 * Throws for a reading InfluxDB would refuse or that would change the schema (an input error of that reading): a
 * value that does not fit its label's type, a field of the reading that is not of its type.
 */
export function readingToLine(reading: Reading, measurement = 'teleinfo'): string {
  const time = Date.parse(reading.time);
  if (!Number.isFinite(time)) refuse(reading, 'a reading without a valid time');
  if (!SOURCES.has(reading.source)) refuse(reading, 'a reading of no known source');
  if (reading.phases !== 1 && reading.phases !== 3) refuse(reading, 'phases is 1 or 3');
  if (typeof reading.overrun !== 'boolean') refuse(reading, 'overrun is true or false');
  let line = `${escapeMeasurement(measurement)},meter=${escapeKey(reading.meter)},source=${reading.source}`;
  if (reading.tariffOption) line += `,tariff_option=${escapeKey(reading.tariffOption)}`;
  if (reading.tariffPeriod) line += `,tariff_period=${escapeKey(reading.tariffPeriod)}`;
  line += ' ';
  // The line is built by appending only (no slicing), so that it is copied once, when the spool writes it.
  let first = true;
  const values = reading.values;
  const counter = reading.counter !== undefined;
  for (const label in values) {
    const value = values[label];
    const k = fieldKey(label);
    if (typeof value === 'number') {
      if (!Number.isFinite(value)) continue;
      // A field's type is the label's, never the value's: one float in an integer field, or a number in a text
      // field, is a type conflict that would cost InfluxDB the whole batch.
      if (k.kind === 'int') {
        if (!Number.isSafeInteger(value)) refuse(reading, `${label} is an integer label, got ${value}`);
        line += first ? k.first : k.next;
        line += `${value}i`;
      } else if (k.kind === 'unknown' && counter && COUNTER_FIELDS.has(label)) {
        line += first ? k.first : k.next;
        line += value;
      } else if (k.kind === 'unknown') continue;
      else refuse(reading, `${label} is a text label, got a number`);
      first = false;
    } else if (k.kind === 'string' && typeof value === 'string') {
      line += first ? k.first : k.next;
      line += escapeStringField(value.trim());
      first = false;
    } else if (k.kind === 'int') refuse(reading, `${label} is an integer label, got text`);
  }
  if (!first) line += ',';
  if (reading.apparentPower !== null)
    line += `apparent_power=${whole(reading, 'apparent_power', reading.apparentPower)}i,`;
  if (reading.energyTotal !== null)
    line += `energy_total=${whole(reading, 'energy_total', reading.energyTotal)}i,`;
  // A water or gas counter has no phases and no power to overrun: its fields are its own.
  if (counter) {
    if (first) refuse(reading, 'a counter reading without its index, day or flow');
    return `${line.slice(0, -1)} ${time}`;
  }
  return `${line}phases=${reading.phases}i,overrun=${reading.overrun} ${time}`;
}

function refuse(reading: Reading, what: string): never {
  throw new Error(`${what} (meter ${String(reading.meter).slice(0, 64)})`);
}

/** A derived number field, rounded to an integer; a reading whose field is not a number is refused. */
function whole(reading: Reading, field: string, value: unknown): number {
  if (typeof value !== 'number' || !Number.isFinite(value)) refuse(reading, `${field} is a number`);
  return Math.round(value);
}
