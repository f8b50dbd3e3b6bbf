import type { Node } from 'node-red';
import type { PipelineStatus, WritePipeline } from '../lib/influx/pipeline';
import type { InfluxDatabase } from '../lib/influx/database';

export interface Credentials {
  user?: string;
  password?: string;
  token?: string;
}

/** What influx-teleinfo-out nodes see of their server config node. */
export interface InfluxServerNode extends Node<Credentials> {
  /** One pipeline (spool, batches, retries) per server, shared by every node that writes to it. */
  readonly pipeline: WritePipeline | null;
  /** InfluxDB 1.x's queries and retention policies, for teleinfo-rollup; null for 2.x/3.x or a bad configuration. */
  readonly database: InfluxDatabase | null;
  /** Why there is no pipeline (bad configuration). */
  readonly configError: string | null;
  /** `onStatus` hears every change of the pipeline's state. */
  register(user: Node, onStatus: (status: PipelineStatus) => void): unknown;
  deregister(user: Node): unknown;
}
