import type { Node, NodeAPI, NodeDef, NodeMessageInFlow, NodeStatus } from 'node-red';
import { failInput, ThrottledStatus } from '../node-red';
import { renderTopic, TeleinfoParser, type EmitPolicy } from '../lib/teleinfo-parser';
import type { TicMode } from '../lib/tic/labels';

interface TeleinfoParseDef extends NodeDef {
  mode: TicMode | 'auto';
  emit: EmitPolicy;
  interval: string;
  labels: string;
  topic: string;
  device: string;
}

/**
 * teleinfo-parse: raw TIC (serial chunks, frames or lines), Eco-Devices JSON/XML, or normalized readings in;
 * one message per complete reading out.
 */
export = function register(RED: NodeAPI): void {
  function TeleinfoParseNode(this: Node, config: TeleinfoParseDef): void {
    RED.nodes.createNode(this, config);
    const node: Node = this; // eslint-disable-line @typescript-eslint/no-this-alias -- used in closures below
    const parser = new TeleinfoParser({
      mode: config.mode || 'auto',
      emit: config.emit || 'all',
      intervalSeconds: Math.max(0, Number(config.interval) || 0),
      labels: (config.labels || '')
        .split(/[\s,]+/)
        .map((l) => l.trim())
        .filter(Boolean),
      device: config.device || 'ecodevices',
    });
    const topicPattern = config.topic || 'teleinfo/{meter}';

    const status = new ThrottledStatus(node, (): NodeStatus => {
      const c = parser.counters;
      const errors =
        c.checksumErrors +
        c.formatErrors +
        c.interruptedFrames +
        c.oversizeErrors +
        c.modeErrors +
        c.valueErrors +
        c.invalidInputs;
      return {
        fill: errors > 0 ? 'yellow' : 'green',
        shape: 'dot',
        text: RED._('teleinfo-parse.status.summary', {
          mode: parser.lastMode ?? '-',
          meter: parser.lastMeter ?? '-',
          readings: c.readings,
          errors,
        }),
      };
    });
    node.status({ fill: 'grey', shape: 'ring', text: 'teleinfo-parse.status.waiting' });

    node.on('input', (msg: NodeMessageInFlow & { port?: string | number }, send, done) => {
      const stream = `${msg.port ?? msg.topic ?? ''}`;
      const { readings, errors } = parser.parse(msg.payload, stream, new Date());
      const out = readings.map((reading, i) => {
        const m = i === 0 ? msg : { ...msg, _msgid: RED.util.generateId() };
        m.payload = reading;
        m.topic = renderTopic(topicPattern, reading);
        return m;
      });
      if (out.length > 0) send([out]);
      status.schedule();
      if (errors.length === 0) return done();
      const more = errors.length > 1 ? ` (and ${errors.length - 1} more)` : '';
      failInput(node, done, `${errors[0]}${more}`, {
        fill: 'red',
        shape: 'ring',
        text: RED._('teleinfo-parse.status.error', { count: errors.length }),
      });
    });

    node.on('close', (_removed: boolean, done: () => void) => {
      status.stop();
      done();
    });
  }
  RED.nodes.registerType('teleinfo-parse', TeleinfoParseNode);
};
