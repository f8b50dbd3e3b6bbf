import type { Node } from 'node-red';
import type { EcoDevicesClient } from '../lib/ecodevices/client';

export interface Credentials {
  user?: string;
  password?: string;
}

/** What the nodes that poll a box see of its config node. */
export interface EcoDevicesDeviceNode extends Node<Credentials> {
  /** One client, hence one queue and one keep-alive connection, per box. */
  readonly client: EcoDevicesClient;
  /** Names alerts and meters without an ADCO. */
  readonly deviceId: string;
  register(user: Node): unknown;
  deregister(user: Node): unknown;
}
