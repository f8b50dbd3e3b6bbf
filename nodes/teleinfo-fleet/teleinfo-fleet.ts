import type { Node, NodeAPI, NodeDef, NodeMessageInFlow } from 'node-red';
import type { InfluxServerNode } from '../influxdb-teleinfo-server/types';
import { admitHealth, healthLine } from '../lib/health';
import { failInput, ThrottledStatus } from '../node-red';

interface FleetDef extends NodeDef {
  server: string;
  measurement: string;
}

/** Pis whose last health is remembered (for the rate limit); past it, the oldest is forgotten. */
const MAX_PIS = 100_000;
/** A Pi's health messages closer than this in the Pi's own time are refused: a Pi sends one a minute. */
const MIN_GAP_MS = 5000;
/** Points waiting for InfluxDB at most; past it, the oldest are dropped and counted. */
const MAX_WAITING = 10_000;
const FLUSH_MS = 1000;

/**
 * teleinfo-fleet: the Pis' health messages in (an mqtt in on teleinfo/+/health), each checked (lib/health.ts:
 * size, fields, the id of its topic, its time, at most one per Pi per 5 s of the Pi's time), stored in InfluxDB
 * (`teleinfo_health`, tag `pi`) for the dashboard's fleet view, and passed on (for teleinfo-alert).
 */
export = function register(RED: NodeAPI): void {
  function TeleinfoFleet(this: Node, config: FleetDef): void {
    RED.nodes.createNode(this, config);
    const node: Node = this; // eslint-disable-line @typescript-eslint/no-this-alias -- used in closures below
    const server = RED.nodes.getNode(config.server) as InfluxServerNode | null;
    const database = server?.database ?? null;
    const measurement = config.measurement || 'teleinfo_health';
    const lastAt = new Map<string, number>();
    const counters = { refused: 0, stored: 0, dropped: 0 };
    let waiting: string[] = [];
    let lastError = '';
    let lastRefusal = '';
    const abort = new AbortController();
    let flushing: Promise<void> = Promise.resolve();

    const status = new ThrottledStatus(node, () => ({
      fill: lastError || counters.refused > 0 || counters.dropped > 0 ? 'yellow' : 'green',
      shape: 'dot',
      text: RED._('teleinfo-fleet.status.counts', {
        pis: lastAt.size,
        stored: counters.stored,
        refused: counters.refused,
        error: lastError || lastRefusal,
      }),
    }));
    if (!database)
      node.status({
        fill: 'red',
        shape: 'ring',
        text: server ? 'teleinfo-fleet.status.notV1' : 'teleinfo-fleet.status.noServer',
      });

    const flush = () => {
      if (!database || waiting.length === 0) return;
      const lines = waiting;
      waiting = [];
      flushing = database.write('', lines, abort.signal).then(
        () => {
          counters.stored += lines.length;
          lastError = '';
          status.schedule();
        },
        (e: Error) => {
          if (abort.signal.aborted) return;
          if (e.message !== lastError)
            node.warn(`teleinfo-fleet: ${e.message} (health points kept and retried)`);
          lastError = e.message;
          // Kept for the next flush, within the bound: the newest are worth more than the oldest.
          waiting = [...lines, ...waiting];
          drop();
          status.schedule();
        },
      );
    };
    const drop = () => {
      if (waiting.length <= MAX_WAITING) return;
      counters.dropped += waiting.length - MAX_WAITING;
      waiting = waiting.slice(-MAX_WAITING);
    };
    const timer = setInterval(flush, FLUSH_MS);

    node.on('input', (msg: NodeMessageInFlow, send, done) => {
      const now = Date.now();
      const pi =
        typeof msg.topic === 'string' ? /^teleinfo\/([^/]{1,64})\/health$/.exec(msg.topic)?.[1] : undefined;
      const health = pi === undefined ? 'not on teleinfo/<pi-id>/health' : admitHealth(pi, msg.payload, now);
      const refuse = (why: string) => {
        counters.refused++;
        lastRefusal = why;
        status.schedule();
        failInput(node, done, `teleinfo-fleet: ${why}`, {
          fill: 'red',
          shape: 'ring',
          text: RED._('teleinfo-fleet.status.refused', { count: counters.refused }),
        });
      };
      if (typeof health === 'string') return refuse(health);
      const at = Date.parse(health.at);
      const before = lastAt.get(health.pi);
      // The retained copy of the last one, again (a reconnection, a second subscription): nothing new.
      if (at === before) return done();
      if (before !== undefined && Math.abs(at - before) < MIN_GAP_MS)
        return refuse(`${health.pi}: two health messages within 5 s`);
      lastAt.delete(health.pi);
      lastAt.set(health.pi, Math.max(at, before ?? 0));
      if (lastAt.size > MAX_PIS) lastAt.delete(lastAt.keys().next().value as string);
      if (database) {
        waiting.push(healthLine(health, measurement));
        drop();
      }
      status.schedule();
      send({ ...msg, topic: `teleinfo/${health.pi}/health`, payload: health });
      done();
    });

    node.on('close', (_removed: boolean, done: () => void) => {
      clearInterval(timer);
      status.stop();
      flush();
      // The last points have a second to reach InfluxDB.
      const cut = setTimeout(() => abort.abort(), 1000);
      void flushing.finally(() => {
        clearTimeout(cut);
        done();
      });
    });
  }

  RED.nodes.registerType('teleinfo-fleet', TeleinfoFleet);
};
