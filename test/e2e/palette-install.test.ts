import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import mqtt from 'mqtt';
import { type Browser, type Page } from 'playwright-core';
import { SimClock } from '../../nodes/lib/simulator/ecodevices-server';
import { simulatedBox } from '../../nodes/lib/simulator/cli';
import { SerialLine } from '../../nodes/lib/simulator/serial-line';
import { SimulatedMeter } from '../../nodes/lib/simulator/meter';
import { encodeTicFrame } from '../../nodes/lib/tic/encoder';
import { launchChromium } from '../support/chromium';
import { ROOT } from '../support/fixtures';
import { startNodeRed, type NodeRedProcess } from '../support/node-red-process';
import {
  createStackDatabase,
  serviceSkip,
  startInfluxd,
  startMosquitto,
  tempDir,
  waitFor,
  type Influxd,
  type Mosquitto,
} from '../support/services';

/**
 * What a palette install gives: `npm pack`, then `npm install <tarball>` into a fresh Node-RED 4 userDir (offline,
 * from npm's cache), Node-RED started on it. Every node of the package is in the palette (admin API /nodes), every
 * example is under Import > Examples, and each example imported through the editor in Chromium deploys and runs
 * without an error against the simulated box, a simulated serial line, mosquitto and influxd.
 */

const skip =
  serviceSkip('chromium') || serviceSkip('mosquitto') || serviceSkip('influxd') || serviceSkip('socat');

declare const RED: {
  nodes: { filterNodes(f: { type: string }): { id: string }[] };
  actions: { invoke(name: string): void };
};

interface PackageJson {
  name: string;
  'node-red': { nodes: Record<string, string> };
}

describe('palette install from the packed tarball, examples imported in the editor', { skip }, () => {
  const pkg = JSON.parse(fs.readFileSync(path.join(ROOT, 'package.json'), 'utf8')) as PackageJson;
  const examples = fs
    .readdirSync(path.join(ROOT, 'examples'))
    .filter((f) => f.endsWith('.json'))
    .map((f) => f.replace(/\.json$/, ''))
    .sort();
  const userDir = tempDir('palette');
  const shots = process.env.UPDATE_SCREENSHOTS ? path.join(ROOT, 'docs') : tempDir('palette-shots');
  let nr: NodeRedProcess;
  let mosquitto: Mosquitto;
  let influxd: Influxd;
  let line: SerialLine;
  let browser: Browser;
  let page: Page;
  let watcher: mqtt.MqttClient;
  const published: string[] = [];
  const box = simulatedBox(
    { boxes: 1, contract: 'HC', contract2: 'TEMPO', phases: 1, isousc: 45, seed: 5, start: Date.now() },
    0,
    new SimClock(Date.now(), 1),
  );

  before(async () => {
    // The tarball of what `npm test` built (--ignore-scripts: prepack would rebuild dist/ under the running tests).
    const [packed] = JSON.parse(
      execFileSync('npm', ['pack', '--ignore-scripts', '--json', '--pack-destination', userDir], {
        cwd: ROOT,
        encoding: 'utf8',
      }),
    ) as { filename: string }[];
    fs.writeFileSync(path.join(userDir, 'package.json'), '{"name":"node-red-project","private":true}\n');
    execFileSync(
      'npm',
      [
        'install',
        '--prefer-offline',
        '--no-audit',
        '--no-fund',
        '--omit=dev',
        path.join(userDir, packed.filename),
      ],
      { cwd: userDir, stdio: 'pipe' },
    );
    mosquitto = await startMosquitto();
    influxd = await startInfluxd();
    await createStackDatabase(influxd, 'teleinfo');
    await box.listen(0);
    const meter = new SimulatedMeter({
      adco: '021861348497',
      contract: 'HC',
      phases: 1,
      isousc: 30,
      seed: 1,
      origin: Date.now(),
    });
    line = await SerialLine.open({
      path: path.join(userDir, 'ttyTIC'),
      baud: 1200,
      frame: () => Buffer.from(encodeTicFrame('historic', meter.historicGroups(Date.now())), 'latin1'),
    });
    nr = await startNodeRed({
      dir: path.join(userDir),
      installed: true,
      env: {
        MQTT_URL: mosquitto.url,
        MQTT_CLIENT_ID: 'palette-test',
        MQTT_READINGS_TOPIC: 'teleinfo/+/+/reading',
        MQTT_CA_FILE: '',
        PI_ID: 'pi-palette',
        PI_STATUS_TOPIC: 'teleinfo/pi-palette/status',
        ECODEVICES_HOST: '127.0.0.1',
        ECODEVICES_PORT: String(box.port),
        POLL_SECONDS: '2',
        INFLUX_URL: influxd.url,
        INFLUX_DB: 'teleinfo',
        TIC_PORT: path.join(userDir, 'ttyTIC'),
        TIC_MODE: 'auto',
        NTFY_URL: 'http://127.0.0.1:9/teleinfo',
      },
    });
    watcher = await mqtt.connectAsync(mosquitto.url, { protocolVersion: 5 });
    watcher.on('message', (topic) => published.push(topic));
    await watcher.subscribeAsync('teleinfo/#', { qos: 0 });
    browser = await launchChromium();
    page = await browser.newPage({ viewport: { width: 1400, height: 900 } });
  });

  after(async () => {
    await watcher?.endAsync();
    await browser?.close();
    await nr?.stop();
    await line?.close();
    await box.close();
    await influxd?.stop();
    await mosquitto?.stop();
  });

  test('every node of the package is in the palette, loaded from the installed module', async () => {
    const res = await fetch(`${nr.url}/nodes`, { headers: { accept: 'application/json' } });
    const sets = (await res.json()) as { module: string; types: string[]; enabled: boolean; err?: string }[];
    const ours = sets.filter((s) => s.module === pkg.name);
    // Each node set's types, and the name teleinfo-spool had in 0.1.0 (registered by its set, out of the palette).
    assert.deepEqual(
      ours.flatMap((s) => s.types).sort(),
      [...Object.keys(pkg['node-red'].nodes), 'teleinfo-buffer'].sort(),
    );
    assert.ok(
      ours.every((s) => s.enabled && !s.err),
      JSON.stringify(ours.filter((s) => s.err)),
    );
    const installed = JSON.parse(
      fs.readFileSync(path.join(userDir, 'node_modules', pkg.name, 'package.json'), 'utf8'),
    ) as { name: string };
    assert.equal(installed.name, pkg.name);
  });

  test('every example is listed under Import > Examples, and each is imported below', async () => {
    assert.deepEqual(Object.keys(runs).sort(), examples);
    const modules = (await (await fetch(`${nr.url}/library/examples/flows/`)).json()) as string[];
    assert.ok(modules.includes(pkg.name), `modules with examples: ${modules.join(', ')}`);
    const listed = (await (await fetch(`${nr.url}/library/examples/flows/${pkg.name}`)).json()) as {
      fn: string;
    }[];
    assert.deepEqual(listed.map((e) => e.fn).sort(), examples);
  });

  const stored = async () => {
    const r = (await influxd.query('SELECT count("phases") FROM teleinfo', 'teleinfo')) as {
      results: { series?: { values: [string, number][] }[] }[];
    };
    return r.results[0]?.series?.[0]?.values[0]?.[1] ?? 0;
  };
  /** What each example visibly does once deployed, beyond deploying without an error. */
  const runs: Record<string, (from: number) => Promise<void>> = {
    Alerts: async () => {},
    'Eco-Devices to InfluxDB (single instance)': async () => {
      await waitFor('readings of the simulated box in InfluxDB', async () => (await stored()) > 0, 30_000);
    },
    'Home Assistant discovery': async () => {},
    // Dashboard 2.0 is installed beside (the example says so): its page is served.
    'Live dashboard': async () => {
      await waitFor(
        'the dashboard page served',
        async () => (await fetch(`${nr.url}/dashboard/teleinfo`)).status === 200,
      );
    },
    'Linky serial TIC to MQTT': async (from) => {
      await waitFor('a reading of the serial line published', () =>
        published.slice(from).includes('teleinfo/pi-palette/021861348497/reading'),
      );
    },
    'Raspberry Pi publisher': async (from) => {
      await waitFor('a reading of the simulated box published', () =>
        published.slice(from).some((t) => /^teleinfo\/pi-palette\/\d+\/reading$/.test(t)),
      );
    },
    'Server ingest': async () => {},
  };

  for (const example of Object.keys(runs)) {
    test(`"${example}", imported through the editor and deployed: no error, and it runs`, async () => {
      const since = nr.log().length;
      // A failure shows what Node-RED said meanwhile.
      await importAndRun(example).catch((err: unknown) => {
        console.log(nr.log().slice(since).split('\n').slice(-40).join('\n'));
        throw err;
      });
    });
  }

  async function importAndRun(example: string) {
    await nr.deploy([]);
    await page.goto(nr.url, { timeout: 60_000 });
    await page.waitForSelector('.red-ui-palette-node[data-palette-type="teleinfo-parse"]', {
      timeout: 60_000,
    });
    await page.evaluate(() => RED.actions.invoke('core:show-import-dialog'));
    await page.locator('#red-ui-tab-red-ui-clipboard-dialog-import-tab-examples').click();
    const tab = page.locator('#red-ui-clipboard-dialog-import-tab-examples');
    await tab.locator('.red-ui-treeList-label', { hasText: pkg.name }).click();
    await tab
      .locator('.red-ui-treeList-label', { hasText: new RegExp(`^\\s*${escape(example)}\\s*$`) })
      .click();
    await page.locator('#red-ui-clipboard-dialog-ok').click();
    // Nodes on the current tab follow the mouse until dropped.
    const chart = await page.locator('#red-ui-workspace-chart').boundingBox();
    await page.mouse.click(chart!.x + 200, chart!.y + 150);
    const before = nr.log().length;
    const from = published.length;
    await page.locator('#red-ui-header-button-deploy').click();
    const confirm = page.locator('#red-ui-notification-dialog button, .red-ui-notification button', {
      hasText: /confirm deploy/i,
    });
    await Promise.race([
      page.waitForSelector('.red-ui-notification:has-text("Successfully deployed")', { timeout: 30_000 }),
      confirm.click({ timeout: 30_000 }).then(() =>
        page.waitForSelector('.red-ui-notification:has-text("Successfully deployed")', {
          timeout: 30_000,
        }),
      ),
    ]);
    await waitFor('the flows started', () => nr.log().slice(before).includes('Started flows'));
    await runs[example](from);
    // Running a while longer against the simulator, mosquitto and influxd: no node reports an error.
    await new Promise((r) => setTimeout(r, 3000));
    const log = nr.log().slice(before);
    assert.doesNotMatch(log, /Waiting for missing types|unknown type/i);
    assert.deepEqual(
      log.split('\n').filter((l) => / - \[error\] /.test(l)),
      [],
      `${example}: errors in the log`,
    );
    // The imported tab, with its nodes' status, for the README.
    await page.locator('#red-ui-workspace-tabs li.red-ui-tab').last().click();
    await page.screenshot({ path: path.join(shots, `example-${slug(example)}.png`) });
  }
});

const escape = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
const slug = (s: string) =>
  s
    .toLowerCase()
    .replace(/[^a-z0-9]+/g, '-')
    .replace(/-$/, '');
