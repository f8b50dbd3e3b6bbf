import path from 'node:path';
import type { Node, NodeAPI, NodeDef, NodeMessageInFlow, NodeStatus } from 'node-red';
import { failInput, ThrottledStatus } from '../lib/node-red';
import { notReadings, type Reading } from '../lib/reading';
import { Spool } from '../lib/spool';
import { isReplayRequest, StoreAndForward } from '../lib/store-forward';
import { renderTopic } from '../lib/teleinfo-parser';

interface BufferDef extends NodeDef {
  topic: string;
  overlap: string;
  maxMB: string;
}

interface LinkStatusMessage extends NodeMessageInFlow {
  status: { fill?: string; text?: string; source?: { id?: string } };
}

/**
 * teleinfo-buffer: store-and-forward in front of Node-RED's mqtt out, which drops messages while its broker is
 * unreachable. A Status node watching the mqtt out tells it the link state; readings are journaled on disk,
 * forwarded while the link is up, and replayed in order (with a short overlap from before the drop) when it comes
 * back. A server that may have missed readings asks for the overlap again with a replay request.
 */
export = function register(RED: NodeAPI): void {
  function TeleinfoBuffer(this: Node, config: BufferDef): void {
    RED.nodes.createNode(this, config);
    const node: Node = this; // eslint-disable-line @typescript-eslint/no-this-alias -- used in closures below
    const topicTemplate = config.topic || 'teleinfo/{meter}/reading';
    const overlapMs = Math.max(0, Number(config.overlap ?? 60)) * 1000;
    const maxBytes = Math.max(1, Number(config.maxMB) || 50) * 1024 * 1024;
    const userDir = (RED.settings as unknown as { userDir?: string }).userDir ?? process.cwd();
    let invalid = 0;

    const journal = new Spool(path.join(userDir, 'teleinfo-buffer', node.id.replace(/[^\w.-]/g, '_')), {
      maxBytes,
    });
    const recovered = journal.length;
    const buffer = new StoreAndForward(
      journal,
      { overlapMs, replayBatch: 200 },
      (record) => node.send(JSON.parse(record) as NodeMessageInFlow),
      () => status.schedule(),
    );
    const status = new ThrottledStatus(node, render);
    if (recovered > 0) node.log(`${recovered} readings from a previous run wait for the link`);
    node.status(render());

    function render(): NodeStatus {
      const mb = (journal.bytes / 1024 / 1024).toFixed(1);
      const dropped = journal.counters.dropped;
      const lost = dropped > 0 ? RED._('teleinfo-buffer.status.dropped', { count: dropped }) : '';
      switch (buffer.state) {
        case 'down':
          return {
            fill: 'red',
            shape: 'ring',
            text: RED._('teleinfo-buffer.status.down', { count: buffer.backlog, mb }) + lost,
          };
        case 'replaying':
          return {
            fill: 'yellow',
            shape: 'dot',
            text: RED._('teleinfo-buffer.status.replaying', { count: buffer.backlog }) + lost,
          };
        default:
          return {
            fill: dropped > 0 ? 'yellow' : 'green',
            shape: 'dot',
            text: RED._('teleinfo-buffer.status.up', { count: buffer.counters.forwarded }) + lost,
          };
      }
    }

    node.on('input', (msg: NodeMessageInFlow, _send, done) => {
      if (isLinkStatus(msg)) {
        // The mqtt out's own status: green is connected; connecting and disconnected are not.
        buffer.setLink(msg.status.fill === 'green');
        node.status(render());
        return done();
      }
      if (isReplayRequest(msg.payload)) {
        node.log(RED._('teleinfo-buffer.log.replay', { by: msg.payload.by }));
        buffer.replayOverlap();
        node.status(render());
        return done();
      }
      const readings: unknown[] = Array.isArray(msg.payload) ? msg.payload : [msg.payload];
      const problem = notReadings(readings);
      if (problem) {
        invalid++;
        return failInput(
          node,
          done,
          `teleinfo-buffer expects a normalized reading (or an array of them), the status of the mqtt out node from a Status node, or a replay request; ${problem}`,
          { fill: 'red', shape: 'ring', text: RED._('teleinfo-buffer.status.invalid', { count: invalid }) },
        );
      }
      const fail = (e: Error) =>
        failInput(node, done, e.message, { fill: 'red', shape: 'ring', text: e.message });
      try {
        const records = (readings as Reading[]).map((reading) =>
          JSON.stringify({ topic: renderTopic(topicTemplate, reading), payload: reading }),
        );
        // Done once the readings are on disk: from then on they reach the broker, whatever happens to the link.
        buffer.offer(records, (err) => (err ? fail(err) : done()));
      } catch (e) {
        fail(e as Error);
      }
    });

    node.on('close', (_removed: boolean, done: () => void) => {
      status.stop();
      buffer.close();
      done();
    });
  }

  function isLinkStatus(msg: NodeMessageInFlow): msg is LinkStatusMessage {
    const status = (msg as Partial<LinkStatusMessage>).status;
    return typeof status === 'object' && status !== null;
  }

  RED.nodes.registerType('teleinfo-buffer', TeleinfoBuffer);
};
