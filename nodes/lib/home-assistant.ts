import type { Reading } from './reading';
import { labelSpec, type TicMode, type Unit } from './tic/labels';

/**
 * Home Assistant MQTT discovery for the meters we read: one retained config per entity on
 * `<prefix>/<component>/teleinfo_<meter>/<object>/config`, whose state topic is the reading topic itself and whose
 * value template picks the value out of the normalized reading. Entity ids are built from the meter id and the
 * label only, and never change: Home Assistant keys its Energy history on them.
 */

export interface DiscoveryOptions {
  /** Home Assistant's discovery prefix. */
  readonly prefix: string;
  /** The Pi's retained online/offline topic; `{pi}` is the reading topic's second level. Empty: no availability. */
  readonly availabilityTopic: string;
  /** The device's name in Home Assistant; `{meter}` is replaced. The user may rename it there too. */
  readonly deviceName: string;
}

export interface DiscoveryMessage {
  readonly topic: string;
  /** The config as JSON, or '' to remove the entity. */
  readonly payload: string;
}

type Component = 'sensor' | 'binary_sensor';

interface EntityConfig {
  readonly component: Component;
  readonly object: string;
  readonly config: Record<string, unknown>;
}

/** What we know of a meter, kept across restarts so a clear still finds every config. */
export interface KnownMeter {
  stateTopic: string;
  source: Reading['source'];
  model: string;
  labels: string[];
  alerts: string[];
  counter?: string;
  lastSeen: number;
}

export type DiscoverySnapshot = Record<string, KnownMeter>;

const ORIGIN = { name: 'node-red-contrib-teleinfo', url: 'https://github.com/node-red-contrib-teleinfo' };

/** Units as the TIC sends them, and what Home Assistant calls them. */
const BY_UNIT: Record<
  Unit,
  { device_class: string; state_class: string; unit: string; scale?: number } | undefined
> = {
  Wh: { device_class: 'energy', state_class: 'total_increasing', unit: 'Wh' },
  VArh: { device_class: 'reactive_energy', state_class: 'total_increasing', unit: 'varh' },
  VA: { device_class: 'apparent_power', state_class: 'measurement', unit: 'VA' },
  kVA: { device_class: 'apparent_power', state_class: 'measurement', unit: 'VA', scale: 1000 },
  W: { device_class: 'power', state_class: 'measurement', unit: 'W' },
  A: { device_class: 'current', state_class: 'measurement', unit: 'A' },
  V: { device_class: 'voltage', state_class: 'measurement', unit: 'V' },
  min: { device_class: 'duration', state_class: 'measurement', unit: 'min' },
  // Decalitres (GAZ, AUTRE on a concentrator): m³ is what Home Assistant's gas class takes.
  dal: { device_class: 'gas', state_class: 'total_increasing', unit: 'm³', scale: 0.01 },
};

/** Labels a meter sends only now and then (an overrun, an EJP notice): absent means 0, not unknown. */
const INTERMITTENT = new Set(['ADPS', 'ADIR1', 'ADIR2', 'ADIR3', 'PEJP']);

/** The tariff periods PTEC can take (without its dots), as the normalized reading gives them. */
export const PTEC_PERIODS = ['TH', 'HC', 'HP', 'HN', 'PM', 'HCJB', 'HPJB', 'HCJW', 'HPJW', 'HCJR', 'HPJR'];
export const TEMPO_STATES = ['BLEU', 'BLANC', 'ROUGE', 'INCONNU'];

const slug = (s: string) => s.toLowerCase().replace(/[^a-z0-9]+/g, '_');
const v = (label: string) => `value_json['values']['${label}']`;
/**
 * A label missing from a frame (a three-phase meter's short overrun frames carry five labels) renders 'None',
 * which Home Assistant takes as unknown; written out, so Jinja and every Jinja-like engine say the same.
 */
const orNone = (label: string, expression: string) =>
  `{{ ${expression} if ${v(label)} is defined else 'None' }}`;

export class HaDiscovery {
  private readonly meters: Map<string, KnownMeter>;
  /** The labels of each meter as a set, to check a reading against without building anything. */
  private readonly labelSets = new Map<string, Set<string>>();

  constructor(
    private readonly options: DiscoveryOptions,
    snapshot: DiscoverySnapshot = {},
  ) {
    this.meters = new Map(Object.entries(snapshot));
  }

  get size(): number {
    return this.meters.size;
  }

  snapshot(): DiscoverySnapshot {
    return Object.fromEntries(this.meters);
  }

  /** A reading seen on `topic`: the configs of its meter if anything about them is new, else none. */
  observe(reading: Reading, topic: string, now: number): DiscoveryMessage[] {
    const known = this.meters.get(reading.meter);
    // Every reading of the server passes here: the common case (nothing new) costs a lookup per label.
    if (known && known.stateTopic === topic && this.labelsKnown(reading.meter, known, reading)) {
      known.lastSeen = now;
      return [];
    }
    const model = modelOf(reading);
    const labels = Object.keys(reading.values);
    const meter: KnownMeter = {
      stateTopic: topic,
      source: reading.source,
      model,
      labels: [...new Set([...(known?.labels ?? []), ...labels])].sort(),
      alerts: known?.alerts ?? [],
      ...(reading.counter ? { counter: reading.counter.name } : {}),
      lastSeen: now,
    };
    this.meters.set(reading.meter, meter);
    this.labelSets.delete(reading.meter);
    return this.messages(reading.meter, meter);
  }

  private labelsKnown(id: string, known: KnownMeter, reading: Reading): boolean {
    let set = this.labelSets.get(id);
    if (!set) this.labelSets.set(id, (set = new Set(known.labels)));
    for (const label in reading.values) if (!set.has(label)) return false;
    return modelOf(reading) === known.model;
  }

  /** An alert state of teleinfo-alert, published on `topic`: a binary sensor for each (meter, rule). */
  observeAlert(meter: string, rule: string, topic: string): DiscoveryMessage[] {
    const known = this.meters.get(meter);
    if (!known || known.alerts.includes(rule)) return [];
    known.alerts = [...known.alerts, rule].sort();
    return this.messages(meter, known, [alertEntity(meter, rule, topic)]);
  }

  /** Every config again: Home Assistant came back, or the broker did. */
  announceAll(): DiscoveryMessage[] {
    return [...this.meters.entries()].flatMap(([meter, known]) => this.messages(meter, known));
  }

  /** Empty retained configs for every entity of the meter (Home Assistant removes them), and forget it. */
  clear(meter: string): DiscoveryMessage[] {
    const known = this.meters.get(meter);
    if (!known) return [];
    this.meters.delete(meter);
    this.labelSets.delete(meter);
    return this.messages(meter, known).map((m) => ({ topic: m.topic, payload: '' }));
  }

  /** Meters silent for longer than `ms`: still announced (never removed silently), but worth saying. */
  silentSince(now: number, ms: number): string[] {
    return [...this.meters.entries()].filter(([, k]) => now - k.lastSeen > ms).map(([m]) => m);
  }

  private availabilityFor(topic: string): string | null {
    const pattern = this.options.availabilityTopic;
    if (!pattern) return null;
    if (!pattern.includes('{pi}')) return pattern;
    const pi = topic.split('/')[1];
    return pi ? pattern.replace(/\{pi\}/g, pi) : null;
  }

  /** The configs of `entities` (by default every entity of the meter), with the device and availability. */
  private messages(meter: string, known: KnownMeter, entities?: EntityConfig[]): DiscoveryMessage[] {
    const device = {
      identifiers: [meter],
      manufacturer: known.counter ? 'GCE Electronics' : 'Enedis',
      model: known.model,
      name: this.options.deviceName.replace(/\{meter\}/g, meter),
    };
    // From the options in force, so a changed availability pattern applies to meters announced before it.
    const availabilityTopic = this.availabilityFor(known.stateTopic);
    const common = (entity: EntityConfig): EntityConfig => ({
      ...entity,
      config: {
        ...entity.config,
        state_topic: entity.config.state_topic ?? known.stateTopic,
        ...(availabilityTopic && entity.config.state_topic === undefined
          ? {
              availability: [
                {
                  topic: availabilityTopic,
                  payload_available: 'online',
                  payload_not_available: 'offline',
                },
              ],
            }
          : {}),
        device,
        origin: ORIGIN,
      },
    });
    const all = entities ?? [
      ...meterEntities(meter, known),
      ...known.alerts.map((rule) => alertEntity(meter, rule, alertTopic(meter, rule))),
    ];
    return all.map(common).map((e) => message(this.options.prefix, meter, e));
  }
}

/** teleinfo-alert publishes on teleinfo/<meter>/alert/<rule>. */
export function alertTopic(meter: string, rule: string): string {
  return `teleinfo/${meter}/alert/${rule}`;
}

function message(prefix: string, meter: string, e: EntityConfig): DiscoveryMessage {
  return {
    topic: `${prefix}/${e.component}/teleinfo_${slug(meter)}/${e.object}/config`,
    payload: JSON.stringify(e.config),
  };
}

/** `Linky (TIC standard), TEMPO`, `TIC historic, HC`, `Eco-Devices T1, BASE`. */
function modelOf(r: Reading): string {
  if (r.counter) return `Eco-Devices pulse counter ${r.counter.input}`;
  const source =
    r.source === 'tic-standard'
      ? 'Linky (TIC standard)'
      : r.source === 'tic-historic'
        ? 'TIC historic'
        : 'Eco-Devices';
  return r.tariffOption ? `${source}, ${r.tariffOption}` : source;
}

function entity(
  component: Component,
  meter: string,
  object: string,
  name: string,
  config: Record<string, unknown>,
): EntityConfig {
  const id = `teleinfo_${slug(meter)}_${object}`;
  return {
    component,
    object,
    config: { name, unique_id: id, default_entity_id: `${component}.${id}`, ...config },
  };
}

function meterEntities(meter: string, known: KnownMeter): EntityConfig[] {
  if (known.counter) return counterEntities(meter, known);
  const mode: TicMode = known.source === 'tic-standard' ? 'standard' : 'historic';
  const out = known.labels.flatMap((label) => labelEntity(meter, mode, label));
  out.push(
    entity('binary_sensor', meter, 'overrun', 'Subscribed power exceeded', {
      device_class: 'problem',
      value_template: "{{ 'ON' if value_json['overrun'] else 'OFF' }}",
    }),
    entity('sensor', meter, 'tariff_period', 'Tariff period', {
      ...(mode === 'historic'
        ? { device_class: 'enum', options: PTEC_PERIODS }
        : { icon: 'mdi:clock-outline' }),
      value_template: "{{ value_json['tariffPeriod'] if value_json['tariffPeriod'] else 'None' }}",
    }),
  );
  if (known.labels.includes('DEMAIN') || known.model.endsWith('TEMPO')) {
    for (const day of ['today', 'tomorrow'] as const) {
      out.push(
        entity(
          'sensor',
          meter,
          `tempo_${day}`,
          day === 'today' ? 'Tempo colour today' : 'Tempo colour tomorrow',
          {
            device_class: 'enum',
            options: TEMPO_STATES,
            value_template: `{{ value_json['tempo']['${day}'] if value_json['tempo'] is defined and value_json['tempo']['${day}'] else 'INCONNU' }}`,
          },
        ),
      );
    }
  }
  return out;
}

function labelEntity(meter: string, mode: TicMode, label: string): EntityConfig[] {
  const spec = labelSpec(mode, label);
  const object = slug(label);
  const name = `${spec.description[0].toUpperCase()}${spec.description.slice(1)} (${label})`;
  if (label === 'DATE') {
    return [
      entity('sensor', meter, object, 'Meter clock (DATE)', {
        device_class: 'timestamp',
        entity_category: 'diagnostic',
        value_template: "{{ value_json['time'] }}",
      }),
    ];
  }
  const ha = spec.unit ? BY_UNIT[spec.unit] : undefined;
  if (ha) {
    const value = ha.scale ? `${v(label)} * ${ha.scale}` : v(label);
    const template = INTERMITTENT.has(label)
      ? `{{ ${value} if ${v(label)} is defined else 0 }}`
      : orNone(label, value);
    return [
      entity('sensor', meter, object, name, {
        device_class: ha.device_class,
        state_class: ha.state_class,
        unit_of_measurement: ha.unit,
        value_template: template,
      }),
    ];
  }
  // Codes, ids and bit fields: kept as diagnostics, as the meter sends them.
  const template = orNone(label, spec.kind === 'int' ? v(label) : `(${v(label)} | trim)`);
  return [entity('sensor', meter, object, name, { entity_category: 'diagnostic', value_template: template })];
}

function counterEntities(meter: string, known: KnownMeter): EntityConfig[] {
  // The unit of a pulse counter is whatever its divider makes it: no device class is claimed.
  return known.labels.map((label) =>
    entity('sensor', meter, slug(label), `${known.counter} ${label}`, {
      ...(label === 'index' ? { state_class: 'total_increasing' } : { state_class: 'measurement' }),
      value_template: orNone(label, v(label)),
    }),
  );
}

function alertEntity(meter: string, rule: string, topic: string): EntityConfig {
  return entity('binary_sensor', meter, `alert_${slug(rule)}`, `Alert: ${rule}`, {
    device_class: 'problem',
    state_topic: topic,
    value_template: "{{ 'ON' if value_json['state'] == 'raised' else 'OFF' }}",
  });
}
