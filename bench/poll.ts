/**
 * npm run bench:poll — what polling Eco-Devices boxes costs one Node-RED instance (a Pi has little to spare):
 * CPU seconds and peak RSS over BENCH_SECONDS (default 60) for: no flow (baseline), 1 box polled every 2 s,
 * 50 boxes polled every 10 s. The boxes are simulated in this process, in full teleinfo mode (3 pages a poll).
 */
import type { EcoDevicesSimulator } from '../nodes/lib/simulator/ecodevices-server';
import { startNodeRed } from '../test/support/node-red-process';
import { startBox } from '../test/support/simulator';
import { observe } from './support/process-stats';

const SECONDS = Number(process.env.BENCH_SECONDS) || 60;

function flows(boxes: EcoDevicesSimulator[], interval: number): unknown[] {
  return [
    { id: 'tab', type: 'tab', label: 'bench' },
    ...boxes.flatMap((box, i) => [
      {
        id: `box${i}`,
        type: 'ecodevices-device',
        host: '127.0.0.1',
        port: String(box.port),
        timeout: '5000',
      },
      {
        id: `poll${i}`,
        z: 'tab',
        type: 'ecodevices-in',
        device: `box${i}`,
        mode: 'full',
        interval: String(interval),
        emit: 'all',
        wires: [['sink'], []],
      },
    ]),
    // Readings go somewhere, as in a real flow: a function node that counts them.
    {
      id: 'sink',
      z: 'tab',
      type: 'function',
      func: 'context.set("n", (context.get("n") || 0) + 1); return null;',
      wires: [],
    },
  ];
}

async function main(): Promise<void> {
  const boxes: EcoDevicesSimulator[] = [];
  for (let i = 0; i < 50; i++) boxes.push(await startBox({ contract: 'TEMPO', seed: i, start: Date.now() }));
  const nr = await startNodeRed();
  const rows: [string, number, number, number][] = [];
  try {
    for (const [label, count, interval] of [
      ['no flow (baseline)', 0, 0],
      ['1 box every 2 s', 1, 2],
      ['50 boxes every 10 s', 50, 10],
    ] as const) {
      const used = boxes.slice(0, count);
      const before = used.reduce((n, b) => n + b.stats.requests, 0);
      await nr.deploy(flows(used, interval));
      const { cpu, peakRss } = await observe(nr.pid, SECONDS);
      const requests = used.reduce((n, b) => n + b.stats.requests, 0) - before;
      rows.push([label, cpu, peakRss, requests]);
      console.log(
        `${label}: ${cpu.toFixed(2)} CPU s in ${SECONDS} s, peak RSS ${peakRss.toFixed(1)} MiB, ${requests} requests`,
      );
    }
  } finally {
    await nr.stop();
    await Promise.all(boxes.map((b) => b.close()));
  }
  console.log(
    `\nOne Node-RED instance polling simulated Eco-Devices boxes for ${SECONDS} s each (full teleinfo mode):`,
  );
  console.log('| Load | CPU seconds | CPU % of one core | Peak RSS (MiB) | HTTP requests |');
  console.log('|---|---|---|---|---|');
  for (const [label, cpu, rss, requests] of rows) {
    console.log(
      `| ${label} | ${cpu.toFixed(2)} | ${((cpu / SECONDS) * 100).toFixed(1)} % | ${rss.toFixed(1)} | ${requests} |`,
    );
  }
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
