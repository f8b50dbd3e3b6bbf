/**
 * TIC label tables (Enedis-NOI-CPT_02E for historic mode, Enedis-NOI-CPT_54E §6.2.2 for standard mode).
 * Units are implicit on the wire; this table is the single place where they are written down.
 */

export type TicMode = 'historic' | 'standard';

/** How a label's data field is typed: a fixed-width decimal, an 8-char hex word, or text. */
export type ValueKind = 'int' | 'hex' | 'text';

export type Unit = 'Wh' | 'VArh' | 'VA' | 'W' | 'A' | 'V' | 'kVA' | 'min' | 'dal';

export interface LabelSpec {
  readonly kind: ValueKind;
  readonly unit?: Unit;
  /** Standard mode: the group carries a horodate field between label and data. */
  readonly horodate?: boolean;
  readonly description: string;
}

const int = (unit: Unit | undefined, description: string, horodate = false): LabelSpec => ({
  kind: 'int',
  unit,
  horodate,
  description,
});
const text = (description: string, horodate = false): LabelSpec => ({ kind: 'text', horodate, description });

function series(prefix: string, from: number, to: number, pad: number, spec: (n: string) => LabelSpec) {
  const out: Record<string, LabelSpec> = {};
  for (let i = from; i <= to; i++) {
    const n = String(i).padStart(pad, '0');
    out[prefix + n] = spec(n);
  }
  return out;
}

export const HISTORIC_LABELS: Readonly<Record<string, LabelSpec>> = {
  ADCO: text('meter address'),
  OPTARIF: text('tariff option'),
  ISOUSC: int('A', 'subscribed current'),
  BASE: int('Wh', 'index, base option'),
  HCHC: int('Wh', 'index, off-peak hours'),
  HCHP: int('Wh', 'index, peak hours'),
  EJPHN: int('Wh', 'index EJP, normal hours'),
  EJPHPM: int('Wh', 'index EJP, mobile peak hours'),
  BBRHCJB: int('Wh', 'index Tempo, off-peak blue days'),
  BBRHPJB: int('Wh', 'index Tempo, peak blue days'),
  BBRHCJW: int('Wh', 'index Tempo, off-peak white days'),
  BBRHPJW: int('Wh', 'index Tempo, peak white days'),
  BBRHCJR: int('Wh', 'index Tempo, off-peak red days'),
  BBRHPJR: int('Wh', 'index Tempo, peak red days'),
  PEJP: int('min', 'EJP notice'),
  PTEC: text('current tariff period'),
  DEMAIN: text("tomorrow's Tempo colour"),
  IINST: int('A', 'instantaneous current'),
  IINST1: int('A', 'instantaneous current, phase 1'),
  IINST2: int('A', 'instantaneous current, phase 2'),
  IINST3: int('A', 'instantaneous current, phase 3'),
  ADPS: int('A', 'subscribed power overrun warning'),
  IMAX: int('A', 'maximum current'),
  IMAX1: int('A', 'maximum current, phase 1'),
  IMAX2: int('A', 'maximum current, phase 2'),
  IMAX3: int('A', 'maximum current, phase 3'),
  PMAX: int('W', 'maximum power reached'),
  PAPP: int('VA', 'apparent power'),
  HHPHC: text('peak/off-peak schedule group'),
  MOTDETAT: text('meter status word'),
  PPOT: text('presence of potentials'),
  ADIR1: int('A', 'overrun on phase 1'),
  ADIR2: int('A', 'overrun on phase 2'),
  ADIR3: int('A', 'overrun on phase 3'),
  GAZ: int('dal', 'gas index (concentrator)'),
  AUTRE: int('dal', 'other index (concentrator)'),
};

export const STANDARD_LABELS: Readonly<Record<string, LabelSpec>> = {
  ADSC: text('secondary meter address'),
  VTIC: text('TIC version'),
  DATE: text('date and time', true),
  NGTF: text('supplier calendar name'),
  LTARF: text('current supplier tariff label'),
  EAST: int('Wh', 'total active energy withdrawn'),
  ...series('EASF', 1, 10, 2, (n) => int('Wh', `active energy withdrawn, supplier index ${n}`)),
  ...series('EASD', 1, 4, 2, (n) => int('Wh', `active energy withdrawn, distributor index ${n}`)),
  EAIT: int('Wh', 'total active energy injected'),
  ...series('ERQ', 1, 4, 1, (n) => int('VArh', `total reactive energy Q${n}`)),
  ...series('IRMS', 1, 3, 1, (n) => int('A', `RMS current, phase ${n}`)),
  ...series('URMS', 1, 3, 1, (n) => int('V', `RMS voltage, phase ${n}`)),
  PREF: int('kVA', 'reference apparent power'),
  PCOUP: int('kVA', 'breaking apparent power'),
  SINSTS: int('VA', 'instantaneous apparent power withdrawn'),
  ...series('SINSTS', 1, 3, 1, (n) => int('VA', `instantaneous apparent power withdrawn, phase ${n}`)),
  SMAXSN: int('VA', 'max apparent power withdrawn today', true),
  ...series('SMAXSN', 1, 3, 1, (n) => int('VA', `max apparent power withdrawn today, phase ${n}`, true)),
  'SMAXSN-1': int('VA', 'max apparent power withdrawn yesterday', true),
  'SMAXSN1-1': int('VA', 'max apparent power withdrawn yesterday, phase 1', true),
  'SMAXSN2-1': int('VA', 'max apparent power withdrawn yesterday, phase 2', true),
  'SMAXSN3-1': int('VA', 'max apparent power withdrawn yesterday, phase 3', true),
  SINSTI: int('VA', 'instantaneous apparent power injected'),
  SMAXIN: int('VA', 'max apparent power injected today', true),
  'SMAXIN-1': int('VA', 'max apparent power injected yesterday', true),
  CCASN: int('W', 'load curve point, withdrawn', true),
  'CCASN-1': int('W', 'previous load curve point, withdrawn', true),
  CCAIN: int('W', 'load curve point, injected', true),
  'CCAIN-1': int('W', 'previous load curve point, injected', true),
  ...series('UMOY', 1, 3, 1, (n) => int('V', `mean voltage, phase ${n}`, true)),
  STGE: { kind: 'hex', description: 'status register' },
  ...series('DPM', 1, 3, 1, (n) => int(undefined, `start of mobile peak ${n}`, true)),
  ...series('FPM', 1, 3, 1, (n) => int(undefined, `end of mobile peak ${n}`, true)),
  MSG1: text('short message'),
  MSG2: text('ultra-short message'),
  PRM: text('delivery point id'),
  RELAIS: int(undefined, 'relay states (bit field)'),
  NTARF: int(undefined, 'current tariff index'),
  NJOURF: int(undefined, 'current day number in supplier calendar'),
  'NJOURF+1': int(undefined, 'next day number in supplier calendar'),
  'PJOURF+1': text('next day profile'),
  PPOINTE: text('next peak day profile'),
};

export const LABELS: Readonly<Record<TicMode, Readonly<Record<string, LabelSpec>>>> = {
  historic: HISTORIC_LABELS,
  standard: STANDARD_LABELS,
};

/** Labels not in the tables (future meters, concentrators) are still passed on, as text. */
export const UNKNOWN_LABEL: LabelSpec = { kind: 'text', description: 'unknown label' };

export function labelSpec(mode: TicMode, label: string): LabelSpec {
  return LABELS[mode][label] ?? UNKNOWN_LABEL;
}

/** Historic energy index labels, in table order: the energy of each tariff period. */
export const HISTORIC_INDEX_LABELS = [
  'BASE',
  'HCHC',
  'HCHP',
  'EJPHN',
  'EJPHPM',
  'BBRHCJB',
  'BBRHPJB',
  'BBRHCJW',
  'BBRHPJW',
  'BBRHCJR',
  'BBRHPJR',
] as const;

/** Standard supplier index labels EASF01..EASF10. */
export const STANDARD_INDEX_LABELS = Object.keys(STANDARD_LABELS).filter((l) => /^EASF\d\d$/.test(l));
