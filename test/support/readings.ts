import { historicReading, type Reading } from '../../nodes/lib/reading';

/** A historic reading of meter `meter` at `time` (ms), with an HC index that grows with `i`. */
export function hcReading(meter: string, time: number, i: number): Reading {
  return historicReading(meter, 'tic-historic', new Date(time).toISOString(), {
    ADCO: meter,
    OPTARIF: 'HC..',
    ISOUSC: 45,
    HCHC: 10_000_000 + i,
    HCHP: 20_000_000 + 2 * i,
    PTEC: i % 2 === 0 ? 'HC..' : 'HP..',
    IINST: 5 + (i % 7),
    IMAX: 90,
    PAPP: 1000 + (i % 100) * 10,
    HHPHC: 'A',
    MOTDETAT: '000000',
  });
}
