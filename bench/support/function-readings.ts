/**
 * JavaScript source, for a Function node, of `reading(meter, time, i)`: the readings of test/support/readings.ts
 * hcReading(), written out so that the function node needs no module. Shared by the benchmarks.
 */
export const READING_FUNCTION = `
function reading(meter, time, i) {
  const values = { ADCO: meter, OPTARIF: 'HC..', ISOUSC: 45, HCHC: 10000000 + i, HCHP: 20000000 + 2 * i,
    PTEC: i % 2 === 0 ? 'HC..' : 'HP..', IINST: 5 + (i % 7), IMAX: 90, PAPP: 1000 + (i % 100) * 10, HHPHC: 'A', MOTDETAT: '000000' };
  return { meter, source: 'tic-historic', time: new Date(time).toISOString(), tariffOption: 'HC',
    tariffPeriod: i % 2 === 0 ? 'HC' : 'HP', apparentPower: values.PAPP, energyTotal: values.HCHC + values.HCHP,
    energyIndexes: { HCHC: values.HCHC, HCHP: values.HCHP }, currents: [values.IINST], phases: 1, overrun: false, values };
}`;
