import type { Node, NodeAPI, NodeDef } from 'node-red';
import { EcoDevicesClient } from '../lib/ecodevices/client';
import { resolveCredential, valueOrEnv } from '../node-red';
import type { Credentials, EcoDevicesDeviceNode } from './types';

interface EcoDevicesDeviceDef extends NodeDef {
  host: string;
  port: string;
  /** 'env': `host` (`port`) names an environment variable holding it. */
  hostType?: string;
  portType?: string;
  https: boolean;
  timeout: string;
  rejectUnauthorized: boolean;
  deviceId: string;
}

/**
 * ecodevices-device: the connection to one Eco-Devices box, shared by every node that reads it, so that
 * their requests are serialized however many they are.
 */
export = function register(RED: NodeAPI): void {
  function EcoDevicesDevice(this: Node<Credentials>, config: EcoDevicesDeviceDef): void {
    RED.nodes.createNode(this, config);
    const users = new Set<string>();
    const host = valueOrEnv(RED, this, config.host, config.hostType);
    const client = new EcoDevicesClient({
      host,
      port: Number(valueOrEnv(RED, this, config.port, config.portType)) || (config.https ? 443 : 80),
      https: !!config.https,
      timeoutMs: Math.max(500, Number(config.timeout) || 5000),
      user: resolveCredential(RED, this, this.credentials.user),
      password: resolveCredential(RED, this, this.credentials.password),
      rejectUnauthorized: config.rejectUnauthorized !== false,
    });
    const device: Omit<EcoDevicesDeviceNode, keyof Node> = {
      client,
      deviceId: (config.deviceId || config.name || host).trim(),
      register: (user: Node) => users.add(user.id),
      deregister: (user: Node) => users.delete(user.id),
    };
    Object.assign(this, device);

    this.on('close', (_removed: boolean, done: () => void) => {
      client.close().then(done, done);
    });
  }
  RED.nodes.registerType<Node<Credentials>, EcoDevicesDeviceDef, unknown, Credentials>(
    'ecodevices-device',
    EcoDevicesDevice,
    {
      credentials: { user: { type: 'text' }, password: { type: 'password' } },
    },
  );
};
