import assert from 'node:assert/strict';
import { afterEach, describe, test } from 'node:test';
import mqtt from 'mqtt';
import type { SimEvents } from '../../nodes/lib/simulator/ecodevices-server';
import { readings, startSite, stopSite, type Site } from '../support/end-to-end';
import { serviceSkip, waitFor } from '../support/services';

/**
 * Alerts end to end: the simulated box makes its meters spike, overrun, announce a red Tempo day and go offline;
 * the shipped Pi and server flows, mosquitto and influxd run as ever, and the server's teleinfo-alert publishes
 * each alert, retained, on teleinfo/<meter>/alert/<rule>: every expected one raised once and cleared once, in
 * order, and nothing else.
 */

const skip = serviceSkip('mosquitto') || serviceSkip('influxd');
type Alert = { rule: string; state: string; meter: string };

describe('alerts through the shipped flows', { skip }, () => {
  let site: Site | null = null;
  let watcher: mqtt.MqttClient | null = null;
  afterEach(async () => {
    await watcher?.endAsync();
    if (site) await stopSite(site);
    site = null;
  });

  test('a spike, an overrun, a red tomorrow and an offline box: each alert raised once and cleared once, nothing else', async () => {
    site = await startSite('alerts', {
      contracts: ['TEMPO', 'HC'],
      // Summer: the Tempo calendar has no red day of its own to announce.
      simStart: Date.parse('2026-07-01T10:00:00Z'),
      // The shipped rules with test-sized delays.
      alert: { thresholdVA: '9000', raiseAfter: '4', clearAfter: '6', silenceMinutes: '0.2' },
    });
    const alerts: Alert[] = [];
    watcher = await mqtt.connectAsync(site.mosquitto.url, { protocolVersion: 5 });
    watcher.on('message', (_topic, payload) => {
      const a = JSON.parse(payload.toString()) as Alert & { text: string };
      alerts.push({ rule: a.rule, state: a.state, meter: a.meter });
      console.log(`# alert: ${a.meter} ${a.rule} ${a.state}: ${a.text}`);
    });
    await watcher.subscribeAsync('teleinfo/+/alert/+', { qos: 1 });
    await readings(site, 8);
    const state = (await (await fetch(`http://127.0.0.1:${site.box.port}/__sim/state`)).json()) as {
      inputs: { adco: string }[];
    };
    const [tempo, hc] = state.inputs.map((i) => i.adco);
    const inject = (events: SimEvents) =>
      fetch(`http://127.0.0.1:${site!.box.port}/__sim/events`, {
        method: 'POST',
        body: JSON.stringify(events),
      });
    const seen = (meter: string, rule: string, s: string) => () =>
      alerts.some((a) => a.meter === meter && a.rule === rule && a.state === s);

    await inject({ input: 1, spikeVa: 10_000, spikeSeconds: 12 });
    await waitFor('the spike raised', seen(tempo, 'high-consumption', 'raised'), 30_000);
    await waitFor('the spike cleared', seen(tempo, 'high-consumption', 'cleared'), 40_000);

    await inject({ input: 2, overrunSeconds: 8 });
    await waitFor('the overrun raised', seen(hc, 'overrun', 'raised'), 30_000);
    await waitFor('the overrun cleared', seen(hc, 'overrun', 'cleared'), 40_000);

    await inject({ input: 1, tomorrowRed: true });
    await waitFor('the red day announced', seen(tempo, 'tempo', 'raised'), 30_000);
    await inject({ input: 1, tomorrowRed: false });
    await waitFor('the red day over', seen(tempo, 'tempo', 'cleared'), 40_000);

    // Every meter of the box goes silent with it: its two Téléinfo meters and its two pulse counters.
    const boxMeters = [tempo, hc, 'Eco-Devices-gas', 'Eco-Devices-water'];
    const all = (s: string) => () => boxMeters.every((m) => seen(m, 'silence', s)());
    site.box.setFaults({ offlineMs: 25_000 });
    await waitFor('every meter of the box silent', all('raised'), 60_000);
    await waitFor('every meter of the box back', all('cleared'), 60_000);

    const order = alerts.map(
      (a) => `${a.meter === tempo ? 'T1' : a.meter === hc ? 'T2' : a.meter} ${a.rule} ${a.state}`,
    );
    console.log(`# alerts, in order: ${order.join(' | ')}`);
    const silences = order.slice(6);
    assert.deepEqual(order.slice(0, 6), [
      'T1 high-consumption raised',
      'T1 high-consumption cleared',
      'T2 overrun raised',
      'T2 overrun cleared',
      'T1 tempo raised',
      'T1 tempo cleared',
    ]);
    const meters = ['Eco-Devices-gas', 'Eco-Devices-water', 'T1', 'T2'];
    assert.deepEqual(
      silences.slice(0, 4).sort(),
      meters.map((m) => `${m} silence raised`),
    );
    assert.deepEqual(
      silences.slice(4).sort(),
      meters.map((m) => `${m} silence cleared`),
    );
  });
});
