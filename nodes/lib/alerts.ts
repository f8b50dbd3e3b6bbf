import { compareVersions, type PiHealth } from './health';
import type { Reading } from './reading';

/**
 * Alerts on normalized readings, per meter and rule: each (meter, rule) is a state machine that says `raised` once
 * when its condition has held for `raiseAfterMs`, `cleared` once when it has been gone for `clearAfterMs` (so a
 * value hovering at a threshold, or a meter that interleaves frames, does not flap), and `reminder` every
 * `reminderMs` in between. Knows nothing of Node-RED: the node feeds it and words the events.
 */

export type AlertRule =
  'high-consumption' | 'overrun' | 'silence' | 'index' | 'tempo' | 'ejp' | 'backlog' | 'disk' | 'version';
export const ALERT_RULES: readonly AlertRule[] = [
  'high-consumption',
  'overrun',
  'silence',
  'index',
  'tempo',
  'ejp',
  'backlog',
  'disk',
  'version',
];

export interface AlertEvent {
  readonly rule: AlertRule;
  readonly state: 'raised' | 'cleared' | 'reminder';
  /** The meter, or the Pi / Eco-Devices box a silence is about. */
  readonly meter: string;
  /** What was seen: VA, an index, a colour, minutes of silence… */
  readonly value: number | string | null;
  readonly threshold: number | string | null;
  /** When the condition started (ISO). */
  readonly since: string;
  readonly time: string;
  /** Which case of the rule: `tomorrow`/`today` (tempo), `backwards`/`too-fast` (index), `offline`/`unreachable`/`no-reading` (silence), `notice`/`peak` (ejp), `ADPS`/`STGE`/`cut-off` (overrun). */
  readonly kind: string;
}

export interface AlertOptions {
  readonly highConsumption: {
    /** VA; or, when 0, `percent` of the subscribed power (ISOUSC × 200 VA, or PREF kVA). */
    readonly thresholdVA: number;
    readonly percent: number;
    /** The alert clears below this share of the threshold. */
    readonly clearRatio: number;
  } | null;
  readonly overrun: boolean;
  /** No reading from a meter for this long raises a silence (checked by `tick`). */
  readonly silenceMs: number | null;
  readonly index: boolean;
  /** Also raise on a red day itself, not only its notice the day before. */
  readonly tempo: { readonly today: boolean } | null;
  readonly ejp: boolean;
  /** A Pi's health: its oldest unsent reading older than this raises a backlog. */
  readonly backlogMs?: number | null;
  /** A Pi's health: less free disk than this share (%) raises a disk alert. */
  readonly diskPercent?: number | null;
  /** A Pi's health: a package version older than this one (the server's) raises a version alert. */
  readonly version?: string | null;
  /** How long the power must stay above the threshold before high-consumption is raised. */
  readonly raiseAfterMs: number;
  /** How long a condition must stay gone before its alert clears. */
  readonly clearAfterMs: number;
  /** 0: no reminders. */
  readonly reminderMs: number;
}

/** One (meter, rule): what a restart must keep. */
interface RuleState {
  active: boolean;
  /** The condition (or its absence, while active) started here and has held since. */
  pendingSince: number | null;
  since: number;
  lastReminder: number;
  value: number | string | null;
  threshold: number | string | null;
  kind: string;
}

export interface AlertSnapshot {
  readonly rules: Record<string, RuleState>;
  readonly lastSeen: Record<string, number>;
  readonly lastIndex: Record<string, { time: number; values: Record<string, number> }>;
}

/** What a rule sees in one reading: its condition, and what to report. */
interface Observation {
  readonly on: boolean;
  readonly value: number | string | null;
  readonly threshold: number | string | null;
  readonly kind: string;
  /** Clear at once when the condition goes (an index back in order, a reading after a silence). */
  readonly immediate?: boolean;
}

/** The subscribed power in VA: ISOUSC (A) × 200 in historic mode, PREF (kVA) in standard mode. */
export function subscribedVA(reading: Reading): number | null {
  const isousc = reading.values.ISOUSC;
  if (typeof isousc === 'number' && isousc > 0) return isousc * 200;
  const pref = reading.values.PREF;
  if (typeof pref === 'number' && pref > 0) return pref * 1000;
  return null;
}

export class AlertEngine {
  private rules: Record<string, RuleState> = {};
  /** The receiver's clock at the event being handled (reminders count from it). */
  private wall = Date.now();
  private lastSeen: Record<string, number> = {};
  private lastIndex: Record<string, { time: number; values: Record<string, number> }> = {};
  /** Active alerts, counted as they change: a status shows the count after every event, among thousands of meters. */
  private activeAlerts = 0;

  constructor(private readonly options: AlertOptions) {}

  /** The active alerts, for a status. */
  get active(): { meter: string; rule: AlertRule }[] {
    return Object.entries(this.rules)
      .filter(([, s]) => s.active)
      .map(([key]) => {
        const [meter, rule] = splitKey(key);
        return { meter, rule };
      });
  }

  get activeCount(): number {
    return this.activeAlerts;
  }

  snapshot(): AlertSnapshot {
    return structuredClone({ rules: this.rules, lastSeen: this.lastSeen, lastIndex: this.lastIndex });
  }

  restore(snapshot: Partial<AlertSnapshot> | undefined): void {
    if (!snapshot) return;
    this.rules = structuredClone(snapshot.rules ?? {});
    this.lastSeen = structuredClone(snapshot.lastSeen ?? {});
    this.lastIndex = structuredClone(snapshot.lastIndex ?? {});
    this.activeAlerts = Object.values(this.rules).filter((s) => s.active).length;
  }

  /**
   * A reading, received at `now`: every rule it concerns. Durations are measured in the reading's own time (a
   * replayed backlog is judged as it happened); silences and reminders in the receiver's.
   */
  reading(r: Reading, now = Date.now()): AlertEvent[] {
    const at = Date.parse(r.time);
    const events: AlertEvent[] = [];
    this.wall = now;
    this.lastSeen[r.meter] = now;
    const silence = this.rules[key(r.meter, 'silence')];
    if (silence?.active && silence.kind === 'no-reading')
      this.step(events, r.meter, 'silence', now, {
        on: false,
        value: 0,
        threshold: null,
        kind: 'no-reading',
        immediate: true,
      });
    const { highConsumption, overrun, index, tempo, ejp } = this.options;
    if (highConsumption) {
      const o = this.highConsumption(r, highConsumption);
      if (o) this.step(events, r.meter, 'high-consumption', at, o);
    }
    if (overrun) this.step(events, r.meter, 'overrun', at, overrunOf(r));
    if (index) {
      const o = this.index(r, at);
      if (o) this.step(events, r.meter, 'index', at, o);
    }
    if (tempo) {
      const o = tempoOf(r, tempo.today);
      if (o) this.step(events, r.meter, 'tempo', at, o);
    }
    if (ejp) this.step(events, r.meter, 'ejp', at, ejpOf(r));
    return events;
  }

  /** A Pi's status topic changed (its birth, close or will message). */
  piStatus(pi: string, online: boolean, now: number): AlertEvent[] {
    const events: AlertEvent[] = [];
    this.wall = now;
    this.step(events, pi, 'silence', now, {
      on: !online,
      value: online ? 'online' : 'offline',
      threshold: null,
      kind: 'offline',
      immediate: true,
    });
    return events;
  }

  /** ecodevices-in's second output: a box unreachable after N polls, or back. */
  boxEvent(device: string, unreachable: boolean, now: number, since?: string): AlertEvent[] {
    const events: AlertEvent[] = [];
    this.wall = now;
    const at = unreachable && since ? Math.min(now, Date.parse(since) || now) : now;
    this.step(events, device, 'silence', at, {
      on: unreachable,
      value: unreachable ? 'unreachable' : 'back',
      threshold: null,
      kind: 'unreachable',
      immediate: true,
    });
    return events;
  }

  /** A Pi's health (admitted: lib/health.ts): its backlog, its disk, its version. Judged at the Pi's time. */
  health(h: PiHealth, now: number): AlertEvent[] {
    const events: AlertEvent[] = [];
    this.wall = now;
    const at = Date.parse(h.at);
    const { backlogMs, diskPercent, version } = this.options;
    if (backlogMs) {
      const age = h.spool.oldestAgeS ?? 0;
      this.step(events, h.pi, 'backlog', at, {
        on: age * 1000 > backlogMs,
        value: Math.round(age / 60),
        threshold: Math.round(backlogMs / 60_000),
        kind: 'age',
        immediate: true,
      });
    }
    if (diskPercent && h.diskFreeMB !== null && h.diskTotalMB) {
      const free = (h.diskFreeMB / h.diskTotalMB) * 100;
      this.step(events, h.pi, 'disk', at, {
        on: free < diskPercent,
        value: Math.round(free * 10) / 10,
        threshold: diskPercent,
        kind: 'free',
        immediate: true,
      });
    }
    if (version)
      this.step(events, h.pi, 'version', at, {
        on: compareVersions(h.versions.package, version) < 0,
        value: h.versions.package,
        threshold: version,
        kind: 'older',
        immediate: true,
      });
    return events;
  }

  /** The clock: silences of meters that stopped reading, and reminders. */
  tick(now: number): AlertEvent[] {
    const events: AlertEvent[] = [];
    this.wall = now;
    const { silenceMs, reminderMs } = this.options;
    if (silenceMs !== null)
      for (const [meter, seen] of Object.entries(this.lastSeen)) {
        if (now - seen < silenceMs || this.rules[key(meter, 'silence')]?.active) continue;
        this.step(events, meter, 'silence', now, {
          on: true,
          value: Math.round((now - seen) / 60_000),
          threshold: Math.round(silenceMs / 60_000),
          kind: 'no-reading',
          immediate: true,
        });
      }
    if (reminderMs > 0)
      for (const [k, state] of Object.entries(this.rules)) {
        if (!state.active || now - state.lastReminder < reminderMs) continue;
        state.lastReminder = now;
        const [meter, rule] = splitKey(k);
        events.push(this.event(meter, rule, 'reminder', state, now));
      }
    return events;
  }

  private highConsumption(r: Reading, o: NonNullable<AlertOptions['highConsumption']>): Observation | null {
    const power = r.apparentPower;
    if (power === null) return null;
    const subscribed = subscribedVA(r);
    const threshold =
      o.thresholdVA > 0 ? o.thresholdVA : subscribed === null ? null : (subscribed * o.percent) / 100;
    if (threshold === null) return null;
    const state = this.rules[key(r.meter, 'high-consumption')];
    // Hysteresis: once raised, it takes a value below clearRatio × threshold to start clearing.
    const on = state?.active ? power >= threshold * o.clearRatio : power > threshold;
    return { on, value: power, threshold, kind: 'power' };
  }

  private index(r: Reading, at: number): Observation | null {
    const values: Record<string, number> = { ...r.energyIndexes };
    if (typeof r.values.EAST === 'number') values.EAST = r.values.EAST;
    if (Object.keys(values).length === 0) return null;
    const last = this.lastIndex[r.meter];
    this.lastIndex[r.meter] = { time: at, values };
    if (!last || at <= last.time) return null;
    // The most a meter can count in the elapsed time: its subscribed power (or 36 kVA), with a margin.
    const maxWh = ((subscribedVA(r) ?? 36_000) * 1.5 * (at - last.time)) / 3_600_000 + 1000;
    for (const [label, value] of Object.entries(values)) {
      const before = last.values[label];
      if (before === undefined) continue;
      if (value < before)
        return { on: true, value, threshold: before, kind: `backwards:${label}`, immediate: true };
      if (value - before > maxWh)
        return {
          on: true,
          value: value - before,
          threshold: Math.round(maxWh),
          kind: `too-fast:${label}`,
          immediate: true,
        };
    }
    return { on: false, value: null, threshold: null, kind: 'index', immediate: true };
  }

  /** Feed a rule's observation, seen at `at`, into its state machine. */
  private step(events: AlertEvent[], meter: string, rule: AlertRule, at: number, o: Observation): void {
    const k = key(meter, rule);
    // A quiet rule that stays quiet (nearly every reading) holds no state: nothing to create and delete again.
    if (!o.on && this.rules[k] === undefined) return;
    const state = (this.rules[k] ??= {
      active: false,
      pendingSince: null,
      since: at,
      lastReminder: this.wall,
      value: null,
      threshold: null,
      kind: o.kind,
    });
    if (o.on) {
      state.value = o.value;
      state.threshold = o.threshold;
      state.kind = o.kind;
    }
    if (o.on === state.active) state.pendingSince = null;
    else {
      state.pendingSince ??= at;
      // Raising waits only for a level (power above a threshold); a flag (ADPS, a colour) raises at once. Clearing
      // waits, so that frames without the flag in between do not flap.
      const wait = o.immediate
        ? 0
        : state.active
          ? this.options.clearAfterMs
          : rule === 'high-consumption'
            ? this.options.raiseAfterMs
            : 0;
      if (at - state.pendingSince >= wait) {
        state.active = o.on;
        this.activeAlerts += o.on ? 1 : -1;
        if (o.on) {
          state.since = o.immediate ? at : state.pendingSince;
          state.lastReminder = this.wall;
        }
        state.pendingSince = null;
        events.push(this.event(meter, rule, o.on ? 'raised' : 'cleared', state, at));
      }
    }
    if (!state.active && state.pendingSince === null) delete this.rules[k];
  }

  private event(
    meter: string,
    rule: AlertRule,
    s: AlertEvent['state'],
    state: RuleState,
    now: number,
  ): AlertEvent {
    return {
      rule,
      state: s,
      meter,
      value: state.value,
      threshold: state.threshold,
      since: new Date(state.since).toISOString(),
      time: new Date(now).toISOString(),
      kind: state.kind,
    };
  }
}

function key(meter: string, rule: AlertRule): string {
  return `${meter}\u0000${rule}`;
}

function splitKey(k: string): [string, AlertRule] {
  const at = k.lastIndexOf('\u0000');
  return [k.slice(0, at), k.slice(at + 1) as AlertRule];
}

/** ADPS or ADIR1-3 (historic), STGE bit 7 (standard), or the cut-off device open (STGE bits 1-3). */
function overrunOf(r: Reading): Observation {
  const v = r.values;
  for (const label of ['ADPS', 'ADIR1', 'ADIR2', 'ADIR3'])
    if (v[label] !== undefined)
      return { on: true, value: v[label], threshold: v.ISOUSC ?? null, kind: label };
  if (r.status?.referencePowerExceeded)
    return { on: true, value: r.apparentPower, threshold: v.PREF ?? null, kind: 'STGE' };
  if (r.status && r.status.cutOff !== 'closed')
    return { on: true, value: r.status.cutOff, threshold: null, kind: 'cut-off' };
  return { on: false, value: null, threshold: null, kind: 'overrun' };
}

/** Tomorrow announced red (DEMAIN = ROUG, STGE bits 26-27 = 3), or today red; `----` is not announced yet. */
function tempoOf(r: Reading, today: boolean): Observation | null {
  const demain = typeof r.values.DEMAIN === 'string' ? r.values.DEMAIN.trim() : null;
  const tomorrow =
    r.status?.tempoTomorrow ?? (demain === 'ROUG' ? 'ROUGE' : demain === null ? null : 'other');
  const todayColour =
    r.status?.tempoToday ??
    (/^H[CP]JR$/.test(r.tariffPeriod ?? '') ? 'ROUGE' : r.tariffPeriod ? 'other' : null);
  if (tomorrow === null && todayColour === null) return null;
  if (tomorrow === 'ROUGE') return { on: true, value: 'ROUGE', threshold: null, kind: 'tomorrow' };
  if (today && todayColour === 'ROUGE') return { on: true, value: 'ROUGE', threshold: null, kind: 'today' };
  return { on: false, value: null, threshold: null, kind: 'tempo' };
}

/**
 * An EJP notice (PEJP), an EJP peak (PTEC PM..), a mobile peak announced (DPM1-3) or notified and in progress (STGE
 * bits 28-31).
 */
function ejpOf(r: Reading): Observation {
  if (r.values.PEJP !== undefined) return { on: true, value: r.values.PEJP, threshold: null, kind: 'notice' };
  if (r.tariffPeriod === 'PM') return { on: true, value: 'PM', threshold: null, kind: 'peak' };
  if (r.status && r.status.mobilePeak > 0)
    return { on: true, value: `PM${r.status.mobilePeak}`, threshold: null, kind: 'peak' };
  // A mobile peak scheduled by the distributor: its start (DPM1-3) is sent only while one is announced.
  const start = ['DPM1', 'DPM2', 'DPM3'].find((l) => r.horodates?.[l] !== undefined);
  if (start) return { on: true, value: r.horodates![start], threshold: null, kind: 'notice' };
  if (r.status && r.status.mobilePeakNotice > 0)
    return { on: true, value: `PM${r.status.mobilePeakNotice}`, threshold: null, kind: 'notice' };
  return { on: false, value: null, threshold: null, kind: 'ejp' };
}
