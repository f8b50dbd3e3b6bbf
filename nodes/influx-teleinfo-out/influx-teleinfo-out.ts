import type { Node, NodeAPI, NodeDef, NodeMessageInFlow, NodeStatus } from 'node-red';
import { RejectedLines, type PipelineStatus } from '../lib/influx/pipeline';
import type { InfluxServerNode } from '../influxdb-teleinfo-server/types';
import { readingToLine } from '../lib/influx/line-protocol';
import { failInput } from '../node-red';
import { readingsOf } from '../lib/reading';

interface InfluxOutDef extends NodeDef {
  server: string;
  measurement: string;
}

/**
 * influx-teleinfo-out: normalized readings in, one InfluxDB point each, through the server's spool. A message
 * completes (a Complete node sees it) when its points are settled: written, or refused for good by InfluxDB or by
 * the line-protocol writer, which is also reported to Catch nodes. It fails (done(err)) when they were lost before
 * InfluxDB had them (the spool full or unwritable), so that its sender may send them again.
 */
export = function register(RED: NodeAPI): void {
  function InfluxTeleinfoOut(this: Node, config: InfluxOutDef): void {
    RED.nodes.createNode(this, config);
    const node: Node = this; // eslint-disable-line @typescript-eslint/no-this-alias -- used in closures below
    const server = RED.nodes.getNode(config.server) as InfluxServerNode | null;
    const measurement = config.measurement || 'teleinfo';
    let invalid = 0;
    if (!server) node.status({ fill: 'red', shape: 'ring', text: 'influx-teleinfo-out.status.noServer' });
    else if (server.configError) node.status({ fill: 'red', shape: 'ring', text: server.configError });
    else {
      node.status({ fill: 'grey', shape: 'ring', text: 'influx-teleinfo-out.status.ready' });
      server.register(node, (s) => node.status(render(s)));
    }

    function render(s: PipelineStatus): NodeStatus {
      const mb = (s.spoolBytes / 1024 / 1024).toFixed(1);
      const error = s.lastError ?? '';
      if (s.diskFull)
        return {
          fill: 'red',
          shape: 'ring',
          text: RED._('influx-teleinfo-out.status.diskFull', { count: s.spooled, error }),
        };
      switch (s.state) {
        case 'misconfigured':
          return {
            fill: 'red',
            shape: 'ring',
            text: RED._('influx-teleinfo-out.status.misconfigured', { error, count: s.spooled, mb }),
          };
        case 'retrying':
          return {
            fill: 'yellow',
            shape: 'ring',
            text: RED._('influx-teleinfo-out.status.retrying', { error, count: s.spooled, mb }),
          };
        default: {
          const tail =
            s.deadLettered > 0
              ? RED._('influx-teleinfo-out.status.deadLetters', { count: s.deadLettered })
              : '';
          return {
            fill: s.deadLettered > 0 || s.dropped > 0 ? 'yellow' : 'green',
            shape: 'dot',
            text: RED._('influx-teleinfo-out.status.ok', { written: s.written, count: s.spooled }) + tail,
          };
        }
      }
    }

    node.on(
      'input',
      (msg: NodeMessageInFlow & { flush?: boolean; pi?: unknown; ack?: unknown }, _send, done) => {
        /** A refusal for good settles the message: reported, then completed. */
        const settle = (err?: Error) => {
          if (err instanceof RejectedLines) {
            node.error(err, msg);
            done();
          } else done(err);
        };
        const pipeline = server?.pipeline;
        if (!pipeline) {
          return failInput(
            node,
            done,
            server?.configError ?? 'influx-teleinfo-out has no InfluxDB server configured',
            {
              fill: 'red',
              shape: 'ring',
              text: 'influx-teleinfo-out.status.noServer',
            },
          );
        }
        const readings = msg.payload === undefined && msg.flush ? [] : readingsOf(msg.payload);
        if (typeof readings === 'string') {
          invalid++;
          return failInput(
            node,
            done,
            `influx-teleinfo-out expects a normalized reading (from teleinfo-parse or ecodevices-in) or an array of them; ${readings}`,
            {
              fill: 'red',
              shape: 'ring',
              text: RED._('influx-teleinfo-out.status.invalid', { count: invalid }),
            },
          );
        }
        // A reading whose value does not fit its label's type is refused alone; the others are written.
        const lines: string[] = [];
        let refused: string[] | undefined;
        for (const reading of readings) {
          try {
            lines.push(readingToLine(reading, measurement));
          } catch (e) {
            (refused ??= []).push((e as Error).message);
          }
        }
        const refusal = refused ? new RejectedLines(refused.join('; ')) : undefined;
        if (refusal) {
          invalid++;
          node.status({
            fill: 'red',
            shape: 'ring',
            text: RED._('influx-teleinfo-out.status.invalid', { count: invalid }),
          });
        }
        try {
          // msg.pi (teleinfo-admit): the Pi these readings came from, which holds at most its share of the spool.
          const owner = typeof msg.pi === 'string' ? msg.pi : '';
          if (lines.length > 0) {
            const tracked = pipeline.accept(lines, (err) => settle(err ?? refusal), owner);
            // Past the bound of messages waiting, it completes once spooled: that is not stored, so not acknowledged.
            if (!tracked) delete msg.ack;
          } else settle(refusal);
        } catch (e) {
          return failInput(node, done, (e as Error).message, {
            fill: 'red',
            shape: 'ring',
            text: (e as Error).message,
          });
        }
        if (msg.flush === true) void pipeline.flush();
      },
    );

    node.on('close', (_removed: boolean, done: () => void) => {
      server?.deregister(node);
      done();
    });
  }

  RED.nodes.registerType('influx-teleinfo-out', InfluxTeleinfoOut);
};
