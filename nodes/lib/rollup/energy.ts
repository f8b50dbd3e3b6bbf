import { HISTORIC_INDEX_LABELS, STANDARD_INDEX_LABELS } from '../tic/labels';

/**
 * The energy of each hour, from the meter's indexes at the end of each hour: the index now minus the index at the
 * end of the meter's previous hour with one, so that a whole year of hours adds up to the raw readings' energy.
 * An index that went down (the meter was reset or swapped) or jumped more than a meter can draw in an hour counts
 * no energy for that hour, and is counted; the new index is the next hour's starting point.
 */

/** The electricity indexes (Wh, one per tariff period) and a water or gas counter's `index`. */
export const ROLLUP_INDEXES: readonly string[] = [
  ...HISTORIC_INDEX_LABELS,
  ...STANDARD_INDEX_LABELS,
  'index',
];
/** Of those, the ones in Wh, held to the plausible energy of an hour. */
const WH_INDEXES = new Set<string>([...HISTORIC_INDEX_LABELS, ...STANDARD_INDEX_LABELS]);

/** One meter's hour as InfluxDB aggregated it from the raw readings. */
export interface RawHour {
  readonly time: number;
  /** Each index's last value in the hour. */
  readonly last: Readonly<Record<string, number>>;
  /** Each index's first value in the hour: the start when the meter has no earlier hour. */
  readonly first: Readonly<Record<string, number>>;
  readonly powerMax: number | null;
  readonly powerMean: number | null;
}

/** One meter's hour as the rollup keeps it. */
export interface HourRollup {
  readonly time: number;
  /** Energy (Wh, or the counter's unit) by index, and `energy`: the hour's Wh over every period. */
  readonly energy: Readonly<Record<string, number>>;
  /** Each index at the end of the hour: where the next hour starts. */
  readonly end: Readonly<Record<string, number>>;
  readonly powerMax: number | null;
  readonly powerMean: number | null;
}

export interface EnergyAnomalies {
  /** Hours whose index went down. */
  resets: number;
  /** Hours whose index rose more than a meter can draw. */
  implausible: number;
}

/**
 * The hours of one meter, in time order, from `start` (each index at the end of the meter's hour before the
 * first, where known). `maxWhPerHour` bounds an hour's energy per Wh index.
 */
export function hourlyEnergy(
  start: Readonly<Record<string, number>>,
  hours: readonly RawHour[],
  maxWhPerHour: number,
  anomalies: EnergyAnomalies,
): HourRollup[] {
  const previous: Record<string, number> = { ...start };
  return hours.map((hour) => {
    const energy: Record<string, number> = {};
    let wh = 0;
    for (const [label, value] of Object.entries(hour.last)) {
      const from = previous[label] ?? hour.first[label] ?? value;
      let delta = value - from;
      if (delta < 0) {
        // A new meter (or a reset) from the hour's first reading on counts from there; mid-hour, nothing.
        anomalies.resets++;
        const since = value - (hour.first[label] ?? value);
        delta = since >= 0 && since <= maxWhPerHour ? since : 0;
      } else if (WH_INDEXES.has(label) && delta > maxWhPerHour) {
        anomalies.implausible++;
        delta = 0;
      }
      energy[label] = delta;
      if (WH_INDEXES.has(label)) wh += delta;
      previous[label] = value;
    }
    if (Object.keys(energy).some((l) => WH_INDEXES.has(l))) energy.energy = wh;
    return {
      time: hour.time,
      energy,
      end: { ...hour.last },
      powerMax: hour.powerMax,
      powerMean: hour.powerMean,
    };
  });
}
