import type { Node, NodeAPI, NodeMessageInFlow, NodeStatus } from 'node-red';
import type { SpoolHealth } from './lib/health';

/**
 * Small helpers shared by our nodes: one way to report an error (status + done(err), so Catch nodes see it),
 * and a status that is refreshed at most once per interval on busy streams.
 */

export function failInput(
  node: Node,
  done: (err?: Error) => void,
  message: string,
  status: NodeStatus,
): void {
  node.status(status);
  done(new Error(message));
}

export class ThrottledStatus {
  private timer: NodeJS.Timeout | null = null;

  constructor(
    private readonly node: Node,
    private readonly render: () => NodeStatus,
    private readonly intervalMs = 500,
  ) {}

  /** Refresh soon (trailing edge), so the last state is always shown. */
  schedule(): void {
    if (this.timer) return;
    this.timer = setTimeout(() => {
      this.timer = null;
      this.node.status(this.render());
    }, this.intervalMs);
  }

  stop(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
  }
}

/** This package's version, as a Pi reports it in its health and a server compares it. */
// eslint-disable-next-line @typescript-eslint/no-require-imports
export const PACKAGE_VERSION = (require('../../package.json') as { version: string }).version;

/** What one node adds to its Pi's health (teleinfo-health): a spool's state, or decode and poll errors by kind. */
export interface HealthPart {
  readonly spool?: SpoolHealth;
  readonly errors?: Readonly<Record<string, number>>;
}

/** The nodes of this runtime that add to its health, by id. */
const healthParts = new Map<string, () => HealthPart>();

/** `node` adds `part()` to this runtime's health while it runs. */
export function reportHealth(node: Node, part: () => HealthPart): void {
  healthParts.set(node.id, part);
  node.on('close', () => healthParts.delete(node.id));
}

/** What every node of this runtime adds to its health now. */
export function healthOfRuntime(): HealthPart[] {
  return [...healthParts.values()].map((part) => part());
}

/** Credentials are not substituted by Node-RED; ours accept `${ENV}` like every other property. */
export function resolveCredential(RED: NodeAPI, node: Node, value: string | undefined): string | undefined {
  if (!value) return value;
  return /^\$\{[^}]+\}$/.test(value) ? String(RED.util.evaluateEnvProperty(value, node) ?? '') : value;
}

/**
 * A property the editor offers as a typedInput of a value or an environment variable: `type` 'env' names the
 * variable (looked up in the node's group, tab, global environment, then the process). A plain value may still
 * be `${VAR}`, which Node-RED substitutes before the node starts.
 */
export function valueOrEnv(
  RED: NodeAPI,
  node: Node,
  value: string | undefined,
  type: string | undefined,
): string {
  if (type !== 'env') return (value ?? '').trim();
  return String(RED.util.evaluateNodeProperty(value ?? '', 'env', node, {}) ?? '').trim();
}

/** What a Status node sends about the node it watches (an mqtt out, a serial in): that node's status. */
export interface LinkStatusMessage extends NodeMessageInFlow {
  status: { fill?: string; text?: string; source?: { id?: string } };
}

export function isLinkStatus(msg: NodeMessageInFlow): msg is LinkStatusMessage {
  const status = (msg as Partial<LinkStatusMessage>).status;
  return typeof status === 'object' && status !== null && msg.payload === undefined;
}

/**
 * The watched link as its node's status says: green is connected, red is lost (the core mqtt and serial nodes
 * both), anything else (connecting, stopped) neither.
 */
export function linkState(msg: LinkStatusMessage): 'up' | 'down' | 'other' {
  return msg.status.fill === 'green' ? 'up' : msg.status.fill === 'red' ? 'down' : 'other';
}

/** Our nodes that only read the messages they receive: they never change a message, its payload or a reading. */
const READ_ONLY_RECEIVERS = new Set(['influx-teleinfo-out', 'teleinfo-alert', 'teleinfo-spool']);
/** Our nodes that never touch a message once sent. */
const SENDERS = new Set(['teleinfo-parse', 'ecodevices-in']);
const UNCLONED_HOOK = 'onSend.teleinfo-uncloned';

/**
 * Node-RED deep-clones every message of a send() but the first, so that no receiver sees another's changes: on a
 * server, teleinfo-parse's readings going to influx-teleinfo-out and teleinfo-alert cost a deep clone each (12 % of
 * the server's CPU in `bench:e2e`'s burst). When every wire of a sender of ours ends at a node that only reads its
 * messages, nothing can tell a clone from the original, so its messages go uncloned. Any other node on those wires
 * (a Function, a Change) keeps Node-RED's cloning for everything that sender sends. An `onSend` hook is Node-RED's
 * public way to change routing; the test helper's runtime has no hooks and clones as usual.
 */
export function deliverReadOnlyUncloned(RED: NodeAPI): void {
  if (!RED.hooks || RED.hooks.has(UNCLONED_HOOK)) return;
  // Wires change only on a deploy, which makes new node objects.
  const readOnlyWires = new WeakMap<object, boolean>();
  RED.hooks.add(UNCLONED_HOOK, (events: { source: { node: Node }; cloneMessage: boolean }[]) => {
    if (events.length < 2) return;
    const source = events[0].source.node as Node & { wires?: string[][] };
    let uncloned = readOnlyWires.get(source);
    if (uncloned === undefined) {
      uncloned =
        SENDERS.has(source.type) &&
        (source.wires ?? []).every((port) =>
          // A receiver that is not running (disabled) counts as another node: enabling it alone redeploys it
          // without the sender, whose cached answer must still hold.
          port.every((id) => READ_ONLY_RECEIVERS.has(RED.nodes.getNode(id)?.type)),
        );
      readOnlyWires.set(source, uncloned);
    }
    if (uncloned) for (const event of events) event.cloneMessage = false;
  });
}
