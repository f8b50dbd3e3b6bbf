import type { Node, NodeAPI, NodeDef, NodeMessage, NodeStatus } from 'node-red';
import type { EcoDevicesDeviceNode } from '../ecodevices-device/types';
import { EcoDevicesRequestError } from '../lib/ecodevices/client';
import { counterReadings } from '../lib/ecodevices/decode';
import { EcoDevicesPoller, type PollResult, type ReadMode } from '../lib/ecodevices/poller';
import { EmissionFilter } from '../lib/emission';
import { renderTopic } from '../lib/teleinfo-parser';
import { deliverReadOnlyUncloned, reportHealth, valueOrEnv } from '../node-red';

interface EcoDevicesInDef extends NodeDef {
  device: string;
  mode: ReadMode;
  interval: string;
  /** 'env': `interval` names an environment variable holding it. */
  intervalType?: string;
  emit: 'all' | 'change' | 'heartbeat';
  heartbeat: string;
  alertAfter: string;
  c1Name: string;
  c1Divider: string;
  c2Name: string;
  c2Divider: string;
  topic: string;
}

const MIN_INTERVAL_S = 2;
/** Input messages waiting for the poll they triggered; beyond this they are completed at once. */
const MAX_WAITING = 100;

/**
 * ecodevices-in: poll an Eco-Devices box, one reading per connected meter and per named pulse counter on
 * output 1, one "unreachable" / "back" alert per outage on output 2.
 */
export = function register(RED: NodeAPI): void {
  deliverReadOnlyUncloned(RED);
  function EcoDevicesInNode(this: Node, config: EcoDevicesInDef): void {
    RED.nodes.createNode(this, config);
    const node: Node = this; // eslint-disable-line @typescript-eslint/no-this-alias -- used in closures below
    const device = RED.nodes.getNode(config.device) as EcoDevicesDeviceNode | null;
    if (!device) {
      node.status({ fill: 'red', shape: 'ring', text: 'ecodevices-in.status.noDevice' });
      node.error(RED._('ecodevices-in.error.noDevice'));
      return;
    }
    device.register(node);
    const intervalS = Math.max(
      MIN_INTERVAL_S,
      Number(valueOrEnv(RED, this, config.interval, config.intervalType)) || 10,
    );
    const emission = new EmissionFilter(config.emit || 'all', Math.max(1, Number(config.heartbeat) || 300));
    const counters = {
      C1: { name: (config.c1Name ?? 'water').trim(), divider: Number(config.c1Divider) || 1 },
      C2: { name: (config.c2Name ?? 'gas').trim(), divider: Number(config.c2Divider) || 1 },
    };
    const topicPattern = config.topic || 'teleinfo/{meter}';
    const waiting: ((err?: Error) => void)[] = [];
    let last: { papp: number | null; at: number } | null = null;
    let failure: { error: Error; consecutive: number; unreachable: boolean } | null = null;
    let failedPolls = 0;
    reportHealth(node, () => ({ errors: { poll: failedPolls } }));

    const poller = new EcoDevicesPoller(
      {
        get: (path, signal) => device.client.get(path, signal),
        mode: config.mode === 'summary' ? 'summary' : 'full',
        device: device.deviceId,
        intervalMs: intervalS * 1000,
        alertAfter: Math.max(1, Number(config.alertAfter) || 3),
        backoff: { baseMs: 1000, maxMs: Math.max(30_000, 6 * intervalS * 1000), jitter: 0.2 },
      },
      {
        result: (result) => {
          failure = null;
          send(result);
          settle();
        },
        failure: (error, consecutive) => {
          failedPolls++;
          failure = { error, consecutive, unreachable: failure?.unreachable ?? false };
          showStatus();
          // A poll asked for by a message fails that message; a scheduled one reports to Catch nodes directly.
          if (waiting.length > 0) settle(error);
          else node.error(error.message, { payload: { device: device.deviceId, error: error.message } });
        },
        alert: (alert) => {
          if (alert.event === 'unreachable' && failure) failure.unreachable = true;
          showStatus();
          node.send([null, { topic: `teleinfo/${device.deviceId}/alert`, payload: alert }]);
        },
      },
    );

    function send(result: PollResult): void {
      const context = { device: device!.deviceId, time: result.time };
      const readings = [...result.snapshot.readings, ...counterReadings(result.snapshot, context, counters)];
      const first = result.snapshot.readings[0];
      last = { papp: first?.apparentPower ?? null, at: result.time.getTime() };
      showStatus();
      const out = readings
        .filter((r) => emission.admit(r))
        .map((reading) => ({ topic: renderTopic(topicPattern, reading), payload: reading, raw: result.raw }));
      if (out.length > 0) node.send([out, null]);
    }

    /** Complete the input messages that asked for this poll. */
    function settle(error?: Error): void {
      for (const done of waiting.splice(0)) done(error);
    }

    function showStatus(): void {
      node.status(render());
    }

    function render(): NodeStatus {
      if (poller.paused) return { fill: 'grey', shape: 'ring', text: 'ecodevices-in.status.paused' };
      if (failure) {
        const auth = failure.error instanceof EcoDevicesRequestError && failure.error.kind === 'auth';
        if (auth) return { fill: 'red', shape: 'ring', text: RED._('ecodevices-in.status.auth') };
        const kind = failure.error instanceof EcoDevicesRequestError ? failure.error.kind : 'format';
        return failure.unreachable
          ? {
              fill: 'red',
              shape: 'ring',
              text: RED._('ecodevices-in.status.unreachable', { kind, attempts: failure.consecutive }),
            }
          : {
              fill: 'yellow',
              shape: 'ring',
              text: RED._('ecodevices-in.status.retrying', { kind, attempts: failure.consecutive }),
            };
      }
      if (!last) return { fill: 'grey', shape: 'ring', text: 'ecodevices-in.status.connecting' };
      const age = Math.round((Date.now() - last.at) / 1000);
      return {
        fill: 'green',
        shape: 'dot',
        text: RED._('ecodevices-in.status.ok', { papp: last.papp ?? '-', age }),
      };
    }

    // The age in the status goes on growing between polls.
    const statusTimer = setInterval(() => {
      if (last && !failure && !poller.paused) showStatus();
    }, 5000);

    node.on('input', (msg: NodeMessage, _send, done) => {
      if (msg.payload === 'stop') {
        poller.stop();
        settle();
        showStatus();
        return done();
      }
      if (msg.payload === 'start') {
        poller.start();
        showStatus();
        return done();
      }
      if (waiting.length >= MAX_WAITING) done();
      else waiting.push(done);
      poller.pollNow();
    });

    node.on('close', (_removed: boolean, done: () => void) => {
      clearInterval(statusTimer);
      poller.close();
      settle();
      device.deregister(node);
      done();
    });

    showStatus();
    poller.start();
  }
  RED.nodes.registerType('ecodevices-in', EcoDevicesInNode);
};
