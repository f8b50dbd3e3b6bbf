import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import mqtt from 'mqtt';
import { chromium, type Browser, type Page } from 'playwright-core';
import { TeleinfoParser } from '../../nodes/lib/teleinfo-parser';
import type { Reading } from '../../nodes/lib/reading';
import { SimulatedMeter } from '../../nodes/lib/simulator/meter';
import { encodeTicFrame } from '../../nodes/lib/tic/encoder';
import { ROOT } from '../support/fixtures';
import { startNodeRed, type NodeRedProcess } from '../support/node-red-process';
import { serviceSkip, startMosquitto, tempDir, waitFor, type Mosquitto } from '../support/services';

/**
 * The Live dashboard example (Node-RED Dashboard 2.0) in a real Node-RED, opened in Chromium: the simulator's
 * meters publish readings as a Pi does, and the page's apparent power chart receives each of them as a point
 * (the socket.io messages the page gets), while its tables show today's energy, the Pis and the active alerts.
 */

const skip = serviceSkip('chromium') || serviceSkip('mosquitto');

describe('the Live dashboard (Dashboard 2.0) in Chromium', { skip }, () => {
  let mosquitto: Mosquitto;
  let nr: NodeRedProcess;
  let browser: Browser;
  let page: Page;
  let pi: mqtt.MqttClient;
  const frames: string[] = [];
  // UPDATE_SCREENSHOTS=1 writes it where the README shows it.
  const shots = process.env.UPDATE_SCREENSHOTS ? path.join(ROOT, 'docs') : tempDir('dashboard-shots');
  const meters = ['021900000011', '021900000012'].map(
    (adco, i) =>
      new SimulatedMeter({
        adco,
        contract: i === 0 ? 'HC' : 'TEMPO',
        phases: 1,
        isousc: 45,
        seed: 9 + i,
        origin: Date.now() - 3_600_000,
      }),
  );
  const parser = new TeleinfoParser({
    mode: 'auto',
    emit: 'all',
    intervalSeconds: 0,
    labels: [],
    device: 'x',
  });
  const readingOf = (m: SimulatedMeter, time: number): Reading =>
    parser.parse(encodeTicFrame('historic', m.historicGroups(time)), m.config.adco, new Date(time))
      .readings[0];

  before(async () => {
    mosquitto = await startMosquitto();
    const flows = JSON.parse(
      fs.readFileSync(path.join(ROOT, 'examples', 'Live dashboard.json'), 'utf8'),
    ) as unknown[];
    nr = await startNodeRed({ flows, env: { MQTT_URL: mosquitto.url, MQTT_CA_FILE: '' } });
    await waitFor('the dashboard connected to the broker', () => nr.log().includes('Connected to broker'));
    browser = await chromium.launch({
      executablePath: '/usr/bin/chromium',
      headless: true,
      args: ['--headless', '--no-sandbox', '--disable-gpu', '--no-first-run'],
    });
    page = await browser.newPage({ viewport: { width: 1400, height: 900 } });
    page.on('websocket', (ws) => ws.on('framereceived', (f) => frames.push(String(f.payload))));
    pi = await mqtt.connectAsync(mosquitto.url, { protocolVersion: 5 });
  });

  after(async () => {
    await pi?.endAsync();
    await browser?.close();
    await nr?.stop();
    await mosquitto?.stop();
  });

  test('the chart receives a point for every reading of every meter; the tables show energy, Pis and alerts', async () => {
    await page.goto(`${nr.url}/dashboard/teleinfo`, { timeout: 60_000 });
    await page.waitForSelector('canvas', { timeout: 60_000 });
    await pi.publishAsync('teleinfo/pi-dash/status', 'online', { qos: 1, retain: true });
    const sent: Reading[] = [];
    // Readings of the last 50 minutes, each drawn at its own time.
    const t0 = Date.now() - 50 * 60_000;
    for (let i = 0; i <= 10; i++) {
      for (const m of meters) {
        const r = readingOf(m, t0 + i * 5 * 60_000);
        sent.push(r);
        await pi.publishAsync(`teleinfo/pi-dash/${r.meter}/reading`, JSON.stringify(r), { qos: 1 });
      }
    }
    await pi.publishAsync(
      'teleinfo/021900000011/alert/overrun',
      JSON.stringify({
        rule: 'overrun',
        state: 'raised',
        meter: '021900000011',
        since: new Date().toISOString(),
        text: 'ADPS',
      }),
      { qos: 1, retain: true },
    );
    // Each point reaches the page as a socket.io message for the chart widget.
    const points = () =>
      frames
        .filter((f) => f.includes('"msg-input:dash-power"'))
        .map(
          (f) =>
            JSON.parse(f.slice(f.indexOf('['))) as [string, { topic: string; payload: number; time: number }],
        )
        .map(([, msg]) => `${msg.topic} ${new Date(msg.time).toISOString()} ${msg.payload}`);
    await waitFor('every reading as a point on the chart', () => points().length >= sent.length, 30_000);
    assert.deepEqual(points().sort(), sent.map((r) => `${r.meter} ${r.time} ${r.apparentPower}`).sort());
    await waitFor('the Pi, the alert and the energy rows on the page', async () => {
      const text = await page.locator('body').innerText();
      return (
        text.includes('pi-dash') && text.includes('overrun') && /HCHC|HCHP/.test(text) && /BBRH/.test(text)
      );
    });
    // At 1,400 px, nothing covers the cards: no navigation drawer over their left, every card in the view.
    const covered = await page.evaluate(() => {
      const drawers = Array.from(document.querySelectorAll('.v-navigation-drawer'))
        .map((d) => d.getBoundingClientRect())
        .filter((r) => r.width > 0 && r.right > 0);
      return Array.from(document.querySelectorAll('.nrdb-ui-group')).flatMap((g) => {
        const r = g.getBoundingClientRect();
        const under = drawers.some(
          (d) => d.right > r.left && d.left < r.right && d.bottom > r.top && d.top < r.bottom,
        );
        return under || r.left < 0 || r.right > window.innerWidth ? [g.textContent?.slice(0, 30) ?? ''] : [];
      });
    });
    assert.deepEqual(covered, [], 'cards covered or out of the view');
    await page.screenshot({ path: path.join(shots, 'dashboard.png'), fullPage: true });
  });
});
