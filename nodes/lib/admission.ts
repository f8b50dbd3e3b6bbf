import { isStreamId, parseSeqList, SEQ_PROPERTY, STREAM_PROPERTY } from './acknowledgement';
import { counterReading, readingFromValues, type Reading, type ReadingSource } from './reading';
import { HISTORIC_LABELS, STANDARD_LABELS, type LabelSpec } from './tic/labels';

/**
 * What a server admits from a Pi it does not trust: a message on the Pi's own topic `teleinfo/<pi>/<meter>/reading`,
 * size-checked before it is parsed, whose readings are for that meter, which belongs to that Pi; each reading's
 * labels are the label table's, with its types and lengths; its time is within a window of the server's clock.
 * Only the labels are taken from the Pi: everything derived from them (tariff, power, energy, phases, overrun...)
 * is computed again here, so a reading that is admitted is one our own decoders could have made.
 */

export interface AdmissionLimits {
  /** Bytes of one message, checked before it is parsed. */
  readonly maxMessageBytes: number;
  /** Readings in one message (a Pi's spool sends up to its `perMessage` together). */
  readonly maxReadingsPerMessage: number;
  /** How old a reading may be (a Pi's backlog after an outage), and how far ahead of the server's clock. */
  readonly pastMs: number;
  readonly futureMs: number;
  /** Meters one Pi may have: the first ones seen are bound to it. */
  readonly metersPerPi: number;
  /** Pis the server keeps bindings for. */
  readonly maxPis: number;
}

export const DEFAULT_LIMITS: AdmissionLimits = {
  maxMessageBytes: 1024 * 1024,
  maxReadingsPerMessage: 1000,
  pastMs: 90 * 86_400_000,
  futureMs: 3_600_000,
  metersPerPi: 16,
  maxPis: 100_000,
};

/** Why a message or a reading was refused: the counters' keys. */
export type RefusalReason =
  | 'oversize'
  | 'malformed'
  | 'topic'
  | 'shape'
  | 'meter'
  | 'label'
  | 'time'
  | 'foreign-meter'
  | 'meter-quota'
  | 'pi-quota';

export const REFUSAL_REASONS: readonly RefusalReason[] = [
  'oversize',
  'malformed',
  'topic',
  'shape',
  'meter',
  'label',
  'time',
  'foreign-meter',
  'meter-quota',
  'pi-quota',
];

export interface Refusal {
  readonly reason: RefusalReason;
  /** Said in our words: nothing of the payload but validated ids and label names. */
  readonly detail: string;
}

export interface AdmissionOutcome {
  /** The Pi the topic names, when it is an id. */
  readonly pi: string | null;
  readonly readings: Reading[];
  readonly refusals: Refusal[];
  /** Labels the table does not know, left out of the readings admitted. */
  readonly unknownLabels: number;
  /**
   * A message whose Pi numbers its readings: its stream, each admitted reading's number (as `readings`), and the
   * numbers of those refused, settled for good (the Pi would send them again in vain).
   */
  readonly numbered?: { readonly stream: string; readonly seqs: number[]; readonly settled: number[] };
}

/** The numbering a message of readings carries (its MQTT 5 user properties), as the broker delivered them. */
export function numberingOf(userProperties: unknown): { stream: unknown; seq: unknown } | null {
  if (typeof userProperties !== 'object' || userProperties === null) return null;
  const props = userProperties as Record<string, unknown>;
  if (props[STREAM_PROPERTY] === undefined && props[SEQ_PROPERTY] === undefined) return null;
  return { stream: props[STREAM_PROPERTY], seq: props[SEQ_PROPERTY] };
}

/** Pi and meter ids: what our topics and tags can carry as they are. */
const ID = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/;
const ISO_TIME = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,3})?Z$/;
/** A TIC data field: printable ASCII, as the meter sends it; the longest are PJOURF+1 and PPOINTE (98). */
const TEXT = /^[\x20-\x7e]{0,98}$/;
const HEX_WORD = /^[0-9A-Fa-f]{8}$/;
const MAX_LABELS = 128;
const COUNTER_LABELS = new Set(['index', 'day', 'flow']);
/**
 * Tariff tags (option and period together) one meter may have: each is a series in InfluxDB, and a Pi could otherwise
 * make one per reading of its own meters. A real meter has a few (Tempo: six periods, one option).
 */
const MAX_TARIFF_TAGS = 32;

/** Whether a topic has a reading topic's levels, whatever its ids: a retained one there is to be cleared. */
export function isReadingTopicShape(topic: string): boolean {
  const parts = topic.split('/');
  return parts.length === 4 && parts[0] === 'teleinfo' && parts[3] === 'reading' && !/[+#]/.test(topic);
}

/** The message's topic as the Pi and meter it names, or null. */
export function readingTopic(topic: string): { pi: string; meter: string } | null {
  const parts = topic.split('/');
  if (parts.length !== 4 || parts[0] !== 'teleinfo' || parts[3] !== 'reading') return null;
  const [, pi, meter] = parts as [string, string, string, string];
  return ID.test(pi) && ID.test(meter) ? { pi, meter } : null;
}

class Refused extends Error {
  constructor(
    readonly reason: RefusalReason,
    detail: string,
  ) {
    super(detail);
  }
}

const isPlainObject = (v: unknown): v is Record<string, unknown> =>
  typeof v === 'object' && v !== null && !Array.isArray(v);

/** One label's value against the table: the value as admitted, or a refusal. */
function labelValue(label: string, spec: LabelSpec, value: unknown): number | string {
  if (spec.kind === 'int') {
    if (typeof value === 'number' && Number.isSafeInteger(value) && value >= 0) return value;
    throw new Refused('label', `${label} is a non-negative integer label`);
  }
  if (typeof value === 'string' && (spec.kind === 'hex' ? HEX_WORD : TEXT).test(value)) return value;
  throw new Refused(
    'label',
    `${label} is a ${spec.kind === 'hex' ? 'hexadecimal word' : 'short text'} label`,
  );
}

/**
 * One reading from a Pi, as it may be admitted: its own fields checked, its labels against the table of its source,
 * the rest derived again. Throws a Refused.
 */
function admitReading(
  raw: unknown,
  meter: string,
  now: number,
  limits: AdmissionLimits,
  unknown: { n: number },
): Reading {
  if (!isPlainObject(raw)) throw new Refused('shape', 'a reading is a JSON object');
  if (raw.meter !== meter)
    throw new Refused('meter', `a reading on the topic of meter ${meter} is for another meter`);
  const source = raw.source as ReadingSource;
  if (source !== 'tic-historic' && source !== 'tic-standard' && source !== 'ecodevices')
    throw new Refused('shape', 'unknown source');
  const time = raw.time;
  if (typeof time !== 'string' || !ISO_TIME.test(time) || Number.isNaN(Date.parse(time)))
    throw new Refused('shape', 'time is not an ISO 8601 instant in UTC');
  const at = Date.parse(time);
  if (at < now - limits.pastMs || at > now + limits.futureMs)
    throw new Refused('time', `time ${time} is outside the window the server admits`);
  if (!isPlainObject(raw.values)) throw new Refused('shape', 'values is not an object');
  const entries = Object.entries(raw.values);
  if (entries.length > MAX_LABELS) throw new Refused('label', `more than ${MAX_LABELS} labels`);

  if (raw.counter !== undefined) {
    const counter = raw.counter as { input?: unknown; name?: unknown };
    if (
      source !== 'ecodevices' ||
      !isPlainObject(counter) ||
      (counter.input !== 'C1' && counter.input !== 'C2') ||
      typeof counter.name !== 'string' ||
      !ID.test(counter.name)
    )
      throw new Refused('shape', 'a counter is C1 or C2 of an Eco-Devices box, with a name that is an id');
    const values: Record<string, number> = {};
    for (const [label, value] of entries) {
      if (!COUNTER_LABELS.has(label)) {
        unknown.n++;
        continue;
      }
      if (typeof value !== 'number' || !Number.isFinite(value))
        throw new Refused('label', `${label} of a counter is a number`);
      values[label] = value;
    }
    if (Object.keys(values).length === 0)
      throw new Refused('label', 'a counter reading without index, day or flow');
    return counterReading(meter, time, { input: counter.input, name: counter.name }, values);
  }

  const table = source === 'tic-standard' ? STANDARD_LABELS : HISTORIC_LABELS;
  const values: Record<string, number | string> = {};
  for (const [label, value] of entries) {
    const spec = Object.hasOwn(table, label) ? table[label] : undefined;
    if (!spec) {
      unknown.n++;
      continue;
    }
    values[label] = labelValue(label, spec, value);
  }
  const reading = readingFromValues(meter, source, time, values);
  if (source === 'tic-standard') {
    if (raw.horodates !== undefined) {
      if (!isPlainObject(raw.horodates)) throw new Refused('shape', 'horodates is not an object');
      const horodates: Record<string, string> = {};
      for (const [label, instant] of Object.entries(raw.horodates)) {
        if (!STANDARD_LABELS[label]?.horodate || label === 'DATE')
          throw new Refused('label', `${label} has no horodate`);
        if (typeof instant !== 'string' || !ISO_TIME.test(instant) || Number.isNaN(Date.parse(instant)))
          throw new Refused('label', `the horodate of ${label} is not an ISO 8601 instant in UTC`);
        horodates[label] = instant;
      }
      if (Object.keys(horodates).length > 0) reading.horodates = horodates;
    }
    if (raw.clockDegraded === true) reading.clockDegraded = true;
  }
  return reading;
}

/**
 * Which meters belong to which Pi: declared, or bound to the first Pi seen with them and kept. Bounded: meters per
 * Pi and Pis.
 */
export class MeterBindings {
  private readonly owner = new Map<string, string>();
  private readonly meters = new Map<string, Set<string>>();
  private readonly declared: ReadonlySet<string>;
  /** Set when a binding was made since the last save. */
  changed = false;

  constructor(
    private readonly limits: Pick<AdmissionLimits, 'metersPerPi' | 'maxPis'>,
    declared: Readonly<Record<string, readonly string[]>> = {},
    saved: Readonly<Record<string, readonly string[]>> = {},
  ) {
    for (const [pi, meters] of Object.entries(declared)) for (const meter of meters) this.bind(pi, meter);
    this.declared = new Set(Object.keys(declared));
    for (const [pi, meters] of Object.entries(saved))
      if (ID.test(pi) && !this.declared.has(pi) && Array.isArray(meters))
        for (const meter of meters.slice(0, limits.metersPerPi))
          if (typeof meter === 'string' && ID.test(meter) && !this.owner.has(meter)) this.bind(pi, meter);
    this.changed = false;
  }

  private bind(pi: string, meter: string): void {
    this.owner.set(meter, pi);
    let set = this.meters.get(pi);
    if (!set) this.meters.set(pi, (set = new Set()));
    set.add(meter);
    this.changed = true;
  }

  /** Whether `pi` may send readings of `meter`: bound to it now if it is new and the Pi has room. */
  check(pi: string, meter: string): RefusalReason | null {
    const owner = this.owner.get(meter);
    if (owner !== undefined) return owner === pi ? null : 'foreign-meter';
    if (this.declared.has(pi)) return 'meter-quota';
    const set = this.meters.get(pi);
    if (!set && this.meters.size >= this.limits.maxPis) return 'pi-quota';
    if (set && set.size >= this.limits.metersPerPi) return 'meter-quota';
    this.bind(pi, meter);
    return null;
  }

  get pis(): number {
    return this.meters.size;
  }

  /** What to save, to bind the same way after a restart (declared Pis are not saved: the configuration has them). */
  toJSON(): Record<string, string[]> {
    const out: Record<string, string[]> = {};
    for (const [pi, set] of this.meters) if (!this.declared.has(pi)) out[pi] = [...set];
    return out;
  }
}

/** Declared bindings as a user writes them: one Pi per line, `pi-id: meter meter ...`. */
export function parseDeclaredMeters(text: string): Record<string, string[]> {
  const out: Record<string, string[]> = {};
  for (const [n, line] of text.split('\n').entries()) {
    const trimmed = line.trim();
    if (trimmed === '' || trimmed.startsWith('#')) continue;
    const m = /^([^:\s]+)\s*:\s*(.*)$/.exec(trimmed);
    const meters = m ? m[2].split(/[\s,]+/).filter(Boolean) : [];
    if (!m || !ID.test(m[1]) || !meters.every((meter) => ID.test(meter)))
      throw new Error(`line ${n + 1}: "pi-id: meter meter ..." with ids of letters, digits, . _ -`);
    out[m[1]] = [...(out[m[1]] ?? []), ...meters];
  }
  return out;
}

/** The admission of a server: limits, bindings and counters. */
export class Admission {
  /** Readings admitted and refused by reason, labels left out, retained readings cleared (counted by the node). */
  readonly counters: Record<RefusalReason | 'accepted' | 'unknownLabels' | 'retained', number> = {
    accepted: 0,
    unknownLabels: 0,
    retained: 0,
    ...(Object.fromEntries(REFUSAL_REASONS.map((r) => [r, 0])) as Record<RefusalReason, number>),
  };

  /** Each bound meter's tariff tags seen since the start (bounded: bound meters, MAX_TARIFF_TAGS each). */
  private readonly tariffTags = new Map<string, Set<string>>();

  constructor(
    readonly limits: AdmissionLimits,
    readonly bindings: MeterBindings,
  ) {}

  /** Whether a reading's tariff tags are ones its meter has, or it has room for them. */
  private knownTariff(reading: Reading): boolean {
    const key = `${reading.tariffOption ?? ''}\n${reading.tariffPeriod ?? ''}`;
    let tags = this.tariffTags.get(reading.meter);
    if (!tags) this.tariffTags.set(reading.meter, (tags = new Set()));
    if (tags.has(key)) return true;
    if (tags.size >= MAX_TARIFF_TAGS) return false;
    tags.add(key);
    return true;
  }

  /**
   * One MQTT message from a Pi: its topic and its payload as the broker delivered it (text or bytes), and the
   * numbering of its readings if its Pi sends one (`numberingOf` its user properties).
   */
  admit(
    topic: string,
    payload: unknown,
    now: number,
    numbering: { stream: unknown; seq: unknown } | null = null,
  ): AdmissionOutcome {
    const refusals: Refusal[] = [];
    // A numbering that does not parse is refused with its message: nothing in it can be acknowledged.
    let stream: string | null = null;
    let numbers: number[] | null = null;
    let numberingError: string | null = null;
    if (numbering) {
      const seqs = parseSeqList(numbering.seq, this.limits.maxReadingsPerMessage);
      if (!isStreamId(numbering.stream)) numberingError = 'a stream id is 8 to 32 letters and digits';
      else if (typeof seqs === 'string') numberingError = seqs;
      else [stream, numbers] = [numbering.stream, seqs];
    }
    const settleAll = () => (numbers ? { stream: stream!, seqs: [], settled: numbers } : undefined);
    const refuse = (reason: RefusalReason, detail: string, pi: string | null = null): AdmissionOutcome => {
      this.counters[reason]++;
      return { pi, readings: [], refusals: [{ reason, detail }], unknownLabels: 0, numbered: settleAll() };
    };
    const place = readingTopic(typeof topic === 'string' ? topic : '');
    if (!place) return refuse('topic', 'not a reading topic teleinfo/<pi>/<meter>/reading with ids');
    const { pi, meter } = place;
    if (numberingError) return refuse('shape', `${pi}: its reading numbers: ${numberingError}`, pi);
    const bytes =
      typeof payload === 'string'
        ? Buffer.byteLength(payload)
        : payload instanceof Uint8Array
          ? payload.length
          : -1;
    if (bytes < 0) return refuse('shape', `${pi}: a reading arrives as JSON text`, pi);
    if (bytes > this.limits.maxMessageBytes)
      return refuse(
        'oversize',
        `${pi}: a message of ${bytes} bytes (at most ${this.limits.maxMessageBytes})`,
        pi,
      );
    let value: unknown;
    try {
      value = JSON.parse(
        typeof payload === 'string' ? payload : Buffer.from(payload as Uint8Array).toString('utf8'),
      );
    } catch {
      return refuse('malformed', `${pi}: malformed JSON`, pi);
    }
    const items = Array.isArray(value) ? value : [value];
    if (items.length === 0 || items.length > this.limits.maxReadingsPerMessage)
      return refuse('shape', `${pi}: ${items.length} readings in one message`, pi);
    if (numbers && numbers.length !== items.length)
      return refuse('shape', `${pi}: ${numbers.length} reading numbers for ${items.length} readings`, pi);
    const readings: Reading[] = [];
    /** The admitted readings' places in the message. */
    const places: number[] = [];
    const unknown = { n: 0 };
    for (const [i, item] of items.entries()) {
      try {
        readings.push(admitReading(item, meter, now, this.limits, unknown));
        places.push(i);
      } catch (e) {
        if (!(e instanceof Refused)) throw e;
        this.counters[e.reason]++;
        refusals.push({ reason: e.reason, detail: `${pi}, meter ${meter}: ${e.message}` });
      }
    }
    // Bound only by a reading worth storing: junk does not take a Pi's room for meters.
    const binding = readings.length > 0 ? this.bindings.check(pi, meter) : null;
    if (binding) {
      this.counters[binding] += readings.length;
      const why =
        binding === 'foreign-meter'
          ? `meter ${meter} belongs to another Pi`
          : binding === 'meter-quota'
            ? `no room for meter ${meter} (at most ${this.limits.metersPerPi} meters a Pi, or its declared ones)`
            : `no room for another Pi (at most ${this.limits.maxPis})`;
      refusals.push({ reason: binding, detail: `${pi}: ${why}` });
      return { pi, readings: [], refusals, unknownLabels: 0, numbered: settleAll() };
    }
    const known = readings.map((r) => this.knownTariff(r));
    const admitted = readings.filter((_, i) => known[i]);
    if (admitted.length < readings.length) {
      const n = readings.length - admitted.length;
      this.counters.label += n;
      refusals.push({
        reason: 'label',
        detail: `${pi}, meter ${meter}: ${n} readings with a tariff beyond the ${MAX_TARIFF_TAGS} this meter may have`,
      });
      readings.length = 0;
      readings.push(...admitted);
      const kept = places.filter((_, i) => known[i]);
      places.length = 0;
      places.push(...kept);
    }
    this.counters.accepted += readings.length;
    this.counters.unknownLabels += unknown.n;
    let numbered: AdmissionOutcome['numbered'];
    if (numbers) {
      const seqs = places.map((i) => numbers[i]);
      const taken = new Set(places);
      numbered = { stream: stream!, seqs, settled: numbers.filter((_, i) => !taken.has(i)) };
    }
    return { pi, readings, refusals, unknownLabels: unknown.n, numbered };
  }
}
