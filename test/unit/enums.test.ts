import assert from 'node:assert/strict';
import { test } from 'node:test';
import {
  decodeDemain,
  decodeOptarif,
  decodePtec,
  decodeRelais,
  decodeStge,
  parseHorodate,
} from '../../nodes/lib';

test('horodate: season letter gives the UTC offset; lowercase means degraded clock', () => {
  assert.deepEqual(parseHorodate('H081225223518'), {
    time: '2008-12-25T21:35:18.000Z',
    season: 'winter',
    degraded: false,
  });
  assert.deepEqual(parseHorodate('E090714074553'), {
    time: '2009-07-14T05:45:53.000Z',
    season: 'summer',
    degraded: false,
  });
  assert.equal(parseHorodate('e090714074553')?.degraded, true);
  // Space: not applicable (DPMx); French legal time is inferred from the date.
  assert.equal(parseHorodate(' 090714074553')?.time, '2009-07-14T05:45:53.000Z');
  assert.equal(parseHorodate(' 090114074553')?.time, '2009-01-14T06:45:53.000Z');
  assert.equal(parseHorodate('X090714074553'), null);
  assert.equal(parseHorodate('H091314074553'), null);
});

test('STGE: every field of the status register', () => {
  const s = decodeStge('013A0501');
  assert.ok(s);
  assert.equal(s.dryContactOpen, true);
  assert.equal(s.cutOff, 'closed');
  assert.equal(s.producer, true);
  assert.equal(s.supplierTariffIndex, 2);
  assert.equal(s.distributorTariffIndex, 1);
  assert.equal(s.ticMode, 'standard');
  assert.equal(s.euridis, 'enabled-with-security');
  assert.equal(s.cplStatus, 'new-lock');
  assert.equal(s.tempoToday, 'BLEU');
  assert.equal(s.tempoTomorrow, null);
  const t = decodeStge('FF0000FE');
  assert.ok(t);
  assert.equal(t.cutOff, 'unknown');
  assert.equal(t.coverOpen, true);
  assert.equal(t.overvoltage, true);
  assert.equal(t.referencePowerExceeded, true);
  assert.equal(t.tempoToday, 'ROUGE');
  assert.equal(t.tempoTomorrow, 'ROUGE');
  assert.equal(t.mobilePeakNotice, 3);
  assert.equal(t.mobilePeak, 3);
  assert.equal(decodeStge('01Z00000'), null);
});

test('PTEC, OPTARIF, DEMAIN, RELAIS', () => {
  assert.deepEqual(decodePtec('HP..'), { code: 'HP', name: 'peak hours', tempoColour: null });
  assert.deepEqual(decodePtec('HP'), decodePtec('HP..'));
  assert.equal(decodePtec('HPJR')?.tempoColour, 'ROUGE');
  assert.equal(decodePtec('----'), null);
  assert.equal(decodeOptarif('BBR('), 'TEMPO');
  assert.equal(decodeOptarif('HC..'), 'HC');
  assert.equal(decodeOptarif('EJP.'), 'EJP');
  assert.equal(decodeOptarif('BASE'), 'BASE');
  assert.equal(decodeOptarif('----'), null);
  assert.equal(decodeDemain('BLAN'), 'BLANC');
  assert.equal(decodeDemain('\nADC'), null);
  assert.deepEqual(decodeRelais(5), [true, false, true, false, false, false, false, false]);
});
