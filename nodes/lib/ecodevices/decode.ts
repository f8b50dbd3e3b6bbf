import { counterReading, historicReading, type Reading } from '../reading';
import { decodeDemain, decodeOptarif, decodePtec, ticPtec } from '../tic/enums';
import { HISTORIC_INDEX_LABELS, HISTORIC_LABELS } from '../tic/labels';

/**
 * Decoders for what a GCE Eco-Devices (v1) box answers: JSON `/api/xdevices.json?cmd=10|20` and the flat
 * XML pages `status.xml`, `protect/settings/teleinfo1.xml`, `teleinfo2.xml`. Every form is first flattened
 * into one key → value record, then decoded by one function, so a poll that merges several pages decodes
 * the same way as a single page.
 */

export type EcoDevicesRecord = Record<string, string | number>;

export interface PulseCounter {
  readonly input: 'C1' | 'C2';
  /** Total, in the box's configured unit. */
  readonly index: number | null;
  /** Today's consumption. */
  readonly day: number | null;
  /** Instantaneous flow (status.xml `meter2`/`meter3`). */
  readonly flow: number | null;
}

export interface EcoDevicesSnapshot {
  /** One reading per Téléinfo input with a meter connected. */
  readonly readings: Reading[];
  /** The pulse counters the payload mentions. */
  readonly counters: PulseCounter[];
}

export interface EcoDevicesContext {
  /** Stable id of the box (host name), used for the meter id when the payload has no ADCO. */
  readonly device: string;
  /** Instant of the response. */
  readonly time: Date;
}

export class EcoDevicesFormatError extends Error {}

const XML_ELEMENT = /<([A-Za-z_][\w.-]*)>([^<]*)<\/\1\s*>/g;
const ENTITIES: Record<string, string> = { amp: '&', lt: '<', gt: '>', quot: '"', apos: "'" };

/**
 * The box's XML is flat and sometimes not well-formed (junk such as a newline inside `T1_DEMAIN`,
 * ISO-8859-1 bytes), so it is read element by element instead of through a strict parser.
 */
export function parseEcoDevicesXml(xml: string | Uint8Array): EcoDevicesRecord {
  const text = typeof xml === 'string' ? xml : Buffer.from(xml).toString('latin1');
  const record: EcoDevicesRecord = {};
  let found = 0;
  for (const m of text.matchAll(XML_ELEMENT)) {
    const [, name, raw] = m as unknown as [string, string, string];
    record[name] = raw.replace(/&(amp|lt|gt|quot|apos);/g, (_, e: string) => ENTITIES[e] ?? '');
    found++;
  }
  if (found === 0) throw new EcoDevicesFormatError(`not an Eco-Devices XML page: "${text.slice(0, 60)}"`);
  return record;
}

/** Accept the JSON of `cmd=10` / `cmd=20` as an object; check it is really the box's. */
export function jsonRecord(json: unknown): EcoDevicesRecord {
  if (typeof json !== 'object' || json === null || Array.isArray(json)) {
    throw new EcoDevicesFormatError('Eco-Devices JSON must be an object');
  }
  const obj = json as Record<string, unknown>;
  const known = obj.product === 'Eco-devices' || 'Day_C1' in obj || 'Day_C2' in obj;
  if (!known) throw new EcoDevicesFormatError('not an Eco-Devices JSON answer (no "product":"Eco-devices")');
  const record: EcoDevicesRecord = {};
  for (const [k, v] of Object.entries(obj)) if (typeof v === 'string' || typeof v === 'number') record[k] = v;
  return record;
}

const XML_START = /^\s*(<\?xml|<response|<!--|<T[12]_)/;

/** Runs on every TIC chunk, so it looks at the first non-blank byte before decoding anything. */
function startsWithXml(bytes: Uint8Array): boolean {
  let i = 0;
  const blank = (b: number | undefined) => b === 0x20 || (b !== undefined && b >= 0x09 && b <= 0x0d);
  while (blank(bytes[i])) i++;
  if (bytes[i] !== 0x3c) return false;
  return XML_START.test(
    Buffer.from(bytes.buffer, bytes.byteOffset + i, Math.min(16, bytes.length - i)).toString('latin1'),
  );
}

/** Whether a payload is something the box sends: its JSON as an object, or one of its XML pages. */
export function looksLikeEcoDevices(payload: unknown): boolean {
  if (typeof payload === 'string') return XML_START.test(payload);
  if (payload instanceof Uint8Array) return startsWithXml(payload);
  if (typeof payload === 'object' && payload !== null) {
    const o = payload as Record<string, unknown>;
    return o.product === 'Eco-devices' || 'Day_C1' in o || 'Day_C2' in o;
  }
  return false;
}

/** Decode any one payload of the box: JSON object or text, XML text or bytes. */
export function decodeEcoDevicesPayload(payload: unknown, context: EcoDevicesContext): EcoDevicesSnapshot {
  if (typeof payload === 'string' && /^\s*\{/.test(payload)) {
    let parsed: unknown;
    try {
      parsed = JSON.parse(payload);
    } catch (e) {
      throw new EcoDevicesFormatError(`malformed Eco-Devices JSON: ${(e as Error).message}`);
    }
    return decodeEcoDevicesRecord(jsonRecord(parsed), context);
  }
  if (typeof payload === 'string' || payload instanceof Uint8Array) {
    return decodeEcoDevicesRecord(parseEcoDevicesXml(payload), context);
  }
  return decodeEcoDevicesRecord(jsonRecord(payload), context);
}

/** Decode a flattened record (one page, or several merged). */
export function decodeEcoDevicesRecord(
  record: EcoDevicesRecord,
  context: EcoDevicesContext,
): EcoDevicesSnapshot {
  const readings: Reading[] = [];
  for (const input of [1, 2] as const) {
    const reading = inputReading(record, input, context);
    if (reading) readings.push(reading);
  }
  const counters: PulseCounter[] = [];
  for (const [input, n] of [
    ['C1', 0],
    ['C2', 1],
  ] as const) {
    const index = toNumber(record[`INDEX_${input}`] ?? record[`count${n}`]);
    const day = toNumber(record[`Day_${input}`] ?? record[`c${n}day`]);
    const flow = toNumber(record[`meter${n + 2}`]);
    if (index !== null || day !== null || flow !== null) counters.push({ input, index, day, flow });
  }
  return { readings, counters };
}

const isEmptyText = (v: string) => v === '' || /^-+$/.test(v);

function inputReading(record: EcoDevicesRecord, input: 1 | 2, context: EcoDevicesContext): Reading | null {
  const prefix = `T${input}_`;
  const values: Record<string, number | string> = {};
  for (const [key, raw] of Object.entries(record)) {
    if (!key.startsWith(prefix)) continue;
    const label = key.slice(prefix.length);
    if (label === 'PPAP') continue; // misspelt alias of PAPP on the box
    const spec = HISTORIC_LABELS[label];
    if (spec?.kind === 'int') {
      const n = toNumber(raw);
      if (n !== null) values[label] = n;
    } else {
      const text = String(raw).trim();
      if (!isEmptyText(text)) values[label] = text;
    }
  }
  const ptec = typeof values.PTEC === 'string' ? decodePtec(values.PTEC) : null;
  const adco = typeof values.ADCO === 'string' ? values.ADCO : null;
  // An input without a meter reads `----` and zeros.
  if (ptec === null && adco === null) return null;
  if (ptec) values.PTEC = ticPtec(ptec);
  else delete values.PTEC;
  cleanUp(values);
  return historicReading(
    adco ?? `${context.device}-T${input}`,
    'ecodevices',
    context.time.toISOString(),
    values,
  );
}

/** The box fills every label of its template; keep only what the meter really sends. */
function cleanUp(values: Record<string, number | string>): void {
  // Unused indexes read 0; a real index is never 0 Wh.
  for (const label of HISTORIC_INDEX_LABELS) if (values[label] === 0) delete values[label];
  for (const label of ['ADPS', 'PEJP', 'ADIR1', 'ADIR2', 'ADIR3'])
    if (values[label] === 0) delete values[label];
  // DEMAIN holds junk on non-Tempo contracts (`INST3`, a newline); keep it only where it means something.
  const tempo = typeof values.OPTARIF === 'string' && decodeOptarif(values.OPTARIF) === 'TEMPO';
  if (typeof values.DEMAIN === 'string' && !(tempo && decodeDemain(values.DEMAIN))) delete values.DEMAIN;
  // Single-phase meters also fill IINST1/IMAX1 and read 0 on phases 2 and 3.
  const threePhase = ['IMAX2', 'IMAX3', 'IINST2', 'IINST3'].some(
    (l) => typeof values[l] === 'number' && values[l] > 0,
  );
  if (!threePhase)
    for (const l of ['IINST1', 'IINST2', 'IINST3', 'IMAX1', 'IMAX2', 'IMAX3', 'PPOT']) delete values[l];
}

/** Numbers arrive as JSON numbers or as strings, integers or floats (`1436.965`). */
function toNumber(raw: string | number | undefined): number | null {
  if (typeof raw === 'number') return Number.isFinite(raw) ? raw : null;
  if (typeof raw !== 'string') return null;
  const t = raw.trim();
  return /^-?\d+(\.\d+)?$/.test(t) ? Number(t) : null;
}

export interface CounterOptions {
  /** What the counter measures (`water`, `gas`…); an empty name leaves the counter out. */
  readonly name: string;
  /** The box's value divided by this (1000: litres to m³). */
  readonly divider: number;
}

/** The pulse counters of a snapshot as readings of their own, meter id `<device>-<name>`. */
export function counterReadings(
  snapshot: EcoDevicesSnapshot,
  context: EcoDevicesContext,
  options: Readonly<Record<'C1' | 'C2', CounterOptions>>,
): Reading[] {
  const readings: Reading[] = [];
  for (const counter of snapshot.counters) {
    const { name, divider } = options[counter.input];
    if (!name) continue;
    const d = divider > 0 ? divider : 1;
    const values: Record<string, number> = {};
    if (counter.index !== null) values.index = counter.index / d;
    if (counter.day !== null) values.day = counter.day / d;
    if (counter.flow !== null) values.flow = counter.flow;
    readings.push(
      counterReading(
        `${context.device}-${name}`,
        context.time.toISOString(),
        { input: counter.input, name },
        values,
      ),
    );
  }
  return readings;
}
