import { after, before } from 'node:test';
import { chromium, type Browser, type Page } from 'playwright-core';
import { startNodeRed, type NodeRedProcess } from './node-red-process';

/** The system's Chromium (never a downloaded one), headless, as every browser test runs it. */
export function launchChromium(): Promise<Browser> {
  return chromium.launch({
    executablePath: '/usr/bin/chromium',
    headless: true,
    args: [
      '--headless',
      '--no-sandbox',
      '--disable-gpu',
      '--disable-quic',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
    ],
  });
}

/** The Node-RED editor at `url` in a 1,400 × 900 page, once the palette holds this package's nodes. */
export async function openEditor(browser: Browser, url: string): Promise<Page> {
  const page = await browser.newPage({ viewport: { width: 1400, height: 900 } });
  await page.goto(url, { timeout: 120_000 });
  await page.waitForSelector('.red-ui-palette-node[data-palette-type="teleinfo-parse"]', {
    timeout: 120_000,
  });
  return page;
}

/** A suite's Node-RED (this package loaded) and its editor in Chromium: started before its tests, stopped after. */
export interface EditorFixture {
  readonly nr: NodeRedProcess;
  readonly browser: Browser;
  page: Page;
}

export function withEditor(): EditorFixture {
  const fixture = {} as { nr: NodeRedProcess; browser: Browser; page: Page };
  before(async () => {
    fixture.nr = await startNodeRed();
    fixture.browser = await launchChromium();
    fixture.page = await openEditor(fixture.browser, fixture.nr.url);
  });
  after(async () => {
    await fixture.browser?.close();
    await fixture.nr?.stop();
  });
  return fixture;
}
