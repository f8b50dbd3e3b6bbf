import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import mqtt from 'mqtt';
import { messageRecord, Spool, spoolDir } from '../../nodes/lib/spool';
import { FIXTURES } from '../support/fixtures';
import { startInstance } from '../support/node-red-process';
import { hcReading } from '../support/readings';
import { freePort, serviceSkip, startMosquitto, tempDir, waitFor } from '../support/services';

/**
 * A Pi's userDir of 0.1.0 (test/fixtures/upgrade-0.1.0/flows.json: the Pi flow of then, with teleinfo-buffer nodes
 * and readings on teleinfo/<meter>/reading) and readings its spool still held, started on this version as it is.
 */
test(
  'upgrading a 0.1.0 Pi: its flow starts with no unknown node, its spooled readings are kept and sent, and the log says what to change',
  { skip: serviceSkip('mosquitto') },
  async () => {
    const dir = tempDir('upgrade-pi');
    const mosquittoDir = tempDir('upgrade-mosquitto');
    const mosquitto = await startMosquitto({ dir: mosquittoDir });
    const flows = JSON.parse(fs.readFileSync(path.join(FIXTURES, 'upgrade-0.1.0', 'flows.json'), 'utf8')) as {
      type: string;
    }[];
    assert.ok(
      flows.some((n) => n.type === 'teleinfo-buffer'),
      'the fixture is a flow of then',
    );
    // What the 0.1.0 node had spooled and not yet sent, in its own folder.
    const oldSpool = spoolDir(path.join(dir, 'teleinfo-buffer'), 'pi-buffer');
    const readings = [1, 2, 3].map((i) =>
      hcReading('021800000001', Date.parse('2026-11-30T10:00:00Z') + i * 1000, i),
    );
    const spool = new Spool(oldSpool, { maxBytes: 1024 * 1024, durability: 'power' });
    spool.append(readings.map((r) => messageRecord('teleinfo/021800000001/reading', r)));
    await new Promise<void>((resolve, reject) => spool.commit((err) => (err ? reject(err) : resolve())));
    spool.close();

    const listener = await mqtt.connectAsync(mosquitto.url, { protocolVersion: 5 });
    const received: string[] = [];
    listener.on('message', (_topic, payload) => received.push(payload.toString()));
    await listener.subscribeAsync('teleinfo/+/reading', { qos: 1 });
    const pi = await startInstance('pi', {
      dir,
      flows,
      env: {
        MQTT_URL: mosquitto.url,
        MQTT_CLIENT_ID: 'teleinfo-old-pi',
        PI_STATUS_TOPIC: 'teleinfo/old-pi/status',
        ECODEVICES_HOST: '127.0.0.1',
        ECODEVICES_PORT: String(await freePort()), // no box: only the spooled readings are sent
        POLL_SECONDS: '60',
        MQTT_CA_FILE: '',
      },
    });
    try {
      await waitFor(
        'the spooled readings sent',
        () =>
          readings.every((r) => received.some((p) => (JSON.parse(p) as { time: string }).time === r.time)),
        30_000,
      );
      const log = pi.log();
      assert.doesNotMatch(log, /Waiting for missing types|unknown type/i);
      assert.match(log, /teleinfo-buffer is now called teleinfo-spool/);
      assert.match(log, /the readings spooled under the old name were kept/);
      assert.match(log, /servers from 0\.2\.0 admit only teleinfo\/<pi-id>\/<meter>\/reading/);
      assert.equal(fs.existsSync(oldSpool), false, 'the old folder moved');
      assert.ok(fs.existsSync(spoolDir(path.join(dir, 'teleinfo-spool'), 'pi-buffer')));
    } catch (e) {
      console.log(pi.log().slice(-3000));
      throw e;
    } finally {
      await pi.stop();
      await listener.endAsync();
      await mosquitto.stop();
      for (const d of [dir, mosquittoDir]) fs.rmSync(d, { recursive: true, force: true });
    }
  },
);
