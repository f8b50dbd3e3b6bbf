import fs from 'node:fs';
import type { Node, NodeAPI, NodeDef } from 'node-red';
import { sumErrors, sumSpools, type PiHealth } from '../lib/health';
import { healthOfRuntime, isLinkStatus, linkState, PACKAGE_VERSION } from '../node-red';

interface HealthDef extends NodeDef {
  /** The Pi's id (`${PI_ID}` in the shipped flow): the topic is teleinfo/<pi>/health. */
  pi: string;
  /** Seconds between two health messages (at least 10). */
  interval: string;
}

const PI_ID = /^[A-Za-z0-9_-]{1,64}$/;
/** The first health after a start, once the other nodes of the flow are up. */
const FIRST_MS = 2000;
/** Health messages kept while the link is down (10 minutes at 10 s, an hour at 60 s); past it the oldest go. */
const KEPT_WHILE_DOWN = 60;

/**
 * teleinfo-health: the Pi's health every `interval` seconds, for an mqtt out (retained, QoS 1): what every
 * teleinfo-spool of this Node-RED holds and how old its oldest reading is, what was sent and acknowledged,
 * teleinfo-parse's and ecodevices-in's errors by kind, free disk in the userDir, uptime and versions. Wired from a
 * Status node watching its mqtt out, it keeps what it would publish while the link is down, and sends it once back.
 */
export = function register(RED: NodeAPI): void {
  function TeleinfoHealth(this: Node, config: HealthDef): void {
    RED.nodes.createNode(this, config);
    const node: Node = this; // eslint-disable-line @typescript-eslint/no-this-alias -- used in closures below
    const pi = (config.pi ?? '').trim();
    if (!PI_ID.test(pi)) {
      const message = RED._('teleinfo-health.errors.pi', { value: pi.slice(0, 80) });
      node.error(message);
      node.status({ fill: 'red', shape: 'ring', text: message });
      return;
    }
    const intervalMs = Math.max(10, Number(config.interval) || 60) * 1000;
    const userDir = (RED.settings as unknown as { userDir?: string }).userDir ?? process.cwd();
    const started = Date.now() - process.uptime() * 1000;
    // The runtime's version, as it puts it in its settings (RED.version() is a promise in some hosts).
    const nodeRed = String((RED.settings as unknown as { version?: string }).version ?? 'unknown');

    function health(now: number): PiHealth {
      const parts = healthOfRuntime();
      let disk: { free: number; total: number } | null = null;
      try {
        const s = fs.statfsSync(userDir);
        disk = { free: (s.bavail * s.bsize) / 1048576, total: (s.blocks * s.bsize) / 1048576 };
      } catch {
        // Unknown: reported as null.
      }
      return {
        pi,
        at: new Date(now).toISOString(),
        uptimeS: Math.round((now - started) / 1000),
        versions: { package: PACKAGE_VERSION, nodeRed, node: process.version.slice(1) },
        spool: sumSpools(parts.flatMap((p) => (p.spool ? [p.spool] : []))),
        errors: sumErrors(parts.flatMap((p) => (p.errors ? [p.errors] : []))),
        diskFreeMB: disk && Math.round(disk.free),
        diskTotalMB: disk && Math.round(disk.total),
      };
    }

    // The mqtt out drops what it is given while disconnected: while its Status says the link is down, the health
    // messages wait here, so that the server sees how the backlog grew once the link is back.
    let linkDown = false;
    let kept: PiHealth[] = [];
    let forgotten = 0;
    const message = (h: PiHealth) => ({ topic: `teleinfo/${pi}/health`, payload: h, retain: true, qos: 1 });

    function publish(): void {
      const h = health(Date.now());
      if (linkDown) {
        kept.push(h);
        if (kept.length > KEPT_WHILE_DOWN) {
          forgotten += kept.length - KEPT_WHILE_DOWN;
          kept = kept.slice(-KEPT_WHILE_DOWN);
        }
      } else node.send(message(h));
      node.status({
        fill: h.spool.oldestAgeS !== null && h.spool.oldestAgeS > 600 ? 'yellow' : 'green',
        shape: 'dot',
        text: RED._('teleinfo-health.status.sent', {
          depth: h.spool.depth,
          age: h.spool.oldestAgeS === null ? '-' : Math.round(h.spool.oldestAgeS / 60),
          disk: h.diskFreeMB ?? '?',
        }),
      });
    }
    const first = setTimeout(publish, FIRST_MS);
    const timer = setInterval(publish, intervalMs);
    node.on('input', (msg, send, done) => {
      if (isLinkStatus(msg)) {
        const state = linkState(msg);
        if (state === 'down') linkDown = true;
        else if (state === 'up' && linkDown) {
          linkDown = false;
          const waiting = kept;
          kept = [];
          if (forgotten > 0) node.warn(RED._('teleinfo-health.log.forgotten', { count: forgotten }));
          forgotten = 0;
          send([waiting.map(message)]);
        }
        return done();
      }
      publish();
      done();
    });
    node.on('close', (_removed: boolean, done: () => void) => {
      clearTimeout(first);
      clearInterval(timer);
      done();
    });
  }

  RED.nodes.registerType('teleinfo-health', TeleinfoHealth);
};
