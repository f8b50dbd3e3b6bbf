import type { Node, NodeAPI, NodeDef, NodeStatus } from 'node-red';
import type { ISubscriptionGrant, ISubscriptionMap, MqttClient } from 'mqtt';
import { replayRequest } from '../lib/spool-forwarder';

interface ResubscribeDef extends NodeDef {
  broker: string;
}

/** The parts of Node-RED's core mqtt-broker config node (10-mqtt.js, 3.1 to 4.x) this node relies on. */
interface MqttBrokerNode extends Node {
  client?: MqttClient | null;
  clientid?: string;
  connected: boolean;
  /** topic → subscriber node id → its subscription, as the core mqtt in nodes made it. */
  subscriptions: Record<string, Record<string, { options?: SubscriptionOptions }>>;
  register(user: BrokerUser): void;
  deregister(user: BrokerUser, done: () => void, autoDisconnect?: boolean): void;
}

interface SubscriptionOptions {
  qos?: 0 | 1 | 2;
  nl?: boolean;
  rap?: boolean;
  rh?: number;
  properties?: Record<string, unknown>;
}

/** What the broker node calls on its users: only status(), with its connection state. */
interface BrokerUser {
  id: string;
  status(status: NodeStatus): void;
}

/**
 * teleinfo-resubscribe: each time an mqtt-broker config node connects, subscribes its shared subscriptions
 * ($share/...) again, then sends a replay request (for an mqtt out on teleinfo/replay). mosquitto 2.0 keeps a
 * persistent session across its own restart but forgets the session's shared subscriptions, and MQTT.js does not
 * subscribe again when the broker says the session is present: a server on $share would receive nothing more, and
 * what was published before it subscribed again is gone; the Pis' teleinfo-spool nodes send it again on request.
 * Subscribing again an existing subscription only replaces it.
 */
export = function register(RED: NodeAPI): void {
  function TeleinfoResubscribe(this: Node, config: ResubscribeDef): void {
    RED.nodes.createNode(this, config);
    const node: Node = this; // eslint-disable-line @typescript-eslint/no-this-alias -- used in closures below
    const broker = RED.nodes.getNode(config.broker) as MqttBrokerNode | null;
    let renewed = 0;
    let failed = 0;
    let connected = false;

    if (!broker || typeof broker.register !== 'function') {
      node.status({ fill: 'red', shape: 'ring', text: RED._('teleinfo-resubscribe.status.no-broker') });
      node.error(RED._('teleinfo-resubscribe.status.no-broker'), { payload: config.broker });
      return;
    }

    const user: BrokerUser = {
      id: node.id,
      status(status) {
        const nowConnected = status.fill === 'green';
        if (nowConnected && !connected) setImmediate(renew);
        connected = nowConnected;
        node.status(nowConnected ? render() : status);
      },
    };
    broker.register(user);

    function sharedTopics(): string[] {
      return Object.keys(broker!.subscriptions ?? {}).filter((topic) => topic.startsWith('$share/'));
    }

    /**
     * Subscribe again with the options (QoS, subscription identifier) the mqtt in nodes subscribed with; once the
     * broker has acknowledged them all, ask the publishers to send their overlap again. Asked after every
     * connection, even with the session present: a broker restart forgets shared subscriptions, and a server that
     * was killed had acknowledged readings (MQTT.js acknowledges on receipt) that never reached its spool.
     */
    function renew(): void {
      const client = broker!.client;
      if (!client || !broker!.connected) return;
      const topics = sharedTopics();
      let pending = topics.length;
      let refusals = 0;
      const acknowledged = (topic: string, err: Error | null, granted?: ISubscriptionGrant[]) => {
        if (!report(topic, err, granted)) refusals++;
        if (--pending === 0 && refusals === 0) requestReplay();
      };
      if (topics.length === 0) return requestReplay();
      for (const topic of topics) {
        const options = Object.values(broker!.subscriptions[topic])[0]?.options ?? {};
        const request = {
          [topic]: { qos: options.qos ?? 1, nl: options.nl, rap: options.rap, rh: options.rh },
          resubscribe: true,
        } as ISubscriptionMap;
        client.subscribe(request, { properties: options.properties }, (err, granted) =>
          acknowledged(topic, err, granted),
        );
      }
    }

    function requestReplay(): void {
      node.send({ payload: replayRequest(broker!.clientid ?? node.id) });
    }

    /** Whether the broker accepted the subscription; a refusal is an error a Catch node sees. */
    function report(topic: string, err: Error | null, granted?: ISubscriptionGrant[]): boolean {
      const refused = granted?.find((g) => g.qos >= 128);
      if (err || refused) {
        failed++;
        const reason = err?.message ?? `reason code ${refused!.qos}`;
        // With a message, so that a Catch node sees it.
        node.error(RED._('teleinfo-resubscribe.error.refused', { topic, reason }), {
          topic,
          payload: reason,
        });
        node.status({
          fill: 'red',
          shape: 'ring',
          text: RED._('teleinfo-resubscribe.status.refused', { topic }),
        });
        return false;
      }
      renewed++;
      node.status(render());
      return true;
    }

    function render(): NodeStatus {
      return {
        fill: failed > 0 ? 'yellow' : 'green',
        shape: 'dot',
        text: RED._('teleinfo-resubscribe.status.watching', { count: sharedTopics().length, renewed }),
      };
    }

    node.on('close', (removed: boolean, done: () => void) => {
      broker.deregister(user, done, removed);
    });
  }

  RED.nodes.registerType('teleinfo-resubscribe', TeleinfoResubscribe);
};
