import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { describe, test } from 'node:test';
import { withEditor } from '../support/chromium';
import { ROOT } from '../support/fixtures';
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
    node(id: string): object | undefined;
  };
};

describe('teleinfo-parse in the Node-RED editor (real Chromium)', { skip: serviceSkip('chromium') }, () => {
  // UPDATE_SCREENSHOTS=1 writes them where the README shows them.
  const shots = process.env.UPDATE_SCREENSHOTS ? path.join(ROOT, 'docs') : tempDir('screens');

  const ed = withEditor();

  test('the node sits in the teleinfo palette category with its icon', async () => {
    assert.equal(await ed.page.evaluate(() => RED.nodes.getType('teleinfo-parse')?.category), 'teleinfo');
    const icon = await fetch(`${ed.nr.url}/icons/node-red-contrib-teleinfo/teleinfo.svg`);
    assert.equal(icon.status, 200);
    assert.match(await icon.text(), /<svg/);
  });

  test('drag from the palette, edit, deploy: the flow holds the chosen options', async () => {
    const paletteNode = ed.page.locator('.red-ui-palette-node[data-palette-type="teleinfo-parse"]');
    await paletteNode.scrollIntoViewIfNeeded();
    const from = await paletteNode.boundingBox();
    const chart = await ed.page.locator('#red-ui-workspace-chart').boundingBox();
    assert.ok(from && chart);
    await ed.page.mouse.move(from.x + from.width / 2, from.y + from.height / 2);
    await ed.page.mouse.down();
    await ed.page.mouse.move(chart.x + 300, chart.y + 200, { steps: 20 });
    await ed.page.mouse.up();
    await ed.page.waitForFunction(() => RED.nodes.filterNodes({ type: 'teleinfo-parse' }).length === 1);

    await ed.page
      .locator('#red-ui-workspace-chart g.red-ui-flow-node-group rect.red-ui-flow-node')
      .first()
      .dblclick();
    await ed.page.waitForSelector('#node-input-emit', { state: 'visible' });
    assert.equal(await ed.page.locator('.teleinfo-parse-interval').isVisible(), false);
    await ed.page.selectOption('#node-input-emit', 'interval');
    assert.equal(await ed.page.locator('.teleinfo-parse-interval').isVisible(), true);
    await ed.page.fill('#node-input-interval', '30');
    await ed.page.fill('#node-input-labels', 'PAPP, HCHC');
    await chooseInTypedInput('#node-input-mode', 'red-ui-typedInput-option-trigger', 'historic');
    await ed.page.screenshot({ path: path.join(shots, 'edit-dialog.png') });
    await ed.page.click('#node-dialog-ok');
    await ed.page.click('#red-ui-header-button-deploy');
    await ed.page.waitForSelector('.red-ui-notification:has-text("Successfully deployed")', {
      timeout: 30_000,
    });

    const flows = (await (await fetch(`${ed.nr.url}/flows`)).json()) as FlowNode[];
    const node = flows.find((n) => n.type === 'teleinfo-parse');
    assert.ok(node);
    assert.equal(node.emit, 'interval');
    assert.equal(node.interval, '30');
    assert.equal(node.labels, 'PAPP, HCHC');
    assert.equal(node.mode, 'historic');
    assert.equal(node.topic, 'teleinfo/{meter}');
    console.log(`# editor screenshot: ${path.join(shots, 'edit-dialog.png')}`);
  });

  /** A user's click on a typedInput's type (or option) button, then on one entry of the menu it opens. */
  async function chooseInTypedInput(input: string, button: string, value: string) {
    await ed.page.locator(`${input} + .red-ui-typedInput-container button.${button}`).click();
    await ed.page.locator(`.red-ui-typedInput-options a[value="${value}"]`).locator('visible=true').click();
  }

  test('a field that may come from the environment offers the env type: the flow then names the variable', async () => {
    await ed.page.evaluate(() => {
      const r = RED as unknown as {
        view: { importNodes(n: unknown[]): void };
        nodes: { node(id: string): object };
        editor: { edit(n: object): void };
      };
      r.view.importNodes([{ id: 'dialog-env-poll', type: 'ecodevices-in', x: 200, y: 420 }]);
      r.editor.edit(r.nodes.node('dialog-env-poll'));
    });
    await ed.page.waitForSelector('#node-input-interval', { state: 'attached' });
    await chooseInTypedInput('#node-input-interval', 'red-ui-typedInput-type-select', 'env');
    await ed.page
      .locator('#node-input-interval + .red-ui-typedInput-container input.red-ui-typedInput-input')
      .fill('POLL_SECONDS');
    await ed.page.click('#node-dialog-ok');
    await ed.page.waitForSelector('#node-dialog-ok', { state: 'detached' });
    const node = await ed.page.evaluate(() => {
      const n = RED.nodes.node('dialog-env-poll') as unknown as { interval: string; intervalType: string };
      return { interval: n.interval, intervalType: n.intervalType };
    });
    assert.deepEqual(node, { interval: 'POLL_SECONDS', intervalType: 'env' });
  });

  /** The open edit dialog (`node` or `node-config`): every label translated, the help there; then cancel it. */
  async function checkDialog(type: string, dialog: 'node' | 'node-config', minLabels: number) {
    await ed.page.waitForSelector(`#${dialog}-dialog-ok`, { state: 'visible' });
    // The tray and its buttons show before the editor has built and translated the form in it (a config node's
    // after fetching its credentials): wait for labels with text; the assertions below say what is missing.
    const labelled = '.red-ui-tray-body label[data-i18n], .red-ui-tray-body label span[data-i18n]';
    await ed.page
      .waitForFunction(
        ([sel, min]) => {
          const all = Array.from(document.querySelectorAll(sel as string));
          return all.length >= (min as number) && all.every((l) => l.textContent.trim().length > 0);
        },
        [labelled, minLabels],
      )
      .catch(() => {});
    try {
      const labels = await ed.page.locator(labelled).allTextContents();
      assert.ok(labels.length >= minLabels, `${type} has labelled fields (${labels.length})`);
      for (const label of labels) {
        assert.ok(label.trim().length > 0, `${type}: empty label`);
        assert.doesNotMatch(label, /\.label\./, `${type}: untranslated label ${label}`);
      }
      const help = await ed.page.evaluate(
        (t) => document.querySelector(`script[data-help-name="${t}"]`)?.innerHTML ?? '',
        type,
      );
      assert.ok(help.length > 200, `${type} has help`);
      // The toolkit built a field for every setting and credential the node has.
      const missing = await ed.page.evaluate(
        ([t, prefix]) => {
          const def = (
            RED as unknown as {
              nodes: { getType(t: string): { defaults: object; credentials?: object } };
            }
          ).nodes.getType(t);
          return [...Object.keys(def.defaults), ...Object.keys(def.credentials ?? {})]
            .filter((p) => p !== 'outputs')
            .filter((p) => !document.getElementById(prefix + p));
        },
        [type, dialog === 'node' ? 'node-input-' : 'node-config-input-'],
      );
      assert.deepEqual(missing, [], `${type}: settings without a field`);
    } finally {
      // Closed whatever the outcome: the next tests read the editor's DOM.
      await ed.page.click(`#${dialog}-dialog-cancel`);
      await ed.page.waitForSelector(`#${dialog}-dialog-ok`, { state: 'detached' });
    }
  }

  for (const type of [
    'ecodevices-in',
    'teleinfo-parse',
    'teleinfo-admit',
    'influx-teleinfo-out',
    'teleinfo-spool',
    'teleinfo-resubscribe',
    'teleinfo-ack',
    'teleinfo-rollup',
    'teleinfo-health',
    'teleinfo-fleet',
    'teleinfo-alert',
    'teleinfo-ha-discovery',
  ]) {
    test(`${type}: its edit dialog opens with every label translated, and its help is there`, async () => {
      await ed.page.evaluate((t) => {
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

  test("teleinfo-spool's dialog shows the overlap or the stall, as its release asks", async () => {
    await ed.page.evaluate(() => {
      const r = RED as unknown as {
        view: { importNodes(n: unknown[]): void };
        nodes: { node(id: string): object };
        editor: { edit(n: object): void };
      };
      r.view.importNodes([
        { id: 'dialog-spool-release', type: 'teleinfo-spool', ack: 'server', x: 200, y: 500 },
      ]);
      r.editor.edit(r.nodes.node('dialog-spool-release'));
    });
    await ed.page.waitForSelector('#node-input-ack', { state: 'visible' });
    const shown = async () => ({
      overlap: await ed.page.locator('#node-input-overlap').isVisible(),
      stall: await ed.page.locator('#node-input-stall').isVisible(),
    });
    assert.deepEqual(await shown(), { overlap: false, stall: true });
    await ed.page.selectOption('#node-input-ack', 'broker');
    assert.deepEqual(await shown(), { overlap: true, stall: false });
    await ed.page.click('#node-dialog-cancel');
    await ed.page.waitForSelector('#node-dialog-ok', { state: 'detached' });
  });

  for (const type of ['ecodevices-device', 'influxdb-teleinfo-server']) {
    test(`${type} (config node): its edit dialog opens with every label translated, and its help is there`, async () => {
      await ed.page.evaluate((t) => {
        const r = RED as unknown as { editor: { editConfig(name: string, type: string, id: string): void } };
        r.editor.editConfig('', t, '_ADD_');
      }, type);
      await checkDialog(type, 'node-config', 3);
    });
  }

  test('help and labels are in French for a French browser', async () => {
    const context = await ed.browser.newContext({ locale: 'fr-FR' });
    const fr = await context.newPage();
    await fr.goto(ed.nr.url, { timeout: 120_000 });
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

  test('validators say what is wrong (Node-RED 4 messages), and accept ${ENV} where a value may come from the environment', async () => {
    // [type, property, a bad value, the node's other properties (a typedInput's type)]
    const cases: [string, string, string, Record<string, string>?][] = [
      ['ecodevices-in', 'interval', '1'],
      ['ecodevices-in', 'interval', 'POLL SECONDS', { intervalType: 'env' }],
      ['ecodevices-device', 'port', 'eighty'],
      ['ecodevices-device', 'host', 'box.lan:80', { hostType: 'env' }],
      ['influxdb-teleinfo-server', 'url', 'localhost:8086'],
      ['influxdb-teleinfo-server', 'database', 'my db', { databaseType: 'env' }],
      ['teleinfo-parse', 'mode', 'standrd'],
      ['teleinfo-spool', 'overlap', '0'],
      ['teleinfo-alert', 'thresholdVA', '-5'],
      ['teleinfo-parse', 'topic', 'teleinfo/#'],
      ['influx-teleinfo-out', 'measurement', '_internal'],
      ['teleinfo-ha-discovery', 'prefix', 'home assistant'],
      ['teleinfo-ha-discovery', 'availabilityTopic', 'teleinfo/+/status'],
    ];
    const results = await ed.page.evaluate((all) => {
      const r = RED as unknown as {
        nodes: {
          getType(t: string): { defaults: Record<string, { validate?: (v: string, o?: object) => unknown }> };
        };
      };
      return all.map(([type, prop, bad, others]) => {
        const def = r.nodes.getType(type).defaults[prop];
        const node = { _: (k: string) => k, ...others };
        return {
          type,
          prop,
          typed: !!others,
          message: def.validate!.call(node, bad, { label: prop }),
          quiet: def.validate!.call(node, bad),
          env: def.validate!.call(node, others ? 'SOME_VAR' : '${SOME_VAR}', { label: prop }),
        };
      });
    }, cases);
    for (const res of results) {
      assert.equal(typeof res.message, 'string', `${res.type}.${res.prop}: a message`);
      assert.equal(res.quiet, false, `${res.type}.${res.prop}: false without options`);
      if (
        res.prop !== 'topic' &&
        res.prop !== 'prefix' &&
        res.prop !== 'availabilityTopic' &&
        res.prop !== 'measurement'
      )
        assert.equal(
          res.env,
          true,
          `${res.type}.${res.prop}: ${res.typed ? 'a variable name' : '${ENV}'} accepted`,
        );
    }
  });

  test('the shipped flows import with every one of our nodes valid (no red triangle in the editor)', async () => {
    for (const file of ['flows/pi.json', 'flows/server.json']) {
      const flow = JSON.parse(fs.readFileSync(path.join(ROOT, file), 'utf8')) as FlowNode[];
      const invalid = await ed.page.evaluate((nodes) => {
        const r = RED as unknown as {
          view: { importNodes(n: unknown[], o?: object): void };
          nodes: {
            eachNode(cb: (n: { type: string; valid: boolean; id: string }) => void): void;
            eachConfig(cb: (n: { type: string; valid: boolean; id: string }) => void): void;
          };
          editor: { validateNode(n: object): void };
        };
        r.view.importNodes(nodes, { generateIds: true, addFlow: true });
        const bad: string[] = [];
        const check = (n: { type: string; valid: boolean; id: string }) => {
          // Ours, not the bare nodes the dialog tests above dropped.
          if (!/^(teleinfo|ecodevices|influx)/.test(n.type) || n.id.startsWith('dialog-')) return;
          r.editor.validateNode(n);
          if (!n.valid) bad.push(`${n.type} ${n.id}`);
        };
        r.nodes.eachNode(check);
        r.nodes.eachConfig(check);
        return bad;
      }, flow);
      assert.deepEqual(invalid, [], `${file}: invalid nodes`);
    }
  });
});
