import type { Node, NodeAPI, NodeDef, NodeMessageInFlow, NodeStatus } from 'node-red';
import {
  deliverReadOnlyUncloned,
  failInput,
  isLinkStatus,
  linkState,
  reportHealth,
  ThrottledStatus,
  valueOrEnv,
  type LinkStatusMessage,
} from '../node-red';
import { renderTopic, TeleinfoParser, type EmitPolicy, type ParserCounters } from '../lib/teleinfo-parser';
import { BaudHunt, serialSettings } from '../lib/tic/baud-hunt';
import type { TicMode } from '../lib/tic/labels';

interface TeleinfoParseDef extends NodeDef {
  mode: string;
  /** 'env': `mode` names an environment variable holding it. */
  modeType?: string;
  emit: EmitPolicy;
  interval: string;
  labels: string;
  topic: string;
  device: string;
  /** A second output drives a `serial control` node: the baud of the mode, or the one `auto` finds. */
  serialControl?: boolean;
}

type ParseMessage = NodeMessageInFlow & { port?: string | number };

const MODES = new Set(['auto', 'historic', 'standard']);
const errorCount = (c: ParserCounters) =>
  c.checksumErrors +
  c.formatErrors +
  c.interruptedFrames +
  c.oversizeErrors +
  c.modeErrors +
  c.valueErrors +
  c.invalidInputs;

/**
 * teleinfo-parse: raw TIC (serial chunks, frames or lines), Eco-Devices JSON/XML, or normalized readings in;
 * one message per complete reading out. Fed by a serial in node, it also follows the serial line (a Status node
 * tells it when the port goes and comes back) and, with its second output, sets the port's baud.
 */
export = function register(RED: NodeAPI): void {
  deliverReadOnlyUncloned(RED);
  function TeleinfoParseNode(this: Node, config: TeleinfoParseDef): void {
    RED.nodes.createNode(this, config);
    const node: Node = this; // eslint-disable-line @typescript-eslint/no-this-alias -- used in closures below
    const mode = valueOrEnv(RED, node, config.mode, config.modeType) || 'auto';
    if (!MODES.has(mode)) {
      node.error(RED._('teleinfo-parse.errors.mode', { mode }));
      node.status({ fill: 'red', shape: 'ring', text: 'teleinfo-parse.status.bad-mode' });
      return;
    }
    const parser = new TeleinfoParser({
      mode: mode as TicMode | 'auto',
      emit: config.emit || 'all',
      intervalSeconds: Math.max(0, Number(config.interval) || 0),
      labels: (config.labels || '')
        .split(/[\s,]+/)
        .map((l) => l.trim())
        .filter(Boolean),
      device: config.device || 'ecodevices',
    });
    const topicPattern = config.topic || 'teleinfo/{meter}';
    const hunt = config.serialControl ? new BaudHunt(mode as TicMode | 'auto', Date.now()) : null;
    let lineLosses = 0;
    let lineDown = false;
    reportHealth(node, () => {
      const c = parser.counters;
      return {
        errors: {
          checksum: c.checksumErrors,
          format: c.formatErrors,
          interrupted: c.interruptedFrames,
          oversize: c.oversizeErrors,
          mode: c.modeErrors,
          value: c.valueErrors,
          input: c.invalidInputs,
          'line-lost': lineLosses,
        },
      };
    });

    const status = new ThrottledStatus(node, (): NodeStatus => {
      const c = parser.counters;
      const errors = errorCount(c);
      if (lineDown) {
        return {
          fill: 'red',
          shape: 'ring',
          text: RED._('teleinfo-parse.status.line-lost', { count: lineLosses }),
        };
      }
      if (hunt && !hunt.locked && hunt.mode === 'auto') {
        return {
          fill: 'yellow',
          shape: 'ring',
          text: RED._('teleinfo-parse.status.hunting', { baud: hunt.baud, errors }),
        };
      }
      return {
        fill: errors > 0 || lineLosses > 0 ? 'yellow' : 'green',
        shape: 'dot',
        text: RED._(hunt ? 'teleinfo-parse.status.serial' : 'teleinfo-parse.status.summary', {
          mode: parser.lastMode ?? '-',
          meter: parser.lastMeter ?? '-',
          readings: c.readings,
          errors,
          baud: hunt?.baud ?? '',
        }),
      };
    });
    node.status({ fill: 'grey', shape: 'ring', text: 'teleinfo-parse.status.waiting' });

    /** Reopen the serial port at `baud` through the wired serial control node. */
    const setBaud = (baud: number) => {
      node.send([null, { payload: serialSettings(baud as 1200 | 9600) }]);
    };
    if (hunt) setImmediate(() => setBaud(hunt.baud));

    /** A Status node's message about the serial in node: the port went away, or is back. */
    const followLine = (msg: LinkStatusMessage, done: (err?: Error) => void) => {
      const state = linkState(msg);
      if (state === 'down' && !lineDown) {
        lineDown = true;
        lineLosses++;
        const dropped = parser.lineLost();
        status.schedule();
        const detail = dropped.length > 0 ? `; ${dropped[0]}` : '';
        return failInput(
          node,
          done,
          `serial line lost: the serial port is gone (adapter unplugged?)${detail}`,
          {
            fill: 'red',
            shape: 'ring',
            text: RED._('teleinfo-parse.status.line-lost', { count: lineLosses }),
          },
        );
      }
      if (state === 'up' && lineDown) {
        lineDown = false;
        hunt?.reopened(Date.now());
        node.log(RED._('teleinfo-parse.log.line-back', { count: lineLosses }));
        status.schedule();
      }
      done();
    };

    node.on('input', (msg: ParseMessage, send, done) => {
      if (isLinkStatus(msg)) return followLine(msg, done);
      const stream = `${msg.port ?? msg.topic ?? ''}`;
      const { readings, errors, validGroups } = parser.parse(msg.payload, stream, new Date());
      if (hunt && (typeof msg.payload === 'string' || msg.payload instanceof Uint8Array)) {
        const switchTo = hunt.observe(msg.payload.length, validGroups, Date.now());
        if (switchTo !== null) {
          errors.push(...parser.lineLost());
          node.warn(RED._('teleinfo-parse.log.baud', { baud: switchTo }));
          node.status({
            fill: 'yellow',
            shape: 'ring',
            text: RED._('teleinfo-parse.status.hunting', {
              baud: switchTo,
              errors: errorCount(parser.counters),
            }),
          });
          setBaud(switchTo);
        }
      }
      const out = readings.map((reading, i) => {
        const m = i === 0 ? msg : { ...msg, _msgid: RED.util.generateId() };
        m.payload = reading;
        m.topic = renderTopic(topicPattern, reading);
        return m;
      });
      if (out.length > 0) send(hunt ? [out, null] : [out]);
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
