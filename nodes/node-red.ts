import type { Node, NodeAPI, NodeStatus } from 'node-red';

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

/** Credentials are not substituted by Node-RED; ours accept `${ENV}` like every other property. */
export function resolveCredential(RED: NodeAPI, node: Node, value: string | undefined): string | undefined {
  if (!value) return value;
  return /^\$\{[^}]+\}$/.test(value) ? String(RED.util.evaluateEnvProperty(value, node) ?? '') : value;
}
