import type { Node, NodeAPI, NodeDef, NodeMessageInFlow } from 'node-red';
import type { ReadingAck } from '../lib/acknowledgement';
import { ThrottledStatus } from '../node-red';
import {
  Admission,
  DEFAULT_LIMITS,
  MeterBindings,
  isReadingTopicShape,
  numberingOf,
  parseDeclaredMeters,
  type AdmissionLimits,
} from '../lib/admission';

interface AdmitDef extends NodeDef {
  pastDays: string;
  futureMinutes: string;
  metersPerPi: string;
  maxMessageKB: string;
  /** Meters declared per Pi, one `pi-id: meter meter ...` line each; others are bound on first sight. */
  meters: string;
  /** The context store that keeps the bindings across restarts ('' = the default one). */
  store: string;
}

/** An admitted reading: its Pi, and what teleinfo-ack says to that Pi once it is stored. */
type AdmittedMessage = NodeMessageInFlow & { pi?: string; ack?: ReadingAck };

const CONTEXT_KEY = 'teleinfo-admit';
const SAVE_MS = 1000;
/** A Pi's refusals of one kind reach Catch nodes (and the log) at most this often; the others are counted. */
const REPORT_MS = 1000;
const MAX_REPORTED = 10_000;
/** Messages held while the bindings load (a context store on disk answers within milliseconds). */
const MAX_WAITING = 10_000;

/**
 * teleinfo-admit: messages of an mqtt in on the Pis' reading topics in; each reading a Pi may send, one message
 * each, out; a retained reading's topic to clear on a second output; the numbers of refused readings, settled, on a
 * third (for teleinfo-ack: the Pi need not send them again). Each admitted reading of a Pi that numbers its readings
 * carries `msg.ack` ({pi, stream, seqs}), for teleinfo-ack once it is stored. The rules are the domain core's
 * (lib/admission.ts); this node keeps the meters' bindings in a context store, counts and says what it refused.
 */
export = function register(RED: NodeAPI): void {
  function TeleinfoAdmit(this: Node, config: AdmitDef): void {
    RED.nodes.createNode(this, config);
    const node: Node = this; // eslint-disable-line @typescript-eslint/no-this-alias -- used in closures below
    const positive = (v: string, fallback: number) => (Number(v) > 0 ? Number(v) : fallback);
    const limits: AdmissionLimits = {
      ...DEFAULT_LIMITS,
      pastMs: positive(config.pastDays, DEFAULT_LIMITS.pastMs / 86_400_000) * 86_400_000,
      futureMs: positive(config.futureMinutes, DEFAULT_LIMITS.futureMs / 60_000) * 60_000,
      metersPerPi: Math.floor(positive(config.metersPerPi, DEFAULT_LIMITS.metersPerPi)),
      maxMessageBytes: positive(config.maxMessageKB, DEFAULT_LIMITS.maxMessageBytes / 1024) * 1024,
    };
    let declared: Record<string, string[]>;
    try {
      declared = parseDeclaredMeters(config.meters || '');
    } catch (e) {
      node.error(RED._('teleinfo-admit.errors.meters', { error: (e as Error).message }));
      node.status({ fill: 'red', shape: 'ring', text: 'teleinfo-admit.status.bad-meters' });
      return;
    }
    const store = config.store || undefined;
    const context = node.context();
    let admission: Admission | null = null;
    const waiting: (() => void)[] = [];
    let lastRefusal = '';
    let refused = 0;
    /** When each Pi's last refusal of each kind was reported. */
    const reported = new Map<string, number>();

    const status = new ThrottledStatus(node, () => {
      const c = admission!.counters;
      return {
        fill: refused > 0 ? 'yellow' : 'green',
        shape: 'dot',
        text:
          RED._('teleinfo-admit.status.counts', {
            admitted: c.accepted,
            refused,
            pis: admission!.bindings.pis,
          }) + (lastRefusal ? ` · ${lastRefusal}` : ''),
      };
    });
    node.status({ fill: 'grey', shape: 'ring', text: 'teleinfo-admit.status.loading' });
    context.get(CONTEXT_KEY, store, (err: Error | null, saved: unknown) => {
      if (err) node.warn(RED._('teleinfo-admit.errors.load', { error: err.message }));
      const bindings = new MeterBindings(
        limits,
        declared,
        saved && typeof saved === 'object' ? (saved as Record<string, string[]>) : {},
      );
      admission = new Admission(limits, bindings);
      status.schedule();
      for (const run of waiting.splice(0)) run();
    });

    // New bindings are saved together, within a second (the file store writes to disk every 30 s anyway).
    let saveTimer: NodeJS.Timeout | null = null;
    function save(done?: () => void): void {
      if (saveTimer) clearTimeout(saveTimer);
      saveTimer = null;
      if (!admission?.bindings.changed) return done?.();
      admission.bindings.changed = false;
      context.set(CONTEXT_KEY, admission.bindings.toJSON(), store, (err?: Error) => {
        if (err) node.warn(RED._('teleinfo-admit.errors.save', { error: err.message }));
        done?.();
      });
    }

    node.on('input', (msg: NodeMessageInFlow & { retain?: boolean }, send, done) => {
      const handle = () => {
        const payload = msg.payload;
        // The empty retained message that clears a topic comes back from the broker too: nothing to admit.
        if (
          msg.retain === true &&
          (payload === '' || (payload instanceof Uint8Array && payload.length === 0))
        )
          return done();
        const outcome = admission!.admit(
          String(msg.topic ?? ''),
          payload,
          Date.now(),
          numberingOf((msg as { userProperties?: unknown }).userProperties),
        );
        const { pi, numbered } = outcome;
        const out = outcome.readings.map((reading, i) => {
          const m = (i === 0 ? msg : { ...msg, _msgid: RED.util.generateId() }) as AdmittedMessage;
          m.payload = reading;
          m.pi = pi ?? undefined;
          if (numbered && pi) m.ack = { pi, stream: numbered.stream, seqs: [numbered.seqs[i]] };
          return m;
        });
        const settled =
          numbered && pi && numbered.settled.length > 0
            ? ({
                _msgid: RED.util.generateId(),
                ack: { pi, stream: numbered.stream, seqs: numbered.settled },
              } as NodeMessageInFlow)
            : null;
        // Whatever its content, a retained message on a reading topic is cleared: readings are never retained.
        const clear =
          msg.retain === true && isReadingTopicShape(String(msg.topic ?? ''))
            ? ({
                _msgid: RED.util.generateId(),
                topic: msg.topic,
                payload: '',
                retain: true,
                qos: 1,
              } as NodeMessageInFlow)
            : null;
        if (clear) admission!.counters.retained++;
        if (out.length > 0 || clear || settled) send([out.length > 0 ? out : null, clear, settled]);
        if (admission!.bindings.changed) saveTimer ??= setTimeout(save, SAVE_MS);
        status.schedule();
        if (outcome.refusals.length === 0) return done();
        refused += outcome.refusals.length;
        const [first] = outcome.refusals;
        lastRefusal = first.reason;
        // A hostile Pi may send thousands a second: each is counted, one a second per Pi and kind is an error.
        const key = `${outcome.pi ?? ''} ${first.reason}`;
        const now = Date.now();
        if ((reported.get(key) ?? 0) > now - REPORT_MS) return done();
        if (reported.size >= MAX_REPORTED) reported.clear();
        reported.set(key, now);
        const more = outcome.refusals.length > 1 ? ` (and ${outcome.refusals.length - 1} more)` : '';
        done(new Error(`refused: ${first.detail}${more}`));
      };
      if (admission) handle();
      else if (waiting.length < MAX_WAITING) waiting.push(handle);
      else done(new Error(RED._('teleinfo-admit.errors.loading')));
    });

    node.on('close', (_removed: boolean, done: () => void) => {
      status.stop();
      save(done);
    });
  }

  RED.nodes.registerType('teleinfo-admit', TeleinfoAdmit);
};
