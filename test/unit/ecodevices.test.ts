import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import {
  decodeEcoDevicesPayload,
  decodeEcoDevicesRecord,
  EcoDevicesFormatError,
  looksLikeEcoDevices,
  parseEcoDevicesXml,
} from '../../nodes/lib';
import { fixture } from '../support/fixtures';

const context = { device: 'box', time: new Date('2026-11-29T10:00:00Z') };
const json = (name: string): unknown => JSON.parse(fixture('ecodevices', name).toString('utf8'));
const xml = (name: string) => fixture('ecodevices', name);

describe('Eco-Devices JSON (cmd=10, cmd=20)', () => {
  test('T1 connected, T2 empty: one reading, named after the device, and the counters', () => {
    const s = decodeEcoDevicesPayload(json('brief_example_cmd10.json'), context);
    assert.equal(s.readings.length, 1);
    const r = s.readings[0];
    assert.equal(r?.meter, 'box-T1');
    assert.equal(r?.source, 'ecodevices');
    assert.equal(r?.time, '2026-11-29T10:00:00.000Z');
    assert.equal(r?.tariffPeriod, 'TH');
    assert.equal(r?.values.PTEC, 'TH..');
    assert.equal(r?.apparentPower, 130);
    assert.equal(r?.energyTotal, 1875395);
    assert.deepEqual(s.counters, [
      { input: 'C1', index: 784482, day: null, flow: null },
      { input: 'C2', index: 10818, day: null, flow: null },
    ]);
  });

  test('both inputs unconnected: no reading; a float counter stays a float', () => {
    const s = decodeEcoDevicesPayload(json('martindewaele_Greg_script_cmd10.json'), context);
    assert.equal(s.readings.length, 0);
    assert.equal(s.counters[1]?.index, 1436.965);
  });

  test('both inputs connected, numbers as strings, PTEC with or without dots', () => {
    const s = decodeEcoDevicesPayload(
      '{"product":"Eco-devices","T1_PTEC":"HC..","T1_PAPP":"1230","T1_BASE":"100","T2_PTEC":"HP","T2_PAPP":40,"T2_BASE":200,"INDEX_C1":1,"INDEX_C2":2}',
      context,
    );
    assert.deepEqual(
      s.readings.map((r) => [r.meter, r.tariffPeriod, r.apparentPower, r.values.PTEC]),
      [
        ['box-T1', 'HC', 1230, 'HC..'],
        ['box-T2', 'HP', 40, 'HP..'],
      ],
    );
  });

  test('cmd=20 daily counters', () => {
    const s = decodeEcoDevicesPayload({ Day_C1: 12.5, Day_C2: '3' }, context);
    assert.deepEqual(
      s.counters.map((c) => [c.input, c.day]),
      [
        ['C1', 12.5],
        ['C2', 3],
      ],
    );
  });

  test('malformed or foreign JSON is a clear error', () => {
    assert.throws(() => decodeEcoDevicesPayload('{"product":', context), EcoDevicesFormatError);
    assert.throws(() => decodeEcoDevicesPayload({ hello: 1 }, context), /not an Eco-Devices JSON/);
  });
});

describe('Eco-Devices XML', () => {
  test('status.xml: undotted PTEC, PAPP; T2 empty', () => {
    const s = decodeEcoDevicesPayload(xml('aohzan_ecodevices_issue35_status_xml_excerpt.xml'), context);
    assert.equal(s.readings.length, 1);
    assert.equal(s.readings[0]?.values.PTEC, 'HP..');
    assert.equal(s.readings[0]?.apparentPower, 296);
    assert.equal(s.readings[0]?.values.ISOUSC, 25);
  });

  test('teleinfo1.xml: three-phase HC meter with its ADCO; junk DEMAIN and zero ADPS dropped', () => {
    const s = decodeEcoDevicesPayload(xml('aohzan_ecodevices_issue35_teleinfo1_xml_excerpt.xml'), context);
    const r = s.readings[0];
    assert.equal(r?.meter, '021030167535');
    assert.equal(r?.tariffOption, 'HC');
    assert.deepEqual(r?.energyIndexes, { HCHC: 33053782, HCHP: 62766899 });
    assert.equal(r?.phases, 3);
    assert.deepEqual(r?.currents, [0, 1, 0]);
    assert.equal(r?.values.DEMAIN, undefined);
    assert.equal(r?.values.ADPS, undefined);
    assert.equal(r?.overrun, false);
  });

  test('teleinfo2.xml with no meter yields no reading', () => {
    const s = decodeEcoDevicesPayload(
      xml('aohzan_ecodevices_issue35_teleinfo2_disconnected_xml_excerpt.xml'),
      context,
    );
    assert.equal(s.readings.length, 0);
  });

  test('the three pages merged decode as one poll', () => {
    const record = {
      ...parseEcoDevicesXml(xml('aohzan_ecodevices_issue35_status_xml_excerpt.xml')),
      ...parseEcoDevicesXml(xml('aohzan_ecodevices_issue35_teleinfo1_xml_excerpt.xml')),
      ...parseEcoDevicesXml(xml('aohzan_ecodevices_issue35_teleinfo2_disconnected_xml_excerpt.xml')),
    };
    const s = decodeEcoDevicesRecord(record, context);
    assert.equal(s.readings.length, 1);
    assert.equal(s.readings[0]?.apparentPower, 292);
  });

  test('ISO-8859-1 bytes, garbage with a newline in DEMAIN, Tempo DEMAIN kept', () => {
    const page = Buffer.from(
      '<?xml version="1.0" encoding="ISO-8859-1"?><response><config_hostname>Compteur \xe9t\xe9</config_hostname>' +
        '<T1_ADCO>021030167535</T1_ADCO><T1_OPTARIF>BBR*</T1_OPTARIF><T1_PTEC>HPJB</T1_PTEC><T1_DEMAIN>BLAN</T1_DEMAIN>' +
        '<T2_ADCO>021030167536</T2_ADCO><T2_OPTARIF>BASE</T2_OPTARIF><T2_PTEC>TH</T2_PTEC><T2_DEMAIN>\nADC</T2_DEMAIN></response>',
      'latin1',
    );
    assert.equal(parseEcoDevicesXml(page).config_hostname, 'Compteur été');
    const s = decodeEcoDevicesPayload(page, context);
    assert.equal(s.readings[0]?.values.DEMAIN, 'BLAN');
    assert.equal(s.readings[0]?.tariffPeriod, 'HPJB');
    assert.equal(s.readings[1]?.values.DEMAIN, undefined);
  });

  test('text that is not the box XML is a clear error', () => {
    assert.throws(() => decodeEcoDevicesPayload('<!-- nothing -->', context), /not an Eco-Devices XML page/);
  });
});

test('XML pages are recognised as bytes too, TIC bytes are not', () => {
  assert.equal(looksLikeEcoDevices(Buffer.from('\r\n  <?xml version="1.0"?><response>')), true);
  assert.equal(looksLikeEcoDevices(Buffer.from('<T1_PAPP>10</T1_PAPP>')), true);
  assert.equal(looksLikeEcoDevices(Buffer.from('\x02\nADCO 021861348497 L\r')), false);
  // A chunk cut just before a `<` checksum is TIC, not XML.
  assert.equal(looksLikeEcoDevices(Buffer.from('<\r\nPAPP 00420 &\r')), false);
  assert.equal(looksLikeEcoDevices(Buffer.alloc(0)), false);
});
