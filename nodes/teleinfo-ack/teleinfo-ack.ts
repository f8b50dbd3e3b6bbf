import type { Node, NodeAPI, NodeDef, NodeMessageInFlow } from 'node-red';
import { failInput, ThrottledStatus } from '../node-red';
import { ackTopic, AckCollector, checkReadingAck, type ReadingAck } from '../lib/acknowledgement';

interface AckDef extends NodeDef {
  /** Each Pi gets at most one acknowledgement per this many milliseconds. */
  interval: string;
}

/**
 * teleinfo-ack: what the server settled in, one acknowledgement per Pi out, at most every `interval` ms, for an
 * mqtt out (QoS 1, not retained) to `teleinfo/<pi>/ack`. Its inputs are the readings a Complete node on
 * influx-teleinfo-out saw completed (written to InfluxDB, or kept in the dead-letter file), and the numbers
 * teleinfo-admit refused, each with `msg.ack`.
 */
export = function register(RED: NodeAPI): void {
  function TeleinfoAck(this: Node, config: AckDef): void {
    RED.nodes.createNode(this, config);
    const node: Node = this; // eslint-disable-line @typescript-eslint/no-this-alias -- used in closures below
    const intervalMs = Number(config.interval) > 0 ? Number(config.interval) : 1000;
    const collector = new AckCollector();
    let invalid = 0;

    const status = new ThrottledStatus(node, () => ({
      fill: invalid > 0 || collector.counters.forgotten > 0 ? 'yellow' : 'green',
      shape: 'dot',
      text: RED._('teleinfo-ack.status.counts', {
        settled: collector.counters.settled,
        published: collector.counters.published,
        forgotten: collector.counters.forgotten,
      }),
    }));

    const timer = setInterval(() => {
      if (collector.waiting === 0) return;
      const out = collector.drain().map(({ pi, payload }) => ({
        _msgid: RED.util.generateId(),
        topic: ackTopic(pi),
        payload,
        qos: 1,
        retain: false,
      }));
      node.send([out]);
      status.schedule();
    }, intervalMs);

    node.on('input', (msg: NodeMessageInFlow & { ack?: unknown }, _send, done) => {
      // A reading of a Pi that does not number them (one of before 0.3.0): nothing to acknowledge.
      if (msg.ack === undefined) return done();
      const wrong = checkReadingAck(msg.ack);
      if (wrong) {
        invalid++;
        return failInput(node, done, `teleinfo-ack: ${wrong}`, {
          fill: 'red',
          shape: 'ring',
          text: RED._('teleinfo-ack.status.invalid', { count: invalid }),
        });
      }
      collector.add(msg.ack as ReadingAck);
      status.schedule();
      done();
    });

    node.on('close', (_removed: boolean, done: () => void) => {
      clearInterval(timer);
      status.stop();
      done();
    });
  }

  RED.nodes.registerType('teleinfo-ack', TeleinfoAck);
};
