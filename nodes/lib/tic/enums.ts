/** Decoders for the TIC fields whose value is a code: PTEC, OPTARIF, DEMAIN, RELAIS and the STGE register. */

export type TariffOption = 'BASE' | 'HC' | 'EJP' | 'TEMPO';
export type TempoColour = 'BLEU' | 'BLANC' | 'ROUGE';

const PERIOD_NAMES: Record<string, string> = {
  TH: 'all hours',
  HC: 'off-peak hours',
  HP: 'peak hours',
  HN: 'normal hours',
  PM: 'mobile peak hours',
  HCJB: 'off-peak hours, blue day',
  HPJB: 'peak hours, blue day',
  HCJW: 'off-peak hours, white day',
  HPJW: 'peak hours, white day',
  HCJR: 'off-peak hours, red day',
  HPJR: 'peak hours, red day',
};

export interface TariffPeriod {
  /** PTEC without its padding dots: `TH`, `HC`, `HP`, `HN`, `PM`, `HCJB`… */
  readonly code: string;
  readonly name: string | null;
  readonly tempoColour: TempoColour | null;
}

/** PTEC as sent by the meter (`HP..`) or by an Eco-Devices XML page (`HP`). Null when no meter (`----`). */
export function decodePtec(raw: string): TariffPeriod | null {
  const code = raw.trim().replace(/\.+$/, '');
  if (code === '' || /^-+$/.test(code)) return null;
  const colour = code.length === 4 && code[2] === 'J' ? tempoColourOf(code[3]) : null;
  return { code, name: PERIOD_NAMES[code] ?? null, tempoColour: colour };
}

function tempoColourOf(letter: string | undefined): TempoColour | null {
  return letter === 'B' ? 'BLEU' : letter === 'W' ? 'BLANC' : letter === 'R' ? 'ROUGE' : null;
}

/** PTEC padded back to the 4 characters a meter sends, so every source stores the same string. */
export function ticPtec(period: TariffPeriod): string {
  return period.code.padEnd(4, '.');
}

/** OPTARIF: `BASE`, `HC..`, `EJP.`, `BBRx` (x = Tempo relay programme). Null when no meter. */
export function decodeOptarif(raw: string): TariffOption | null {
  const v = raw.trim();
  if (v.startsWith('BBR')) return 'TEMPO';
  if (v.startsWith('HC')) return 'HC';
  if (v.startsWith('EJP')) return 'EJP';
  if (v.startsWith('BASE') || v.startsWith('TH')) return 'BASE';
  return null;
}

/** DEMAIN: tomorrow's Tempo colour, `----` when unknown. Anything else (junk seen on Eco-Devices) is null. */
export function decodeDemain(raw: string): TempoColour | null {
  const v = raw.trim();
  return v === 'BLEU' ? 'BLEU' : v === 'BLAN' ? 'BLANC' : v === 'ROUG' ? 'ROUGE' : null;
}

/** RELAIS: 8 relays (1 real + 7 virtual) as a decimal bit field; true = closed. */
export function decodeRelais(value: number): boolean[] {
  return Array.from({ length: 8 }, (_, bit) => ((value >> bit) & 1) === 1);
}

const CUT_OFF = [
  'closed',
  'open-overload',
  'open-overvoltage',
  'open-load-shedding',
  'open-cpl-order',
  'open-overheat-over-imax',
  'open-overheat-under-imax',
] as const;
const EURIDIS = ['disabled', 'enabled-without-security', 'invalid', 'enabled-with-security'] as const;
const CPL = ['new-unlock', 'new-lock', 'registered', 'invalid'] as const;
const COLOURS = [null, 'BLEU', 'BLANC', 'ROUGE'] as const;

export interface StatusRegister {
  readonly raw: string;
  readonly dryContactOpen: boolean;
  readonly cutOff: (typeof CUT_OFF)[number] | 'unknown';
  readonly coverOpen: boolean;
  readonly overvoltage: boolean;
  readonly referencePowerExceeded: boolean;
  readonly producer: boolean;
  readonly activeEnergyNegative: boolean;
  /** 1..10 */
  readonly supplierTariffIndex: number;
  /** 1..4 */
  readonly distributorTariffIndex: number;
  readonly clockDegraded: boolean;
  readonly ticMode: 'historic' | 'standard';
  readonly euridis: (typeof EURIDIS)[number];
  readonly cplStatus: (typeof CPL)[number];
  readonly cplSynchronised: boolean;
  readonly tempoToday: TempoColour | null;
  readonly tempoTomorrow: TempoColour | null;
  /** 0 = none, 1..3 = notice of mobile peak PM1..PM3 */
  readonly mobilePeakNotice: number;
  /** 0 = none, 1..3 = mobile peak PM1..PM3 in progress */
  readonly mobilePeak: number;
}

/** STGE: 8 hex characters, most significant byte first (54E §6.2.3.14). Null if not 8 hex digits. */
export function decodeStge(raw: string): StatusRegister | null {
  if (!/^[0-9A-Fa-f]{8}$/.test(raw)) return null;
  const v = parseInt(raw, 16);
  const bits = (from: number, count: number) => Math.floor(v / 2 ** from) % 2 ** count;
  return {
    raw: raw.toUpperCase(),
    dryContactOpen: bits(0, 1) === 1,
    cutOff: CUT_OFF[bits(1, 3)] ?? 'unknown',
    coverOpen: bits(4, 1) === 1,
    overvoltage: bits(6, 1) === 1,
    referencePowerExceeded: bits(7, 1) === 1,
    producer: bits(8, 1) === 1,
    activeEnergyNegative: bits(9, 1) === 1,
    supplierTariffIndex: bits(10, 4) + 1,
    distributorTariffIndex: bits(14, 2) + 1,
    clockDegraded: bits(16, 1) === 1,
    ticMode: bits(17, 1) === 1 ? 'standard' : 'historic',
    euridis: EURIDIS[bits(19, 2)],
    cplStatus: CPL[bits(21, 2)],
    cplSynchronised: bits(23, 1) === 1,
    tempoToday: COLOURS[bits(24, 2)] ?? null,
    tempoTomorrow: COLOURS[bits(26, 2)] ?? null,
    mobilePeakNotice: bits(28, 2),
    mobilePeak: bits(30, 2),
  };
}
