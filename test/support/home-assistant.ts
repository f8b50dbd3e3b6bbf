import nunjucks from 'nunjucks';
import { TeleinfoParser } from '../../nodes/lib/teleinfo-parser';
import type { Reading } from '../../nodes/lib/reading';
import { SimulatedMeter } from '../../nodes/lib/simulator/meter';
import { encodeTicFrame } from '../../nodes/lib/tic/encoder';
import { fixture, textCapture } from './fixtures';

/**
 * What Home Assistant's MQTT integration checks in a discovery config, written from its documentation
 * (MQTT sensor and binary sensor, sensor device classes and their units), independently of our code.
 */
const SENSOR_UNITS: Record<string, string[] | null> = {
  energy: ['Wh', 'kWh', 'MWh', 'GWh', 'TWh', 'J', 'kJ', 'MJ', 'GJ', 'cal', 'kcal', 'Mcal', 'Gcal'],
  reactive_energy: ['varh', 'kvarh'],
  apparent_power: ['VA', 'mVA', 'kVA'],
  power: ['mW', 'W', 'kW', 'MW', 'GW', 'TW'],
  current: ['A', 'mA'],
  voltage: ['V', 'mV', 'µV', 'kV', 'MV'],
  duration: ['d', 'h', 'min', 's', 'ms', 'µs'],
  gas: ['m³', 'ft³', 'CCF', 'L'],
  timestamp: null,
  enum: null,
};
/** Device classes whose value accumulates: Home Assistant refuses `measurement` for them. */
const TOTALS = new Set(['energy', 'reactive_energy', 'gas']);
const STATE_CLASSES = new Set(['measurement', 'total', 'total_increasing']);
const BINARY_CLASSES = new Set(['problem', 'power', 'plug', 'safety', 'connectivity', 'running']);

export interface HaConfig {
  name?: string | null;
  unique_id: string;
  default_entity_id?: string;
  state_topic: string;
  value_template?: string;
  device_class?: string;
  state_class?: string;
  unit_of_measurement?: string;
  options?: string[];
  entity_category?: string;
  availability?: { topic: string; payload_available?: string; payload_not_available?: string }[];
  device?: { identifiers?: string[]; manufacturer?: string; model?: string; name?: string };
}

/** Problems Home Assistant would find in a config published on `topic`; empty when it would accept it. */
export function schemaProblems(topic: string, c: HaConfig): string[] {
  const p: string[] = [];
  const m = /^homeassistant\/(sensor|binary_sensor)\/([A-Za-z0-9_-]+)\/([A-Za-z0-9_-]+)\/config$/.exec(topic);
  if (!m) return [`topic ${topic} is not <prefix>/<component>/<node_id>/<object_id>/config`];
  const component = m[1];
  if (typeof c.state_topic !== 'string' || c.state_topic === '' || /[+#]/.test(c.state_topic))
    p.push('state_topic missing or a wildcard');
  if (typeof c.unique_id !== 'string' || c.unique_id === '') p.push('no unique_id');
  if (
    c.default_entity_id !== undefined &&
    !new RegExp(`^${component}\\.[a-z0-9_]+$`).test(c.default_entity_id)
  )
    p.push(`default_entity_id ${c.default_entity_id} is not ${component}.<slug>`);
  if (!c.device || !Array.isArray(c.device.identifiers) || c.device.identifiers.length === 0)
    p.push('device without identifiers');
  for (const a of c.availability ?? []) if (!a.topic) p.push('availability without topic');
  if (c.entity_category !== undefined && c.entity_category !== 'diagnostic')
    p.push(`entity_category ${c.entity_category} (a sensor can only be diagnostic)`);
  if (component === 'binary_sensor') {
    if (c.device_class !== undefined && !BINARY_CLASSES.has(c.device_class))
      p.push(`binary_sensor device_class ${c.device_class}`);
    return p;
  }
  if (c.state_class !== undefined && !STATE_CLASSES.has(c.state_class))
    p.push(`state_class ${c.state_class}`);
  if (c.device_class !== undefined) {
    if (!(c.device_class in SENSOR_UNITS)) p.push(`unknown device_class ${c.device_class}`);
    const units = SENSOR_UNITS[c.device_class];
    if (units && !units.includes(c.unit_of_measurement ?? ''))
      p.push(`unit ${c.unit_of_measurement} not allowed for ${c.device_class}`);
    if (units === null && c.unit_of_measurement !== undefined) p.push(`${c.device_class} takes no unit`);
    if (TOTALS.has(c.device_class) && c.state_class === 'measurement')
      p.push(`${c.device_class} cannot be a measurement`);
    if (c.device_class === 'enum') {
      if (!Array.isArray(c.options) || c.options.length === 0) p.push('enum without options');
      if (c.state_class !== undefined) p.push('enum with a state_class');
    }
  }
  if (c.options !== undefined && c.device_class !== 'enum') p.push('options without the enum device_class');
  return p;
}

const env = new nunjucks.Environment(null, { autoescape: false, throwOnUndefined: false });

/** A value_template rendered as Home Assistant does, on the JSON a state topic carries. */
export function render(template: string, payload: unknown): string {
  return env.renderString(template, { value_json: payload }).trim();
}

/** Readings of the meters the captures and the simulator give: historic and standard, mono, three-phase, producer. */
export function sampleReadings(): Reading[] {
  const decode = (bytes: Buffer | string) =>
    new TeleinfoParser({ mode: 'auto', emit: 'all', intervalSeconds: 0, labels: [], device: 'x' }).parse(
      bytes,
      's',
      new Date('2026-01-15T10:00:00Z'),
    ).readings;
  // The fullest frame of a capture (text captures end on a partial one).
  const last = (rs: Reading[]) =>
    rs.reduce((a, b) => (Object.keys(b.values).length >= Object.keys(a.values).length ? b : a));
  const simulated = (
    contract: 'HC' | 'TEMPO',
    phases: 1 | 3,
    adco: string,
    mode: 'historic' | 'standard',
  ) => {
    const meter = new SimulatedMeter({ adco, contract, phases, isousc: 45, seed: 3, origin: Date.now() });
    const now = Date.parse('2026-01-15T10:00:00Z');
    return last(
      decode(
        encodeTicFrame(mode, mode === 'historic' ? meter.historicGroups(now) : meter.standardGroups(now)),
      ),
    );
  };
  const threePhaseProducer = last(
    decode(textCapture('openhab_linky-tic-mode-standard-three-phase-prod.txt', false)),
  );
  // The openHAB captures share a made-up id: this one gets its own, so the two meters stay two.
  threePhaseProducer.meter = '123456789013';
  return [
    last(decode(fixture('tic', 'pyteleinfo_captured_frames.bin'))), // historic Tempo, mono
    last(decode(textCapture('openhab_cbetm-base-option-1.txt', false))), // historic BASE, three-phase
    last(decode(textCapture('openhab_cbetm-ejp-option-1.txt', false))), // historic EJP, three-phase
    last(decode(textCapture('unresolved_arduino_comment_historic_hc_adps.txt', false))), // historic HC, overrun
    last(decode(fixture('tic', 'goteleinfo_reader_test_standard.bin'))), // standard mono
    last(decode(textCapture('openhab_linky-tic-mode-standard-single-phase-prod.txt', false))), // standard producer
    threePhaseProducer, // standard three-phase producer
    simulated('HC', 1, '021900000001', 'historic'),
    simulated('TEMPO', 3, '021900000002', 'standard'),
  ];
}
