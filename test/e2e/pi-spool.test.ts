import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { afterEach, describe, test } from 'node:test';
import mqtt from 'mqtt';
import {
  mqttUrl,
  readings,
  report,
  sentKeys,
  settle,
  startPi,
  startSite,
  stopSite,
  storedKeys,
  storedSince,
  type Site,
} from '../support/end-to-end';
import { PubackProxy } from '../support/puback-proxy';
import { freePort, serviceSkip, waitFor } from '../support/services';

/**
 * The Pi's spool under what a Raspberry Pi meets, with the shipped flows, real mosquitto, influxd and two Node-RED
 * processes: a record torn by a power cut, and a broker that takes readings without acknowledging them.
 */

const skip = serviceSkip('mosquitto') || serviceSkip('influxd');

const spoolDir = (site: Site) => path.join(site.piDir, 'teleinfo-spool', 'pi-spool');

describe("the Pi's spool with the shipped flows", { skip }, () => {
  let site: Site | null = null;
  afterEach(async () => {
    if (site) await stopSite(site);
    site = null;
  });

  test('a torn record (power cut) in the stopped Pi spool: it starts, quarantines the record, publishes, and the server stores all it held; the backlog goes as arrays of one meter', async () => {
    site = await startSite('damaged');
    await readings(site, 8);
    await site.link.cut(); // the broker out of reach: readings wait in the spool
    await readings(site, 8);
    await site.pi.stop();
    const segments = fs.readdirSync(spoolDir(site)).filter((f) => f.endsWith('.spool'));
    const torn = Buffer.concat([Buffer.from('{"meter":"02186134'), Buffer.alloc(4096)]);
    fs.appendFileSync(path.join(spoolDir(site), segments.at(-1)!), torn);

    await site.link.open();
    // What the restarted Pi publishes, as any subscriber gets it.
    const published: { topic: string; payload: unknown }[] = [];
    const watcher = await mqtt.connectAsync(site.mosquitto.url, { protocolVersion: 5 });
    watcher.on('message', (topic, payload) =>
      published.push({ topic, payload: JSON.parse(payload.toString()) }),
    );
    await watcher.subscribeAsync('teleinfo/+/+/reading', { qos: 1 });
    const before = new Set(sentKeys(site.piDir).keys());
    site.pi = await startPi(site.piDir, mqttUrl(site, site.link.port), site.box.port);
    await waitFor('the damaged bytes quarantined and logged', () => /damaged bytes/.test(site!.pi.log()));
    await storedSince(site, before);
    await watcher.endAsync();
    // The shipped flow puts up to 100 readings of one meter in a message: the queued polls of each meter go together.
    const arrays = published.filter((m) => Array.isArray(m.payload));
    assert.ok(
      arrays.some((m) => (m.payload as unknown[]).length > 1),
      `some backlog message holds several readings: ${published.map((m) => (Array.isArray(m.payload) ? m.payload.length : 1)).join(',')}`,
    );
    for (const { topic, payload } of arrays)
      for (const r of payload as { meter: string }[])
        assert.equal(topic.split('/')[2], r.meter.replace(/[+#/\s]/g, '_'), `${r.meter} on ${topic}`);
    assert.equal(site.pi.pid > 0 && process.kill(site.pi.pid, 0), true, 'the Pi is up');
    const quarantine = fs.readFileSync(path.join(spoolDir(site), 'quarantine.jsonl'), 'utf8');
    const record = JSON.parse(quarantine.trim().split('\n')[0]) as { base64: string; bytes: number };
    assert.deepEqual(Buffer.from(record.base64, 'base64'), torn);
    report('torn spool record', await settle(site));
  });

  test('PUBACKs withheld: at most the window in flight, nothing leaves the spool that no server stored; once they flow again the backlog drains with at most the window in flight', async () => {
    site = await startSite('puback');
    await site.pi.stop();
    const proxy = new PubackProxy(await freePort(), site.link.port);
    await proxy.open();
    try {
      const window = 5;
      site.pi = await startPi(
        site.piDir,
        mqttUrl(site, proxy.port),
        site.box.port,
        {},
        { window: String(window) },
      );
      await readings(site, 4);
      const released = () =>
        (JSON.parse(fs.readFileSync(path.join(spoolDir(site!), 'head.json'), 'utf8')) as { seq: number }).seq;
      proxy.dropAcks = true;
      await readings(site, 24);
      assert.ok(proxy.counters.pubacksDropped > 0, 'the broker acknowledged, the proxy withheld');
      assert.ok(proxy.inFlightNow <= window, `${proxy.inFlightNow} in flight with PUBACKs withheld`);
      const queued = sentKeys(site.piDir).size;
      assert.ok(
        queued - proxy.counters.publishes >= 15,
        `readings wait in the spool (${proxy.counters.publishes} published of ${queued})`,
      );
      // Released only what a server stored: its acknowledgements, not the broker's, release a reading.
      const left = released();
      const stored = (await storedKeys(site)).size;
      assert.ok(left <= stored, `${left} readings left the spool, ${stored} are stored`);

      proxy.dropAcks = false;
      proxy.counters.maxInFlight = 0;
      proxy.reset(); // the lost PUBACKs never come: the Pi reconnects and sends the spool from its head again
      const before = new Set(sentKeys(site.piDir).keys());
      await storedSince(site, before);
      const r = await settle(site);
      console.log(
        `# PUBACKs withheld: ${proxy.counters.pubacksDropped} withheld, then drained with at most ${proxy.counters.maxInFlight} in flight (window ${window})`,
      );
      assert.ok(proxy.counters.maxInFlight <= window, `${proxy.counters.maxInFlight} in flight`);
      report('PUBACKs withheld', r);
    } finally {
      await proxy.close();
    }
  });
});
