import assert from 'node:assert/strict';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { chromium, type Browser, type Page } from 'playwright-core';
import { ROOT } from '../support/fixtures';
import { startNodeRed, type NodeRedProcess } from '../support/node-red-process';
import { serviceSkip, tempDir } from '../support/services';

interface FlowNode {
  id: string;
  type: string;
  [k: string]: unknown;
}

declare const RED: {
  nodes: {
    getType(t: string): { category: string } | undefined;
    filterNodes(f: { type: string }): { id: string }[];
  };
};

const CHROMIUM_ARGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
];

describe('teleinfo-parse in the Node-RED editor (real Chromium)', { skip: serviceSkip('chromium') }, () => {
  let nr: NodeRedProcess;
  let browser: Browser;
  let page: Page;
  // UPDATE_SCREENSHOTS=1 writes them where the README shows them.
  const shots = process.env.UPDATE_SCREENSHOTS ? path.join(ROOT, 'docs') : tempDir('screens');

  before(async () => {
    nr = await startNodeRed();
    browser = await chromium.launch({
      executablePath: '/usr/bin/chromium',
      headless: true,
      args: CHROMIUM_ARGS,
    });
    page = await browser.newPage({ viewport: { width: 1400, height: 900 } });
    await page.goto(nr.url, { timeout: 120_000 });
    await page.waitForSelector('.red-ui-palette-node[data-palette-type="teleinfo-parse"]', {
      timeout: 120_000,
    });
  });
  after(async () => {
    await browser?.close();
    await nr?.stop();
  });

  test('the node sits in the teleinfo palette category with its icon', async () => {
    assert.equal(await page.evaluate(() => RED.nodes.getType('teleinfo-parse')?.category), 'teleinfo');
    const icon = await fetch(`${nr.url}/icons/node-red-contrib-teleinfo/teleinfo.svg`);
    assert.equal(icon.status, 200);
    assert.match(await icon.text(), /<svg/);
  });

  test('drag from the palette, edit, deploy: the flow holds the chosen options', async () => {
    const paletteNode = page.locator('.red-ui-palette-node[data-palette-type="teleinfo-parse"]');
    await paletteNode.scrollIntoViewIfNeeded();
    const from = await paletteNode.boundingBox();
    const chart = await page.locator('#red-ui-workspace-chart').boundingBox();
    assert.ok(from && chart);
    await page.mouse.move(from.x + from.width / 2, from.y + from.height / 2);
    await page.mouse.down();
    await page.mouse.move(chart.x + 300, chart.y + 200, { steps: 20 });
    await page.mouse.up();
    await page.waitForFunction(() => RED.nodes.filterNodes({ type: 'teleinfo-parse' }).length === 1);

    await page
      .locator('#red-ui-workspace-chart g.red-ui-flow-node-group rect.red-ui-flow-node')
      .first()
      .dblclick();
    await page.waitForSelector('#node-input-emit', { state: 'visible' });
    assert.equal(await page.locator('.teleinfo-parse-interval').isVisible(), false);
    await page.selectOption('#node-input-emit', 'interval');
    assert.equal(await page.locator('.teleinfo-parse-interval').isVisible(), true);
    await page.fill('#node-input-interval', '30');
    await page.fill('#node-input-labels', 'PAPP, HCHC');
    await page.selectOption('#node-input-mode', 'historic');
    await page.screenshot({ path: path.join(shots, 'edit-dialog.png') });
    await page.click('#node-dialog-ok');
    await page.click('#red-ui-header-button-deploy');
    await page.waitForSelector('.red-ui-notification:has-text("Successfully deployed")', { timeout: 30_000 });

    const flows = (await (await fetch(`${nr.url}/flows`)).json()) as FlowNode[];
    const node = flows.find((n) => n.type === 'teleinfo-parse');
    assert.ok(node);
    assert.equal(node.emit, 'interval');
    assert.equal(node.interval, '30');
    assert.equal(node.labels, 'PAPP, HCHC');
    assert.equal(node.mode, 'historic');
    assert.equal(node.topic, 'teleinfo/{meter}');
    console.log(`# editor screenshot: ${path.join(shots, 'edit-dialog.png')}`);
  });

  /** The open edit dialog (`node` or `node-config`): every label translated, the help there; then cancel it. */
  async function checkDialog(type: string, dialog: 'node' | 'node-config', minLabels: number) {
    await page.waitForSelector(`#${dialog}-dialog-ok`, { state: 'visible' });
    const labels = await page
      .locator('.red-ui-tray-body label[data-i18n], .red-ui-tray-body label span[data-i18n]')
      .allTextContents();
    assert.ok(labels.length >= minLabels, `${type} has labelled fields`);
    for (const label of labels) {
      assert.ok(label.trim().length > 0, `${type}: empty label`);
      assert.doesNotMatch(label, /\.label\./, `${type}: untranslated label ${label}`);
    }
    const help = await page.evaluate(
      (t) => document.querySelector(`script[data-help-name="${t}"]`)?.innerHTML ?? '',
      type,
    );
    assert.ok(help.length > 200, `${type} has help`);
    await page.click(`#${dialog}-dialog-cancel`);
    await page.waitForSelector(`#${dialog}-dialog-ok`, { state: 'detached' });
  }

  for (const type of [
    'ecodevices-in',
    'influx-teleinfo-out',
    'teleinfo-spool',
    'teleinfo-resubscribe',
    'teleinfo-alert',
  ]) {
    test(`${type}: its edit dialog opens with every label translated, and its help is there`, async () => {
      await page.evaluate((t) => {
        const r = RED as unknown as {
          view: { importNodes(n: unknown[]): void };
          nodes: { filterNodes(f: { type: string }): object[] };
          editor: { edit(n: object): void };
        };
        r.view.importNodes([{ id: `dialog-${t}`, type: t, x: 200, y: 300 }]);
        r.editor.edit(r.nodes.filterNodes({ type: t })[0]);
      }, type);
      await checkDialog(type, 'node', 2);
    });
  }

  for (const type of ['ecodevices-device', 'influxdb-teleinfo-server']) {
    test(`${type} (config node): its edit dialog opens with every label translated, and its help is there`, async () => {
      await page.evaluate((t) => {
        const r = RED as unknown as { editor: { editConfig(name: string, type: string, id: string): void } };
        r.editor.editConfig('', t, '_ADD_');
      }, type);
      await checkDialog(type, 'node-config', 3);
    });
  }

  test('help and labels are in French for a French browser', async () => {
    const context = await browser.newContext({ locale: 'fr-FR' });
    const fr = await context.newPage();
    await fr.goto(nr.url, { timeout: 120_000 });
    await fr.waitForSelector('.red-ui-palette-node[data-palette-type="teleinfo-parse"]', {
      timeout: 120_000,
    });
    await fr.locator('.red-ui-palette-node[data-palette-type="teleinfo-parse"]').click();
    await fr.waitForSelector('.red-ui-help-info-body, .red-ui-sidebar-info', { timeout: 30_000 });
    const help = await fr.evaluate(
      () =>
        document.querySelector('script[data-help-name="teleinfo-parse"]')?.innerHTML ??
        document.body.innerText,
    );
    assert.match(help, /Décode les données/);
    await context.close();
  });
});
