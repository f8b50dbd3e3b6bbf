import assert from 'node:assert/strict';
import { afterEach, beforeEach, describe, test } from 'node:test';
import ecodevicesDevice from '../../nodes/ecodevices-device/ecodevices-device';
import ecodevicesIn from '../../nodes/ecodevices-in/ecodevices-in';
import type { EcoDevicesSimulator } from '../../nodes/lib/simulator/ecodevices-server';
import { waitFor } from '../support/services';
import { helper, startHelper, stopHelper } from '../support/node-red';
import { startBox } from '../support/simulator';

const pollers = (box: EcoDevicesSimulator, count: number, extra: Record<string, unknown> = {}) => [
  { id: 'tab', type: 'tab' },
  { id: 'box', type: 'ecodevices-device', host: '127.0.0.1', port: String(box.port), timeout: '2000' },
  ...Array.from({ length: count }, (_, i) => ({
    id: `poll${i}`,
    z: 'tab',
    type: 'ecodevices-in',
    device: 'box',
    mode: 'full',
    interval: '2',
    emit: 'all',
    wires: [[], []],
    ...extra,
  })),
];

/** Handles that keep the process alive, by kind. */
function resources(): Record<string, number> {
  const out: Record<string, number> = {};
  for (const r of process.getActiveResourcesInfo()) out[r] = (out[r] ?? 0) + 1;
  return out;
}

const listeners = () => process.eventNames().reduce((n, e) => n + process.listenerCount(e), 0);

describe('ecodevices-in lifecycle (Node-RED test helper, simulated box over real HTTP)', () => {
  let box: EcoDevicesSimulator;
  beforeEach(startHelper);
  afterEach(async () => {
    await stopHelper();
    await box?.close();
  });

  test('polling at 2 s for one minute, three nodes on one box: exactly 30 polls each, never two requests at once', async () => {
    box = await startBox({ contract: 'TEMPO' });
    box.setFaults({ latencyMs: 60 });
    await helper.load([ecodevicesDevice, ecodevicesIn] as never, pollers(box, 3));
    await waitFor('the first request', () => box.stats.requests > 0);
    const t0 = box.stats.log[0].at;
    // Each poll starts with status.xml; its requests can wait up to ~0.6 s behind the other nodes'.
    await waitFor('a minute of polling', () => Date.now() > t0 + 60_500, 70_000);
    const polls = box.stats.log.filter((e) => e.path === '/status.xml' && e.at < t0 + 59_000).length;
    const pages = box.stats.log.filter((e) => e.at < t0 + 59_000);
    console.log(
      `# ${polls} polls, ${pages.length} requests in the minute; at most ${box.stats.maxConcurrent} at once`,
    );
    assert.equal(polls, 3 * 30);
    assert.equal(box.stats.maxConcurrent, 1);
    assert.ok(box.connections <= 1, `one keep-alive connection, got ${box.connections}`);
  });

  test('50 redeploys leave no socket, timer or listener behind', async () => {
    box = await startBox({ contract: 'HC' });
    box.setFaults({ latencyMs: 30 });
    await helper.load([ecodevicesDevice, ecodevicesIn] as never, pollers(box, 2));
    await waitFor('the first poll', () => box.stats.requests >= 3);
    const before = { resources: resources(), listeners: listeners() };
    for (let i = 0; i < 50; i++) {
      // Each redeploy changes the nodes, so each is closed (aborting its requests) and created again.
      await helper.setFlows(pollers(box, 2, { name: `deploy ${i}` }), 'full');
    }
    const sent = box.stats.requests;
    await waitFor('both nodes of the last deploy to poll', () => box.stats.requests >= sent + 6);
    const after = { resources: resources(), listeners: listeners() };
    console.log(`# before ${JSON.stringify(before)}; after 50 redeploys ${JSON.stringify(after)}`);
    for (const kind of ['Timeout', 'TCPSocketWrap'])
      assert.ok((after.resources[kind] ?? 0) <= (before.resources[kind] ?? 0) + 1, `${kind} left behind`);
    assert.equal(after.listeners, before.listeners);
    await helper.unload();
    await waitFor('the box to see every connection closed', () => box.connections === 0, 5000);
  });
});
