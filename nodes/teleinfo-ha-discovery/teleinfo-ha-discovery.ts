import type { Node, NodeAPI, NodeDef, NodeMessage, NodeMessageInFlow } from 'node-red';
import { failInput, isLinkStatus, linkState, ThrottledStatus } from '../node-red';
import { HaDiscovery, type DiscoveryMessage, type DiscoverySnapshot } from '../lib/home-assistant';
import { readingsOf } from '../lib/reading';

interface DiscoveryDef extends NodeDef {
  prefix: string;
  availabilityTopic: string;
  deviceName: string;
  /** A meter silent this long is said in the status and the log (its entities stay). */
  silentHours: string;
  store: string;
}

type DiscoveryInput = NodeMessageInFlow & {
  /** `{ clear: "<meter>" }`: remove that meter's entities from Home Assistant. */
  clear?: string;
};

const CONTEXT_KEY = 'teleinfo-ha-discovery';
// Errors go to Catch nodes as plain text (the runtime's catalogue is for the editor and the log).
const NO_TOPIC =
  'a reading without msg.topic: wire this node to the mqtt in node that receives the readings, so Home Assistant is told the topic to read';
const ALERT_TOPIC = /^teleinfo\/([^/]+)\/alert\/([^/]+)$/;

/**
 * teleinfo-ha-discovery: readings (as received from MQTT, on their reading topic), teleinfo-alert states,
 * Home Assistant's birth message and the MQTT link's status in; retained discovery configs out, for an mqtt out
 * node. Which entities, with which classes and templates, is the domain core's (lib/home-assistant.ts).
 */
export = function register(RED: NodeAPI): void {
  function TeleinfoHaDiscovery(this: Node, config: DiscoveryDef): void {
    RED.nodes.createNode(this, config);
    const node: Node = this; // eslint-disable-line @typescript-eslint/no-this-alias -- used in closures below
    const prefix = (config.prefix || 'homeassistant').replace(/\/+$/, '');
    const silentMs = (Number(config.silentHours) || 24) * 3_600_000;
    const store = config.store || undefined;
    const context = node.context();
    const options = {
      prefix,
      availabilityTopic: config.availabilityTopic ?? 'teleinfo/{pi}/status',
      deviceName: config.deviceName || 'Teleinfo {meter}',
    };
    let discovery = new HaDiscovery(options);
    let linkDown = false;
    let announced = 0;
    const warnedSilent = new Set<string>();
    let ready = false;
    const waiting: (() => void)[] = [];
    let silentCount = 0;
    // Per reading only a throttled status; the meters are scanned for silence once a minute.
    const status = new ThrottledStatus(node, () => ({
      fill: linkDown ? 'red' : silentCount > 0 ? 'yellow' : 'green',
      shape: 'dot',
      text: RED._('teleinfo-ha-discovery.status.summary', {
        meters: discovery.size,
        configs: announced,
        silent: silentCount,
      }),
    }));
    function checkSilent(): void {
      const silent = discovery.silentSince(Date.now(), silentMs);
      for (const meter of silent) {
        if (warnedSilent.has(meter)) continue;
        warnedSilent.add(meter);
        node.warn(RED._('teleinfo-ha-discovery.log.silent', { meter, hours: silentMs / 3_600_000 }));
      }
      silentCount = silent.length;
      status.schedule();
    }

    context.get(CONTEXT_KEY, store, (err: Error | null, saved: unknown) => {
      if (err) node.warn(RED._('teleinfo-ha-discovery.errors.restore', { error: err.message }));
      else if (saved) discovery = new HaDiscovery(options, saved as DiscoverySnapshot);
      ready = true;
      checkSilent();
      for (const run of waiting.splice(0)) run();
    });

    const publish = (send: (msg: NodeMessage[][]) => void, messages: DiscoveryMessage[]) => {
      if (messages.length === 0) return;
      announced += messages.length;
      send([messages.map((m) => ({ topic: m.topic, payload: m.payload, retain: true, qos: 1 }))]);
      saveSoon();
    };
    // The announced meters go to the context store at most once a second: a fleet's first readings announce
    // thousands of meters, and a snapshot per meter would copy them all each time.
    let saveTimer: NodeJS.Timeout | null = null;
    const save = () => {
      if (saveTimer) clearTimeout(saveTimer);
      saveTimer = null;
      context.set(CONTEXT_KEY, discovery.snapshot(), store);
    };
    const saveSoon = () => {
      saveTimer ??= setTimeout(save, 1000);
    };

    node.on('input', (msg: DiscoveryInput, send, done) => {
      if (!ready) {
        waiting.push(() => node.receive(msg));
        return done();
      }
      const topic = typeof msg.topic === 'string' ? msg.topic : '';
      if (isLinkStatus(msg)) {
        // The broker came back: it may have lost retained messages (no persistence), so say everything again.
        const state = linkState(msg);
        if (state === 'down') linkDown = true;
        else if (state === 'up' && linkDown) {
          linkDown = false;
          publish(send, discovery.announceAll());
        }
        status.schedule();
        return done();
      }
      if (topic === `${prefix}/status`) {
        if (String(msg.payload).trim() === 'online') publish(send, discovery.announceAll());
        status.schedule();
        return done();
      }
      if (typeof msg.clear === 'string') {
        const cleared = discovery.clear(msg.clear);
        if (cleared.length === 0)
          return failInput(node, done, `no entities announced for meter ${msg.clear}: nothing to clear`, {
            fill: 'red',
            shape: 'ring',
            text: 'teleinfo-ha-discovery.status.unknown-meter',
          });
        publish(send, cleared);
        warnedSilent.delete(msg.clear);
        status.schedule();
        return done();
      }
      const alert = ALERT_TOPIC.exec(topic);
      if (alert) {
        publish(send, discovery.observeAlert(alert[1], alert[2], topic));
        status.schedule();
        return done();
      }
      const readings = readingsOf(msg.payload);
      if (typeof readings === 'string') {
        return failInput(
          node,
          done,
          `teleinfo-ha-discovery expects readings, an alert state, Home Assistant's status or {clear: meter}: ${readings}`,
          {
            fill: 'red',
            shape: 'ring',
            text: 'teleinfo-ha-discovery.status.bad-input',
          },
        );
      }
      if (!topic)
        return failInput(node, done, NO_TOPIC, {
          fill: 'red',
          shape: 'ring',
          text: 'teleinfo-ha-discovery.status.bad-input',
        });
      const now = Date.now();
      for (const r of readings) {
        warnedSilent.delete(r.meter);
        publish(send, discovery.observe(r, topic, now));
      }
      status.schedule();
      done();
    });

    const timer = setInterval(() => ready && checkSilent(), 60_000);
    node.on('close', (_removed: boolean, done: () => void) => {
      clearInterval(timer);
      status.stop();
      if (saveTimer) save();
      done();
    });
  }
  RED.nodes.registerType('teleinfo-ha-discovery', TeleinfoHaDiscovery);
};
