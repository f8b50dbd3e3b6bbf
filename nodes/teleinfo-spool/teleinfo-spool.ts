import fs from 'node:fs';
import path from 'node:path';
import type { Node, NodeAPI, NodeDef, NodeMessageInFlow, NodeStatus } from 'node-red';
import { failInput, isLinkStatus, linkState, reportHealth, ThrottledStatus } from '../node-red';
import { readingsOf } from '../lib/reading';
import { messageRecord, recordMessages, Spool, spoolDir, type SpoolError } from '../lib/spool';
import { isAckTopic, parseAck } from '../lib/acknowledgement';
import { isReplayRequest, SpoolForwarder, type Forwarded, type ReleaseOn } from '../lib/spool-forwarder';
import { renderTopic } from '../lib/teleinfo-parser';

interface SpoolDef extends NodeDef {
  topic: string;
  overlap: string;
  maxMB: string;
  durability?: string;
  /**
   * `server`: a reading leaves the spool once a server acknowledged it on `teleinfo/<pi>/ack`; `broker`: once a
   * Complete node on the mqtt out fed back its PUBACK and the overlap passed; `overlap`: time alone releases.
   */
  ack?: string;
  /** `server`: seconds the oldest reading waits for its acknowledgement before what is not acknowledged goes again. */
  stall?: string;
  window?: string;
  /** Readings of one topic that may go in one message (an array), when several are forwarded together. */
  perMessage?: string;
}

/** The token of a forwarded reading, as a Complete node watching the mqtt out gives it back. */
interface AckMessage extends NodeMessageInFlow {
  _spool: number;
}

/**
 * teleinfo-spool: store-and-forward in front of Node-RED's mqtt out, which drops messages while its broker is
 * unreachable. A Status node watching the mqtt out tells it the link state, a Complete node watching it tells it
 * what the broker acknowledged; readings are spooled on disk, forwarded while the link is up, and forwarded again
 * in order (with the overlap from before the drop) when it comes back. A server that may have missed readings asks
 * for the overlap again with a replay request.
 */
export = function register(RED: NodeAPI): void {
  function TeleinfoSpool(this: Node, config: SpoolDef): void {
    RED.nodes.createNode(this, config);
    const node: Node = this; // eslint-disable-line @typescript-eslint/no-this-alias -- used in closures below
    // `${PI_ID}` and the like are the flow's environment (the whole property is not one variable, so Node-RED
    // does not substitute them itself); `{meter}` and `{source}` are each reading's.
    let unset: string | null = null;
    const topicTemplate = (config.topic || 'teleinfo/${PI_ID}/{meter}/reading').replace(/\$\{(\w+)\}/g, (_, name: string) => {
      const value = RED.util.getSetting(node, name) as string | undefined;
      if (value === undefined || value === null || value === '') unset ??= name;
      return String(value ?? '');
    });
    const release: ReleaseOn = config.ack === 'server' || config.ack === 'broker' ? config.ack : 'overlap';
    const overlapS = Number(config.overlap ?? 60);
    const stallS = Number(config.stall || 120);
    const userDir = (RED.settings as unknown as { userDir?: string }).userDir ?? process.cwd();
    const dir = spoolDir(path.join(userDir, 'teleinfo-spool'), node.id);
    if (config.type === RENAMED_FROM) adoptRenamed(node, userDir, dir, topicTemplate);
    let invalid = 0;
    let stalls = 0;
    // Scheduled from the spool's callbacks while it opens; rendered once it is open.
    const status = new ThrottledStatus(node, () => render());
    let forwarder: SpoolForwarder;
    try {
      if (release !== 'server' && !(overlapS > 0))
        throw new Error(RED._('teleinfo-spool.errors.overlap', { value: config.overlap }));
      if (release === 'server' && !(stallS > 0))
        throw new Error(RED._('teleinfo-spool.errors.stall', { value: String(config.stall) }));
      const spool = new Spool(dir, {
        maxBytes: Math.max(1, Number(config.maxMB) || 50) * 1024 * 1024,
        durability: config.durability === 'process' ? 'process' : 'power',
        onFault: (e) => fault(e),
        onQuarantine: (bytes, where, reason) =>
          node.warn(RED._('teleinfo-spool.log.quarantine', { bytes, where, reason, dir })),
      });
      const perMessage = Math.max(1, Math.floor(Number(config.perMessage) || 1));
      forwarder = new SpoolForwarder(
        spool,
        {
          release,
          overlapMs: overlapS * 1000,
          stallMs: stallS * 1000,
          window: Math.max(1, Number(config.window) || 100),
          replayBatch: 1000,
        },
        // Sequence numbers travel only where servers acknowledge them.
        (records, seqs, token) =>
          forwardMessages(node, records, token, perMessage, release === 'server' ? { stream: forwarder.spool.stream, seqs } : null),
        () => {
          if (forwarder.counters.stalls > stalls) {
            stalls = forwarder.counters.stalls;
            node.log(RED._('teleinfo-spool.log.stall', { seconds: stallS, count: forwarder.spool.length }));
          }
          status.schedule();
        },
      );
    } catch (e) {
      // A spool that cannot be opened (unreadable disk, bad settings): say so, and refuse readings.
      const message = (e as Error).message;
      status.stop();
      node.error(message);
      node.status({ fill: 'red', shape: 'ring', text: message });
      node.on('input', (_msg: NodeMessageInFlow, _send, done) => done(new Error(message)));
      return;
    }
    const spool = forwarder.spool;
    reportHealth(node, () => ({ spool: forwarder.health(Date.now()) }));
    if (spool.counters.recovered > 0)
      node.log(RED._('teleinfo-spool.log.recovered', { count: spool.counters.recovered }));
    node.status(render());

    /** An I/O error the spool carried on through: in the status and the log (once per kind of error). */
    let lastFault = '';
    function fault(e: SpoolError): void {
      if (e.message !== lastFault) node.error(e.message);
      lastFault = e.message;
      status.schedule();
    }

    function render(): NodeStatus {
      const problem = spool.problem;
      if (problem)
        return {
          fill: 'red',
          shape: 'ring',
          text: problem.diskFull
            ? RED._('teleinfo-spool.status.diskFull', { count: forwarder.backlog })
            : problem.message,
        };
      const mb = (spool.bytes / 1024 / 1024).toFixed(1);
      const dropped = spool.counters.dropped;
      let tail = dropped > 0 ? RED._('teleinfo-spool.status.dropped', { count: dropped }) : '';
      if (spool.counters.quarantines > 0)
        tail += RED._('teleinfo-spool.status.quarantined', { bytes: spool.counters.quarantinedBytes });
      switch (forwarder.state) {
        case 'down':
          return {
            fill: 'red',
            shape: 'ring',
            text: RED._('teleinfo-spool.status.down', { count: forwarder.backlog, mb }) + tail,
          };
        case 'replaying':
          return {
            fill: 'yellow',
            shape: 'dot',
            text:
              RED._('teleinfo-spool.status.replaying', {
                count: forwarder.backlog,
                inFlight: forwarder.inFlight,
              }) + tail,
          };
        default:
          return {
            fill: tail ? 'yellow' : 'green',
            shape: 'dot',
            text:
              (release === 'server'
                ? RED._('teleinfo-spool.status.stored', {
                    count: forwarder.counters.forwarded,
                    stored: forwarder.counters.stored,
                    waiting: spool.length,
                  })
                : RED._('teleinfo-spool.status.up', { count: forwarder.counters.forwarded })) + tail,
          };
      }
    }

    node.on('input', (msg: NodeMessageInFlow, _send, done) => {
      if (isAck(msg)) {
        forwarder.acknowledged(msg._spool);
        return done();
      }
      if (isAckTopic(msg.topic)) {
        const acks = parseAck(msg.payload, MAX_ACK_RANGES);
        if (typeof acks === 'string') {
          invalid++;
          return failInput(node, done, `teleinfo-spool: an acknowledgement on ${String(msg.topic)} refused: ${acks}`, render());
        }
        for (const { stream, ranges } of acks) forwarder.serverAcked(stream, ranges);
        return done();
      }
      if (isLinkStatus(msg)) {
        // The mqtt out's own status: green is connected; connecting and disconnected are not.
        forwarder.setLink(linkState(msg) === 'up');
        node.status(render());
        return done();
      }
      if (isReplayRequest(msg.payload)) {
        node.log(
          release === 'server'
            ? RED._('teleinfo-spool.log.replayServer', { by: msg.payload.by, count: spool.length })
            : RED._('teleinfo-spool.log.replay', { by: msg.payload.by }),
        );
        forwarder.replayRequested();
        node.status(render());
        return done();
      }
      const readings = readingsOf(msg.payload);
      if (typeof readings === 'string') {
        invalid++;
        return failInput(
          node,
          done,
          `teleinfo-spool expects a normalized reading (or an array of them), the status of the mqtt out node from a Status node, its completed messages from a Complete node, a replay request, or a server's acknowledgement; ${readings}`,
          {
            fill: 'red',
            shape: 'ring',
            text: RED._('teleinfo-spool.status.invalid', { count: invalid }),
          },
        );
      }
      const fail = (e: Error) => failInput(node, done, e.message, render());
      try {
        const records = readings.map((reading) =>
          messageRecord(renderTopic(topicTemplate, reading), reading),
        );
        // Done once the readings survive what the durability promises: from then on they reach the broker.
        forwarder.offer(records, (err) => (err ? fail(err) : done()));
      } catch (e) {
        fail(e as Error);
      }
    });

    node.on('close', (_removed: boolean, done: () => void) => {
      status.stop();
      forwarder.close();
      done();
    });
  }

  /** Spooled records as messages for the mqtt out, each with the token its Complete node gives back. */
  function forwardMessages(
    node: Node,
    records: readonly string[],
    token: number,
    perMessage: number,
    numbered: { stream: string; seqs: readonly number[] } | null,
  ): Forwarded {
    const { messages, refused } = recordMessages(records, perMessage, numbered);
    for (const message of messages) node.send({ ...message, _spool: token });
    return { messages: messages.length, refused };
  }

  function isAck(msg: NodeMessageInFlow): msg is AckMessage {
    return typeof (msg as Partial<AckMessage>)._spool === 'number';
  }


  /**
   * A node of the type's name before 0.2.0 runs as teleinfo-spool, says once that it was renamed, keeps the
   * backlog its spool held under the old folder, and says when its topic is one servers no longer admit.
   */
  function adoptRenamed(node: Node, userDir: string, dir: string, topic: string): void {
    node.warn(RED._('teleinfo-spool.log.renamed', { from: RENAMED_FROM }));
    const old = spoolDir(path.join(userDir, RENAMED_FROM), node.id);
    if (fs.existsSync(old) && !fs.existsSync(dir)) {
      fs.mkdirSync(path.dirname(dir), { recursive: true });
      fs.renameSync(old, dir);
      node.warn(RED._('teleinfo-spool.log.movedSpool', { from: old, to: dir }));
    }
    if (topic.split('/').length !== 4) node.warn(RED._('teleinfo-spool.log.oldTopic', { topic }));
  }

  RED.nodes.registerType('teleinfo-spool', TeleinfoSpool);
  RED.nodes.registerType(RENAMED_FROM, TeleinfoSpool);
};

/** Ranges an acknowledgement may carry per stream (a server merges what it stored in between). */
const MAX_ACK_RANGES = 10_000;

/** The type teleinfo-spool had before 0.2.0, still registered so that a flow of then starts. */
const RENAMED_FROM = 'teleinfo-buffer';
