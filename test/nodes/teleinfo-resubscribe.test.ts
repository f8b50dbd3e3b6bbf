import assert from 'node:assert/strict';
import fs from 'node:fs';
import { afterEach, beforeEach, describe, test } from 'node:test';
import mqtt from 'mqtt';
import resubscribe from '../../nodes/teleinfo-resubscribe/teleinfo-resubscribe';
import { coreNodes, emitter, helper, startHelper, stopHelper } from '../support/node-red';
import { serviceSkip, startMosquitto, tempDir, waitFor, type Mosquitto } from '../support/services';

type Status = { fill?: string; text?: string };
interface Msg {
  topic?: string;
  payload: unknown;
}

/**
 * A core mqtt in on a shared subscription, with a persistent MQTT 5 session, and a real mosquitto 2.0 restarted on
 * the same port and persistence directory: the broker restores the session without its shared subscription.
 */
describe(
  'teleinfo-resubscribe with a core mqtt in on $share and a real mosquitto restart (Node-RED test helper)',
  {
    skip: serviceSkip('mosquitto'),
  },
  () => {
    let dir: string;
    let broker: Mosquitto;
    beforeEach(async () => {
      dir = tempDir('resubscribe-mosquitto');
      broker = await startMosquitto({ dir });
      await startHelper();
    });
    afterEach(async () => {
      await stopHelper();
      await broker.stop();
      fs.rmSync(dir, { recursive: true, force: true });
    });

    async function publish(topic: string, payload: string): Promise<void> {
      const client = await mqtt.connectAsync(broker.url, { protocolVersion: 5 });
      await client.publishAsync(topic, payload, { qos: 1 });
      await client.endAsync();
    }

    const flow = () => [
      { id: 'tab', type: 'tab' },
      {
        id: 'broker',
        type: 'mqtt-broker',
        broker: broker.url,
        clientid: 'resubscribe-test',
        protocolVersion: '5',
        cleansession: false,
        sessionExpiry: '3600',
        autoUnsubscribe: false,
        keepalive: '15',
      },
      {
        id: 'in',
        z: 'tab',
        type: 'mqtt in',
        topic: '$share/ingest/meters/+/reading',
        qos: '1',
        datatype: 'utf8',
        broker: 'broker',
        wires: [['received']],
      },
      { id: 'received', z: 'tab', type: 'helper' },
      { id: 'renew', z: 'tab', type: 'teleinfo-resubscribe', broker: 'broker', wires: [['requests']] },
      { id: 'requests', z: 'tab', type: 'helper' },
    ];

    /** Load the flow; what its helper nodes receive and the resubscribe node's statuses. */
    async function load() {
      await helper.load([coreNodes.mqtt, resubscribe] as never, flow());
      const received: Msg[] = [];
      const requests: Msg[] = [];
      const statuses: Status[] = [];
      emitter(helper.getNode('received')).on('input', (m: Msg) => received.push(m));
      emitter(helper.getNode('requests')).on('input', (m: Msg) => requests.push(m));
      emitter(helper.getNode('renew')).on('call:status', (c: { args: [Status] }) => statuses.push(c.args[0]));
      return { received, requests, statuses };
    }

    test('after every connection (a broker restart, a Node-RED restart): subscriptions renewed, readings arrive, a replay request', async () => {
      const { received, requests, statuses } = await load();
      await waitFor(
        'the replay request after the first connection (a new session)',
        () => requests.length === 1,
      );
      await publish('meters/m1/reading', 'before');
      await waitFor('the reading before the restart', () => received.length === 1);

      await broker.stop();
      broker = await startMosquitto({ dir, port: broker.port });
      await waitFor('the replay request after the reconnection', () => requests.length === 2, 20_000);
      await publish('meters/m1/reading', 'after');
      await waitFor('the reading after the restart', () => received.length === 2);

      assert.deepEqual(
        received.map((m) => m.payload),
        ['before', 'after'],
      );
      assert.deepEqual(requests[1].payload, {
        ...(requests[1].payload as object),
        request: 'replay',
        by: 'resubscribe-test',
      });
      // The test helper does not translate: status texts are the i18n keys here.
      assert.deepEqual(statuses.at(-1), {
        fill: 'green',
        shape: 'dot',
        text: 'teleinfo-resubscribe.status.watching',
      });

      // Node-RED restarts (a redeploy here) and finds its session: a replay request all the same, since a server
      // that was killed had acknowledged readings it never stored.
      await helper.unload();
      const again = await load();
      await waitFor('the replay request after the restart', () => again.requests.length === 1);
      await publish('meters/m1/reading', 'reloaded');
      await waitFor('the reading after the reload', () => again.received.length === 1);
    });

    test('without an MQTT broker config node: a red status and an error, no crash', async () => {
      await helper.load(
        [coreNodes.mqtt, resubscribe] as never,
        [
          { id: 'tab', type: 'tab' },
          { id: 'renew', z: 'tab', type: 'teleinfo-resubscribe', broker: 'missing', wires: [[]] },
        ] as never,
      );
      const renew = helper.getNode('renew') as unknown as {
        status: { args: [Status][] };
        error: { called: boolean };
      };
      assert.equal(renew.status.args.at(-1)![0].fill, 'red');
      assert.ok(renew.error.called);
    });
  },
);
