import type { Node, NodeAPI, NodeDef, NodeMessageInFlow } from 'node-red';
import type { InfluxServerNode } from '../influxdb-teleinfo-server/types';
import { failInput, ThrottledStatus } from '../node-red';
import { readingsOf } from '../lib/reading';
import { Rollup } from '../lib/rollup/rollup';

interface RollupDef extends NodeDef {
  server: string;
  measurement: string;
  retentionPolicy: string;
  /** Seconds between passes. */
  interval: string;
  /** Seconds between two recomputations of the current hour (past hours go at the next pass). */
  currentEvery?: string;
  /** An hour's energy above this (kWh, per tariff period) is a swapped meter, not consumption. */
  maxKWh: string;
}

/** Readings further in the future than this are not a meter's: their hours are not marked. */
const FUTURE_MS = 3_600_000;

/**
 * teleinfo-rollup: the readings a Complete node saw stored by influx-teleinfo-out in, rollups out to InfluxDB 1.x
 * (hourly, daily and monthly energy by tariff period, apparent power), recomputed every `interval` seconds for the
 * hours that got readings, however late they came, the current hour every `currentEvery` seconds (lib/rollup).
 */
export = function register(RED: NodeAPI): void {
  function TeleinfoRollup(this: Node, config: RollupDef): void {
    RED.nodes.createNode(this, config);
    const node: Node = this; // eslint-disable-line @typescript-eslint/no-this-alias -- used in closures below
    const server = RED.nodes.getNode(config.server) as InfluxServerNode | null;
    const intervalMs = (Number(config.interval) > 0 ? Number(config.interval) : 60) * 1000;
    const database = server?.database ?? null;
    if (!database) {
      node.status({
        fill: 'red',
        shape: 'ring',
        text: server
          ? (server.configError ?? 'teleinfo-rollup.status.notV1')
          : 'teleinfo-rollup.status.noServer',
      });
      node.on('input', (_msg, _send, done) => done());
      return;
    }
    const rollup = new Rollup(database, {
      measurement: config.measurement || 'teleinfo',
      retentionPolicy: config.retentionPolicy || 'forever',
      maxWhPerHour: (Number(config.maxKWh) > 0 ? Number(config.maxKWh) : 40) * 1000,
      currentHourEveryMs: (Number(config.currentEvery) > 0 ? Number(config.currentEvery) : 600) * 1000,
    });
    let invalid = 0;
    let lastError = '';
    const abort = new AbortController();
    let timer: NodeJS.Timeout | null = null;
    let running: Promise<void> = Promise.resolve();

    const status = new ThrottledStatus(node, () => {
      const c = rollup.counters;
      const text = RED._('teleinfo-rollup.status.counts', {
        hours: c.hours,
        waiting: rollup.waiting(),
        anomalies: c.resets + c.implausible,
      });
      if (lastError)
        return {
          fill: 'yellow',
          shape: 'ring',
          text: RED._('teleinfo-rollup.status.failing', { error: lastError, waiting: rollup.waiting() }),
        };
      return { fill: invalid > 0 || c.dropped > 0 ? 'yellow' : 'green', shape: 'dot', text };
    });

    async function pass(): Promise<void> {
      let again = false;
      try {
        again = await rollup.pass(abort.signal);
        lastError = '';
      } catch (e) {
        if (abort.signal.aborted) return;
        const message = (e as Error).message;
        // Once per kind of failure: InfluxDB away for an hour is one error, not sixty.
        // To Catch nodes too, with what waits.
        if (message !== lastError)
          node.error(`teleinfo-rollup: ${message} (the hours stay marked, retried)`, {
            payload: { error: message, waiting: rollup.waiting() },
          });
        lastError = message;
      }
      status.schedule();
      if (!abort.signal.aborted) schedule(again ? 0 : intervalMs);
    }
    function schedule(ms: number): void {
      timer = setTimeout(() => {
        running = pass();
      }, ms);
    }
    // Readings stored before this node ran (an upgrade) are rolled up first, from each meter's first one.
    running = rollup.backfill(Date.now(), abort.signal).then(
      (marked) => {
        if (marked)
          node.log('teleinfo-rollup: no rollups yet: every stored reading is rolled up, oldest first');
        schedule(marked ? 0 : intervalMs);
      },
      (e: Error) => {
        if (abort.signal.aborted) return;
        lastError = e.message;
        node.error(`teleinfo-rollup: ${e.message} (looking for readings stored before the rollups)`, {
          payload: { error: e.message },
        });
        status.schedule();
        schedule(intervalMs);
      },
    );

    node.on('input', (msg: NodeMessageInFlow, _send, done) => {
      const now = Date.now();
      const readings = readingsOf(msg.payload);
      if (typeof readings === 'string') {
        invalid++;
        return failInput(node, done, `teleinfo-rollup: ${readings}`, {
          fill: 'red',
          shape: 'ring',
          text: RED._('teleinfo-rollup.status.invalid', { count: invalid }),
        });
      }
      for (const r of readings) {
        const time = Date.parse(r.time);
        if (Number.isFinite(time) && time <= now + FUTURE_MS) rollup.mark(r.meter, time, now);
      }
      status.schedule();
      done();
    });

    node.on('close', (_removed: boolean, done: () => void) => {
      abort.abort();
      if (timer) clearTimeout(timer);
      status.stop();
      void running.finally(done);
    });
  }

  RED.nodes.registerType('teleinfo-rollup', TeleinfoRollup);
};
