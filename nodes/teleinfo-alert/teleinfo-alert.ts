import type { Node, NodeAPI, NodeDef, NodeMessageInFlow } from 'node-red';
import { failInput, ThrottledStatus } from '../node-red';
import { AlertEngine, type AlertEvent, type AlertSnapshot } from '../lib/alerts';
import { admitHealth } from '../lib/health';
import { readingsOf } from '../lib/reading';
import { PACKAGE_VERSION } from '../node-red';

interface AlertDef extends NodeDef {
  highConsumption: boolean;
  thresholdVA: string;
  percent: string;
  clearPercent: string;
  raiseAfter: string;
  clearAfter: string;
  overrun: boolean;
  silence: boolean;
  silenceMinutes: string;
  index: boolean;
  tempo: boolean;
  tempoToday: boolean;
  ejp: boolean;
  reminderMinutes: string;
  /** A Pi's health (from teleinfo-fleet): its oldest unsent reading older than this many minutes. */
  backlog?: boolean;
  backlogMinutes?: string;
  /** Less free disk than this %. */
  disk?: boolean;
  diskPercent?: string;
  /** A Pi on an older package version than this server's. */
  version?: boolean;
  /** The context store that keeps the alerts across restarts ('' = the default one). */
  store: string;
}

/** ecodevices-in's second output. */
interface BoxEvent {
  event: 'unreachable' | 'back';
  device: string;
  since?: string;
}

const CONTEXT_KEY = 'teleinfo-alert';
/** How long the events of a burst wait to be saved together. */
const SAVE_MS = 1000;

/**
 * teleinfo-alert: readings, Pi status and health messages and ecodevices-in's box events in; one message when an alert is
 * raised, one when it is cleared (and reminders), on teleinfo/<meter>/alert/<rule>. The rules are the domain
 * core's (lib/alerts.ts); this node words the events, keeps the state in a context store and runs the clock.
 */
export = function register(RED: NodeAPI): void {
  function TeleinfoAlert(this: Node, config: AlertDef): void {
    RED.nodes.createNode(this, config);
    const node: Node = this; // eslint-disable-line @typescript-eslint/no-this-alias -- used in closures below
    const num = (v: string, fallback: number) =>
      Number.isFinite(Number(v)) && v !== '' ? Number(v) : fallback;
    const engine = new AlertEngine({
      highConsumption: config.highConsumption
        ? {
            thresholdVA: num(config.thresholdVA, 0),
            percent: num(config.percent, 90),
            clearRatio: num(config.clearPercent, 90) / 100,
          }
        : null,
      overrun: config.overrun,
      silenceMs: config.silence ? num(config.silenceMinutes, 10) * 60_000 : null,
      index: config.index,
      tempo: config.tempo ? { today: config.tempoToday } : null,
      ejp: config.ejp,
      raiseAfterMs: num(config.raiseAfter, 60) * 1000,
      clearAfterMs: num(config.clearAfter, 60) * 1000,
      reminderMs: num(config.reminderMinutes, 0) * 60_000,
      backlogMs: config.backlog ? num(config.backlogMinutes ?? '', 30) * 60_000 : null,
      diskPercent: config.disk ? num(config.diskPercent ?? '', 10) : null,
      version: config.version ? PACKAGE_VERSION : null,
    });
    const store = config.store || undefined;
    const context = node.context();
    let last: AlertEvent | null = null;
    let ready = false;
    const waiting: (() => void)[] = [];
    // At most twice a second: a fleet's events come by the hundred, and wording a count costs i18next a plural rule.
    const status = new ThrottledStatus(node, () => {
      const active = engine.activeCount;
      return {
        fill: active > 0 ? 'red' : 'green',
        shape: active > 0 ? 'dot' : 'ring',
        text:
          RED._('teleinfo-alert.status.active', { count: active }) +
          (last ? ` · ${last.meter} ${last.rule} ${last.state}` : ''),
      };
    });
    context.get(CONTEXT_KEY, store, (err: Error | null, saved: unknown) => {
      if (err)
        node.warn(`teleinfo-alert: the saved alerts could not be read (${err.message}); starting with none`);
      else engine.restore(saved as Partial<AlertSnapshot> | undefined);
      ready = true;
      status.schedule();
      for (const run of waiting.splice(0)) run();
    });

    function text(e: AlertEvent): string {
      const params = {
        meter: e.meter,
        value: e.value ?? '',
        threshold: e.threshold ?? '',
        since: e.since,
        kind: e.kind,
      };
      return RED._(`teleinfo-alert.text.${e.rule}.${e.state}`, params);
    }

    function emit(events: AlertEvent[], send: (msg: NodeMessageInFlow[][]) => void): void {
      if (events.length === 0) return;
      last = events[events.length - 1];
      send([
        events.map(
          (e) =>
            ({
              topic: `teleinfo/${e.meter}/alert/${e.rule}`,
              payload: { ...e, text: text(e) },
            }) as unknown as NodeMessageInFlow,
        ),
      ]);
      scheduleSave();
      status.schedule();
    }

    // The state holds every meter seen: saving it costs as much for one event as for many, so the events of one
    // second are saved together (the file store writes to disk every 30 s anyway). A close saves at once.
    let saveTimer: NodeJS.Timeout | null = null;
    function scheduleSave(): void {
      saveTimer ??= setTimeout(save, SAVE_MS);
    }
    function save(done?: () => void): void {
      if (saveTimer) clearTimeout(saveTimer);
      saveTimer = null;
      context.set(CONTEXT_KEY, engine.snapshot(), store, (err?: Error) => {
        if (err) node.warn(`teleinfo-alert: the alerts could not be saved (${err.message})`);
        done?.();
      });
    }

    // The clock of silences and reminders: every 10 s, or finer when they are shorter.
    const periods = [
      10_000,
      num(config.silenceMinutes, 10) * 20_000,
      num(config.reminderMinutes, 0) * 30_000,
    ];
    const clock = setInterval(
      () => emit(engine.tick(Date.now()), (m) => node.send(m)),
      Math.max(500, Math.min(...periods.filter((p) => p > 0))),
    );

    node.on('input', (msg: NodeMessageInFlow, send, done) => {
      const handle = () => {
        const now = Date.now();
        const status = piStatusOf(msg);
        if (status) return finish(engine.piStatus(status.pi, status.online, now));
        const healthOf = typeof msg.topic === 'string' ? /^teleinfo\/([^/]+)\/health$/.exec(msg.topic) : null;
        if (healthOf) {
          const health = admitHealth(healthOf[1], msg.payload, now);
          if (typeof health === 'string')
            return failInput(
              node,
              done,
              `teleinfo-alert: the health of ${healthOf[1].slice(0, 64)}: ${health}`,
              {
                fill: 'red',
                shape: 'ring',
                text: 'teleinfo-alert.status.invalid',
              },
            );
          return finish(engine.health(health, now));
        }
        const box = msg.payload as Partial<BoxEvent> | null;
        if (
          box &&
          typeof box === 'object' &&
          (box.event === 'unreachable' || box.event === 'back') &&
          typeof box.device === 'string'
        )
          return finish(engine.boxEvent(box.device, box.event === 'unreachable', now, box.since));
        const readings = readingsOf(msg.payload);
        if (typeof readings === 'string')
          return failInput(
            node,
            done,
            `teleinfo-alert expects a normalized reading (or an array of them), a Pi status message (online or offline on teleinfo/<pi-id>/status), a Pi's health (on teleinfo/<pi-id>/health) or an ecodevices-in event (unreachable, back); ${readings}`,
            { fill: 'red', shape: 'ring', text: 'teleinfo-alert.status.invalid' },
          );
        finish(readings.flatMap((r) => engine.reading(r, now)));
      };
      const finish = (events: AlertEvent[]) => {
        emit(events, send);
        done();
      };
      // The first messages after a start wait for the saved state, so no alert is raised twice.
      if (ready) handle();
      else waiting.push(handle);
    });

    node.on('close', (_removed: boolean, done: () => void) => {
      clearInterval(clock);
      status.stop();
      save(done);
    });
  }

  /** `online` / `offline` on `teleinfo/<pi-id>/status`, as the Pi flow's birth, close and will messages say. */
  function piStatusOf(msg: NodeMessageInFlow): { pi: string; online: boolean } | null {
    const m = typeof msg.topic === 'string' ? /^teleinfo\/([^/]+)\/status$/.exec(msg.topic) : null;
    const payload = Buffer.isBuffer(msg.payload) ? msg.payload.toString() : msg.payload;
    if (!m || (payload !== 'online' && payload !== 'offline')) return null;
    return { pi: m[1], online: payload === 'online' };
  }

  RED.nodes.registerType('teleinfo-alert', TeleinfoAlert);
};
