import type { TicFrame } from './tic/decoder';
import {
  decodeDemain,
  decodeOptarif,
  decodePtec,
  decodeStge,
  type StatusRegister,
  type TempoColour,
} from './tic/enums';
import { parseHorodate } from './tic/horodate';
import { HISTORIC_INDEX_LABELS, STANDARD_INDEX_LABELS } from './tic/labels';

/**
 * The normalized reading: the contract between all our nodes, whatever the source.
 * Documented in README ("The normalized reading").
 */
export type ReadingSource = 'tic-historic' | 'tic-standard' | 'ecodevices';

export interface Reading {
  /** ADCO / ADSC, or a stable `<device>-T1` id when the meter's own id is unknown. */
  meter: string;
  source: ReadingSource;
  /** ISO 8601 instant (UTC) of the reading: the meter clock in standard mode, else reception time. */
  time: string;
  /** `BASE`, `HC`, `EJP`, `TEMPO` (TariffOption), or the supplier calendar name (standard mode) when it maps to none. */
  tariffOption: string | null;
  /** Current period without padding: `TH`, `HC`, `HP`, `HN`, `PM`, `HCJB`… */
  tariffPeriod: string | null;
  /** VA */
  apparentPower: number | null;
  /** Wh: sum of the period indexes (historic) or EAST (standard). */
  energyTotal: number | null;
  /** Wh, by index label (`HCHC`, `HCHP`, `EASF01`…). */
  energyIndexes: Record<string, number>;
  /** A, one per phase. */
  currents: number[];
  phases: 1 | 3;
  /** Subscribed power exceeded (ADPS, ADIRn, or STGE bit 7). */
  overrun: boolean;
  /** Every label of the reading, typed (numbers for decimal labels, text as sent otherwise). */
  values: Record<string, number | string>;
  /** Standard mode: the instant of each horodated label. */
  horodates?: Record<string, string>;
  /** Standard mode: the STGE status register, decoded. */
  status?: StatusRegister;
  /** Tempo contracts: today's colour (PTEC or STGE) and tomorrow's (DEMAIN or STGE), null until announced. */
  tempo?: { today: TempoColour | null; tomorrow: TempoColour | null };
  /** Standard mode: the meter clock was degraded, so `time` is the reception time. */
  clockDegraded?: boolean;
  /** A pulse counter of an Eco-Devices box (water, gas…) rather than an electricity meter. */
  counter?: { input: 'C1' | 'C2'; name: string };
}

export class ReadingError extends Error {}

/** A decoded TIC frame as a reading. `receivedAt` stamps historic frames, which carry no clock. */
export function readingFromTicFrame(frame: TicFrame, receivedAt: Date): Reading {
  const values: Record<string, number | string> = {};
  const horodates: Record<string, string> = {};
  let meterTime: string | null = null;
  let clockDegraded = false;
  for (const g of frame.groups) {
    values[g.label] = g.value;
    if (g.horodate !== undefined) {
      const h = parseHorodate(g.horodate);
      if (h === null) continue;
      if (g.label === 'DATE') {
        clockDegraded = h.degraded;
        if (!h.degraded) meterTime = h.time;
      } else horodates[g.label] = h.time;
    }
  }
  if (frame.mode === 'historic') {
    const meter = values.ADCO;
    if (typeof meter !== 'string' || meter.trim() === '') {
      throw new ReadingError(`historic frame without ADCO (labels: ${Object.keys(values).join(' ')})`);
    }
    return historicReading(meter.trim(), 'tic-historic', receivedAt.toISOString(), values);
  }
  const meter = values.ADSC;
  if (typeof meter !== 'string' || meter.trim() === '') {
    throw new ReadingError(`standard frame without ADSC (labels: ${Object.keys(values).join(' ')})`);
  }
  const reading = standardReading(meter.trim(), meterTime ?? receivedAt.toISOString(), values);
  if (Object.keys(horodates).length > 0) reading.horodates = horodates;
  if (clockDegraded) reading.clockDegraded = true;
  return reading;
}

const num = (v: number | string | undefined): number | null => (typeof v === 'number' ? v : null);

/** Summary of a set of historic labels; Eco-Devices readings use the same labels and go through here too. */
export function historicReading(
  meter: string,
  source: ReadingSource,
  time: string,
  values: Record<string, number | string>,
): Reading {
  const energyIndexes: Record<string, number> = {};
  let energyTotal: number | null = null;
  for (const label of HISTORIC_INDEX_LABELS) {
    const v = values[label];
    if (typeof v === 'number') {
      energyIndexes[label] = v;
      energyTotal = (energyTotal ?? 0) + v;
    }
  }
  const perPhase = ['IINST1', 'IINST2', 'IINST3'].map((l) => num(values[l]));
  const threePhase = ['IINST2', 'IINST3', 'IMAX2', 'IMAX3', 'ADIR1', 'ADIR2', 'ADIR3', 'PPOT'].some(
    (l) => values[l] !== undefined,
  );
  const single = num(values.IINST);
  const currents = threePhase
    ? perPhase.filter((c): c is number => c !== null)
    : single !== null
      ? [single]
      : perPhase.filter((c): c is number => c !== null);
  const optarif = values.OPTARIF;
  const period = typeof values.PTEC === 'string' ? decodePtec(values.PTEC) : null;
  const tariffOption = typeof optarif === 'string' ? decodeOptarif(optarif) : null;
  const reading: Reading = {
    meter,
    source,
    time,
    tariffOption,
    tariffPeriod: period?.code ?? null,
    apparentPower: num(values.PAPP),
    energyTotal,
    energyIndexes,
    currents,
    phases: threePhase ? 3 : 1,
    overrun: ['ADPS', 'ADIR1', 'ADIR2', 'ADIR3'].some((l) => values[l] !== undefined),
    values,
  };
  if (tariffOption === 'TEMPO') {
    const demain = typeof values.DEMAIN === 'string' ? decodeDemain(values.DEMAIN) : null;
    reading.tempo = { today: period?.tempoColour ?? null, tomorrow: demain };
  }
  return reading;
}

function standardReading(meter: string, time: string, values: Record<string, number | string>): Reading {
  const energyIndexes: Record<string, number> = {};
  for (const label of STANDARD_INDEX_LABELS) {
    const v = values[label];
    if (typeof v === 'number') energyIndexes[label] = v;
  }
  const threePhase = ['IRMS2', 'IRMS3', 'URMS2', 'URMS3', 'SINSTS2', 'SINSTS3'].some(
    (l) => values[l] !== undefined,
  );
  const currents = ['IRMS1', 'IRMS2', 'IRMS3']
    .map((l) => num(values[l]))
    .filter((c): c is number => c !== null);
  const stge = typeof values.STGE === 'string' ? decodeStge(values.STGE) : null;
  const reading: Reading = {
    meter,
    source: 'tic-standard',
    time,
    tariffOption: typeof values.NGTF === 'string' ? standardOption(values.NGTF) : null,
    tariffPeriod: typeof values.LTARF === 'string' ? standardPeriod(values.LTARF) : null,
    apparentPower: num(values.SINSTS),
    energyTotal: num(values.EAST),
    energyIndexes,
    currents,
    phases: threePhase ? 3 : 1,
    overrun: stge?.referencePowerExceeded ?? false,
    values,
  };
  if (stge) reading.status = stge;
  if (stge && (reading.tariffOption === 'TEMPO' || stge.tempoToday || stge.tempoTomorrow)) {
    reading.tempo = { today: stge.tempoToday, tomorrow: stge.tempoTomorrow };
  }
  return reading;
}

/**
 * A reading from its labels alone: what is derived from them (tariff, power, energy, currents, phases, overrun,
 * Tempo colours, status register) is computed here, whatever the source.
 */
export function readingFromValues(
  meter: string,
  source: ReadingSource,
  time: string,
  values: Record<string, number | string>,
): Reading {
  return source === 'tic-standard'
    ? standardReading(meter, time, values)
    : historicReading(meter, source, time, values);
}

/** A pulse counter of an Eco-Devices box as a reading of its own (`index`, `day`, `flow` in its values). */
export function counterReading(
  meter: string,
  time: string,
  counter: { input: 'C1' | 'C2'; name: string },
  values: Record<string, number>,
): Reading {
  return {
    meter,
    source: 'ecodevices',
    time,
    tariffOption: null,
    tariffPeriod: null,
    apparentPower: null,
    energyTotal: null,
    energyIndexes: {},
    currents: [],
    phases: 1,
    overrun: false,
    values,
    counter,
  };
}

const collapse = (s: string) => s.trim().replace(/\s+/g, ' ').toUpperCase();

/** NGTF is free text chosen by the supplier; map the usual names onto the historic options. */
function standardOption(ngtf: string): string | null {
  const t = collapse(ngtf);
  if (t === '') return null;
  if (t.includes('TEMPO')) return 'TEMPO';
  if (t.includes('EJP')) return 'EJP';
  if (/CREUSE|\bHC\b|\bHP\b|PLEINE/.test(t)) return 'HC';
  if (t.includes('BASE')) return 'BASE';
  return t;
}

/** LTARF is free text too (`HEURE  CREUSE`, `HP  BLEU`); map it onto the historic PTEC codes. */
function standardPeriod(ltarf: string): string | null {
  const t = collapse(ltarf);
  if (t === '') return null;
  const offPeak = /CREUSE|\bHC\b/.test(t);
  const peak = /PLEINE|\bHP\b/.test(t);
  if (offPeak || peak) {
    const colour = t.includes('BLEU') ? 'JB' : t.includes('BLANC') ? 'JW' : t.includes('ROUGE') ? 'JR' : '';
    return (offPeak ? 'HC' : 'HP') + colour;
  }
  if (t.includes('BASE')) return 'TH';
  return t;
}

/** A normalized reading as it arrives over MQTT (JSON) is accepted when it has the contract's shape. */
export function isReading(value: unknown): value is Reading {
  if (typeof value !== 'object' || value === null) return false;
  const r = value as Partial<Reading>;
  return (
    typeof r.meter === 'string' &&
    r.meter !== '' &&
    (r.source === 'tic-historic' || r.source === 'tic-standard' || r.source === 'ecodevices') &&
    typeof r.time === 'string' &&
    !Number.isNaN(Date.parse(r.time)) &&
    typeof r.values === 'object' &&
    r.values !== null
  );
}

/** A short description of an unexpected payload, for error messages. */
export function describePayload(payload: unknown): string {
  if (payload === null || payload === undefined) return String(payload);
  if (typeof payload === 'object') {
    const keys = Object.keys(payload).slice(0, 5).join(', ');
    return `an object with keys {${keys}}`;
  }
  return `a ${typeof payload} (${JSON.stringify(payload).slice(0, 40)})`;
}

/**
 * A message payload as normalized readings: one reading or an array of them, either as JSON text too (what an
 * mqtt in delivers). Otherwise why not: the first item that is no reading, described.
 */
export function readingsOf(payload: unknown): Reading[] | string {
  let value = payload;
  if (typeof value === 'string' && /^\s*[[{]/.test(value)) {
    try {
      value = JSON.parse(value);
    } catch (e) {
      return `malformed JSON: ${(e as Error).message}`;
    }
  }
  const items: unknown[] = Array.isArray(value) ? value : [value];
  for (let i = 0; i < items.length; i++)
    if (!isReading(items[i])) return `item ${i} is ${describePayload(items[i])}`;
  return items as Reading[];
}
