import helper from 'node-red-node-test-helper';
import type { EventEmitter } from 'node:events';

/** node-red-node-test-helper with the real Node-RED runtime, started and stopped around each test. */
helper.init(require.resolve('node-red'));

export { helper };

export async function startHelper(): Promise<void> {
  await new Promise<void>((resolve) => helper.startServer(() => resolve()));
}

export async function stopHelper(): Promise<void> {
  await helper.unload();
  await new Promise<void>((resolve) => helper.stopServer(() => resolve()));
}

/** The next `count` messages a helper node receives. */
export function nextMessages<T = Record<string, unknown>>(
  node: unknown,
  count: number,
  timeoutMs = 10_000,
): Promise<T[]> {
  return new Promise((resolve, reject) => {
    const got: T[] = [];
    const timer = setTimeout(() => reject(new Error(`got ${got.length} of ${count} messages`)), timeoutMs);
    (node as EventEmitter).on('input', (msg: T) => {
      got.push(msg);
      if (got.length === count) {
        clearTimeout(timer);
        resolve(got);
      }
    });
  });
}

/** Node-RED core nodes, loaded beside ours when a test flow uses them. */
const core = (file: string): unknown => module.require(`@node-red/nodes/core/${file}`);
export const coreNodes = {
  mqtt: core('network/10-mqtt.js'),
  tls: core('network/05-tls.js'),
  catch: core('common/25-catch.js'),
  status: core('common/25-status.js'),
  complete: core('common/24-complete.js'),
};

/** A helper node as an event emitter, to listen to its events. */
export const emitter = (node: unknown) => node as EventEmitter;
