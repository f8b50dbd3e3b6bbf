import { formatHorodate, parisOffsetAt } from '../tic/horodate';
import type { TicGroupText } from '../tic/encoder';
import type { TariffOption } from '../tic/enums';

/**
 * A simulated meter whose state is a pure function of (seed, configuration, instant), so that the demo looks
 * alive and tests can assert exact values. The apparent power follows a daily load curve with seeded noise,
 * held for one minute at a time; the indexes integrate that power into the index of the period in force, so
 * they only grow and agree with the power over time.
 */

export type Contract = TariffOption;

export interface MeterConfig {
  readonly adco: string;
  readonly contract: Contract;
  readonly phases: 1 | 3;
  /** Subscribed current, A. */
  readonly isousc: number;
  readonly seed: number;
  /** Instant where the indexes hold their initial values; the meter knows nothing earlier. */
  readonly origin: number;
}

const SLOT_MS = 60_000;
const DAY_MS = 86_400_000;

/** Deterministic value in [0, 1) from integers. */
export function hash01(...values: number[]): number {
  let h = 0x9e3779b9;
  for (const v of values) {
    h = Math.imul(h ^ (v | 0), 0x85ebca6b);
    h = Math.imul(h ^ Math.floor(v / 2 ** 32), 0x27d4eb2f);
    h ^= h >>> 13;
    h = Math.imul(h, 0xc2b2ae35);
    h ^= h >>> 16;
  }
  return (h >>> 0) / 2 ** 32;
}

const INDEXES: Record<Contract, readonly string[]> = {
  BASE: ['BASE'],
  HC: ['HCHC', 'HCHP'],
  EJP: ['EJPHN', 'EJPHPM'],
  TEMPO: ['BBRHCJB', 'BBRHPJB', 'BBRHCJW', 'BBRHPJW', 'BBRHCJR', 'BBRHPJR'],
};

const OPTARIF: Record<Contract, string> = { BASE: 'BASE', HC: 'HC..', EJP: 'EJP.', TEMPO: 'BBR(' };

export type TempoColour = 'BLEU' | 'BLANC' | 'ROUGE';

export interface MeterState {
  readonly time: number;
  /** VA, a multiple of 10 as meters send it. */
  readonly papp: number;
  /** PTEC as the meter sends it (`HC..`, `HPJB`). */
  readonly ptec: string;
  /** Wh, by index label of the contract. */
  readonly indexes: Record<string, number>;
  /** A, per phase. */
  readonly currents: number[];
  /** Tempo: tomorrow's colour. */
  readonly tomorrow: TempoColour | null;
}

export class SimulatedMeter {
  /** Energy of each index at the start of `slot` (Wh, fractional). */
  private cumulative: Record<string, number>;
  private slot: number;

  constructor(readonly config: MeterConfig) {
    this.slot = Math.floor(config.origin / SLOT_MS);
    this.cumulative = this.initialIndexes();
  }

  get indexLabels(): readonly string[] {
    return INDEXES[this.config.contract];
  }

  private initialIndexes(): Record<string, number> {
    const out: Record<string, number> = {};
    INDEXES[this.config.contract].forEach((label, i) => {
      out[label] = 1_000_000 + Math.floor(hash01(this.config.seed, 7, i) * 40_000_000);
    });
    return out;
  }

  /** Local (French legal) hour and day number, the day starting at `dayStartHour`. */
  private local(
    time: number,
    dayStartHour = 0,
  ): { hour: number; day: number; month: number; weekday: number } {
    const local = time + parisOffsetAt(time) * 3_600_000;
    const shifted = new Date(local - dayStartHour * 3_600_000);
    return {
      hour: new Date(local).getUTCHours() + new Date(local).getUTCMinutes() / 60,
      day: Math.floor((local - dayStartHour * 3_600_000) / DAY_MS),
      month: shifted.getUTCMonth() + 1,
      weekday: shifted.getUTCDay(),
    };
  }

  /** Tempo colour of the Tempo day (06:00 to 06:00) that `day` numbers. */
  tempoColour(day: number): TempoColour {
    const d = new Date(day * DAY_MS);
    const winter = d.getUTCMonth() + 1 >= 11 || d.getUTCMonth() + 1 <= 3;
    const r = hash01(this.config.seed, 11, day);
    if (winter && d.getUTCDay() !== 0 && r < 22 / 151) return 'ROUGE';
    if (d.getUTCDay() !== 0 && r > 1 - 43 / 365) return 'BLANC';
    return 'BLEU';
  }

  private ejpPeakDay(day: number): boolean {
    const m = new Date(day * DAY_MS).getUTCMonth() + 1;
    return (m >= 11 || m <= 3) && hash01(this.config.seed, 13, day) < 22 / 151;
  }

  /** The index label and PTEC in force at `time`. */
  period(time: number): { index: string; ptec: string } {
    const { hour } = this.local(time);
    const offPeak = hour >= 22 || hour < 6;
    switch (this.config.contract) {
      case 'BASE':
        return { index: 'BASE', ptec: 'TH..' };
      case 'HC':
        return offPeak ? { index: 'HCHC', ptec: 'HC..' } : { index: 'HCHP', ptec: 'HP..' };
      case 'EJP': {
        const { day } = this.local(time, 1); // an EJP day runs from 07:00 to 01:00 the next day
        const peak = this.ejpPeakDay(day) && (hour >= 7 || hour < 1);
        return peak ? { index: 'EJPHPM', ptec: 'PM..' } : { index: 'EJPHN', ptec: 'HN..' };
      }
      case 'TEMPO': {
        const colour = this.tempoColour(this.local(time, 6).day);
        const c = colour === 'BLEU' ? 'B' : colour === 'BLANC' ? 'W' : 'R';
        return offPeak ? { index: `BBRHCJ${c}`, ptec: `HCJ${c}` } : { index: `BBRHPJ${c}`, ptec: `HPJ${c}` };
      }
    }
  }

  /** Apparent power held during one minute: a daily load curve, seeded noise, within the subscription. */
  private slotPower(slot: number): number {
    const time = slot * SLOT_MS;
    const { hour } = this.local(time);
    const bump = (centre: number, width: number, height: number) =>
      height * Math.exp(-(((hour - centre) / width) ** 2));
    let va = 250 + bump(7.5, 1, 1200) + bump(12.5, 1, 700) + bump(19.5, 1.8, 2200);
    if (this.config.contract !== 'BASE' && (hour >= 22.5 || hour < 1.5)) va += 2000; // water heater off-peak
    va *= 0.7 + 0.6 * hash01(this.config.seed, 3, slot);
    const max = this.config.isousc * 230 * this.config.phases;
    return Math.min(max, Math.max(10, Math.round(va / 10) * 10));
  }

  state(time: number): MeterState {
    const at = Math.max(time, this.config.origin);
    const slot = Math.floor(at / SLOT_MS);
    if (slot < this.slot) {
      this.slot = Math.floor(this.config.origin / SLOT_MS);
      this.cumulative = this.initialIndexes();
    }
    while (this.slot < slot) {
      const start = Math.max(this.slot * SLOT_MS, this.config.origin);
      const end = (this.slot + 1) * SLOT_MS;
      this.cumulative[this.period(start).index] += (this.slotPower(this.slot) * (end - start)) / 3_600_000;
      this.slot++;
    }
    const papp = this.slotPower(slot);
    const { index, ptec } = this.period(at);
    const indexes: Record<string, number> = {};
    for (const [label, wh] of Object.entries(this.cumulative)) indexes[label] = Math.floor(wh);
    const partial = (papp * (at - Math.max(slot * SLOT_MS, this.config.origin))) / 3_600_000;
    indexes[index] = Math.floor(this.cumulative[index] + partial);
    const perPhase = papp / 230 / this.config.phases;
    const currents = Array.from({ length: this.config.phases }, (_, i) =>
      Math.max(0, Math.round(perPhase * (1 + 0.2 * (i - 1)))),
    );
    const tomorrow = this.config.contract === 'TEMPO' ? this.tempoColour(this.local(at, 6).day + 1) : null;
    return { time: at, papp, ptec, indexes, currents, tomorrow };
  }

  /** Historic-mode groups (labels of a CBEMM / CBETM or a Linky in historic mode). */
  historicGroups(time: number): TicGroupText[] {
    const s = this.state(time);
    const { adco, isousc, phases, contract } = this.config;
    const pad = (n: number, width: number) => String(n).padStart(width, '0');
    const groups: TicGroupText[] = [
      { label: 'ADCO', value: adco },
      { label: 'OPTARIF', value: OPTARIF[contract] },
      { label: 'ISOUSC', value: pad(isousc, 2) },
      ...this.indexLabels.map((label) => ({ label, value: pad(s.indexes[label], 9) })),
      { label: 'PTEC', value: s.ptec },
    ];
    if (s.tomorrow)
      groups.push({
        label: 'DEMAIN',
        value: s.tomorrow === 'BLEU' ? 'BLEU' : s.tomorrow === 'BLANC' ? 'BLAN' : 'ROUG',
      });
    if (phases === 1) {
      groups.push({ label: 'IINST', value: pad(s.currents[0], 3) });
      if (s.currents[0] > isousc) groups.push({ label: 'ADPS', value: pad(s.currents[0], 3) });
      groups.push({ label: 'IMAX', value: '090' });
    } else {
      s.currents.forEach((c, i) => groups.push({ label: `IINST${i + 1}`, value: pad(c, 3) }));
      for (const i of [1, 2, 3]) groups.push({ label: `IMAX${i}`, value: '060' });
      groups.push({ label: 'PMAX', value: pad(isousc * 230 * 3, 5) });
    }
    groups.push(
      { label: 'PAPP', value: pad(s.papp, 5) },
      { label: 'HHPHC', value: 'A' },
      { label: 'MOTDETAT', value: '000000' },
    );
    if (phases === 3) groups.push({ label: 'PPOT', value: '00' });
    return groups;
  }

  /** Standard-mode groups of a Linky, with the meter clock. */
  standardGroups(time: number): TicGroupText[] {
    const s = this.state(time);
    const { adco, isousc, phases, contract } = this.config;
    const pad = (n: number, width: number) => String(n).padStart(width, '0');
    const text = (t: string, width: number) => t.padEnd(width, ' ');
    const labels = this.indexLabels;
    const current = labels.indexOf(this.period(s.time).index);
    const east = labels.reduce((sum, l) => sum + s.indexes[l], 0);
    const ngtf = { BASE: 'BASE', HC: 'H PLEINE/CREUSE', EJP: 'EJP', TEMPO: 'TEMPO' }[contract];
    const ltarf = s.ptec.startsWith('HC')
      ? 'HEURE  CREUSE'
      : s.ptec.startsWith('HP')
        ? 'HEURE  PLEINE'
        : s.ptec === 'PM..'
          ? 'POINTE MOBILE'
          : s.ptec === 'HN..'
            ? 'HEURE NORMALE'
            : 'BASE';
    const h = formatHorodate(s.time);
    const groups: TicGroupText[] = [
      { label: 'ADSC', value: adco },
      { label: 'VTIC', value: '02' },
      { label: 'DATE', horodate: h, value: '' },
      { label: 'NGTF', value: text(ngtf, 16) },
      { label: 'LTARF', value: text(ltarf, 16) },
      { label: 'EAST', value: pad(east, 9) },
      ...Array.from({ length: 10 }, (_, i) => ({
        label: `EASF${pad(i + 1, 2)}`,
        value: pad(s.indexes[labels[i] ?? ''] ?? 0, 9),
      })),
      ...s.currents.map((c, i) => ({ label: `IRMS${i + 1}`, value: pad(c, 3) })),
      ...s.currents.map((_, i) => ({ label: `URMS${i + 1}`, value: '230' })),
      { label: 'PREF', value: pad(Math.round((isousc * 230 * phases) / 1000), 2) },
      { label: 'PCOUP', value: pad(Math.round((isousc * 230 * phases) / 1000), 2) },
      { label: 'SINSTS', value: pad(s.papp, 5) },
      { label: 'STGE', value: ((current & 0xf) << 10).toString(16).toUpperCase().padStart(8, '0') },
      { label: 'NTARF', value: pad(current + 1, 2) },
      { label: 'RELAIS', value: '000' },
    ];
    return groups;
  }
}
