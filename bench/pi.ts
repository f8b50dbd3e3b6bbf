/**
 * npm run bench:pi — the Pi instance as a Raspberry Pi runs it: Node-RED 4 installed in a directory of its own and
 * this package installed from its tarball into the userDir (nothing from this repository's node_modules: no
 * dashboard, no dev tools), the shipped flows/pi.json, a local mosquitto. Side by side in one run:
 *   1. Node-RED with no flow (the floor any Node-RED has), then with the package loaded and no flow;
 *   2. the shipped Pi flow polling one simulated Eco-Devices box every 10 s for PI_SECONDS (default 600);
 *   3. the same Pi started on a full spool (PI_BACKLOG_MB, default 50) and replaying it to the broker;
 * 2 and 3 each with Node's defaults (every core node) and as the launcher runs a Pi (its Node flags, and its settings
 * without the core nodes it does not use). Each prints CPU, peak and last
 * RSS; PI_PROFILE=1 also writes a heap snapshot of the Pi after its polling run (Node's defaults).
 */
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import mqtt from 'mqtt';
import { messageRecord, spoolDir, Spool } from '../nodes/lib/spool';
import { ROOT } from '../test/support/fixtures';
import { startNodeRed } from '../test/support/node-red-process';
import { hcReading } from '../test/support/readings';
import { startMosquitto, tempDir, waitFor } from '../test/support/services';
import { startBox } from '../test/support/simulator';
import { observe } from './support/process-stats';

const SECONDS = Number(process.env.PI_SECONDS) || 600;
const BACKLOG_MB = Number(process.env.PI_BACKLOG_MB) || 50;
const PROFILE = process.env.PI_PROFILE === '1';

interface Row {
  label: string;
  seconds: number;
  cpu: number;
  peakRss: number;
  lastRss: number;
  note: string;
}

const npmInstall = (dir: string, specs: string[]) => {
  fs.writeFileSync(path.join(dir, 'package.json'), '{"name":"pi","private":true}\n');
  execFileSync('npm', ['install', '--prefer-offline', '--no-audit', '--no-fund', ...specs], {
    cwd: dir,
    stdio: 'ignore',
  });
};
const versionOf = (name: string) =>
  (
    JSON.parse(fs.readFileSync(path.join(ROOT, 'node_modules', name, 'package.json'), 'utf8')) as {
      version: string;
    }
  ).version;

/**
 * As on a Pi: Node-RED (the version this repository tests) installed in a directory of its own, and a userDir
 * with the packed package and node-red-node-serialport (the shipped flow's TIC tab uses it, enabled or not)
 * installed into it, as the palette manager does. Returns red.js and that userDir.
 */
function installLikeAPi(): { redJs: string; userDir: string } {
  const nodeRed = tempDir('pi-node-red');
  npmInstall(nodeRed, [`node-red@${versionOf('node-red')}`]);
  const userDir = tempDir('pi-userdir');
  const [packed] = JSON.parse(
    execFileSync('npm', ['pack', '--ignore-scripts', '--json', '--pack-destination', userDir], {
      cwd: ROOT,
      encoding: 'utf8',
    }),
  ) as { filename: string }[];
  npmInstall(userDir, [
    `./${packed.filename}`,
    `node-red-node-serialport@${versionOf('node-red-node-serialport')}`,
  ]);
  return { redJs: path.join(nodeRed, 'node_modules', 'node-red', 'red.js'), userDir };
}

/** A heap snapshot of the Pi (what holds its memory), written beside its userDir: done when its size settles. */
async function heapSnapshot(pid: number, dir: string): Promise<void> {
  process.kill(pid, 'SIGUSR2');
  let size = -1;
  await waitFor(
    'the heap snapshot',
    () => {
      const file = fs.readdirSync(dir).find((f) => f.endsWith('.heapsnapshot'));
      const now = file ? fs.statSync(path.join(dir, file)).size : -1;
      const same = now > 0 && now === size;
      size = now;
      return same;
    },
    120_000,
  );
  console.log(`# heap snapshot in ${dir}`);
}

/** The Pi's spool, full: readings as teleinfo-spool writes them, up to PI_BACKLOG_MB. */
function fillSpool(userDir: string): { records: number; mb: number } {
  const spool = new Spool(spoolDir(path.join(userDir, 'teleinfo-spool'), 'pi-spool'), {
    maxBytes: BACKLOG_MB * 1024 * 1024,
  });
  const t0 = Date.parse('2026-11-01T00:00:00Z');
  for (let n = 0; spool.bytes < BACKLOG_MB * 1024 * 1024 * 0.98;) {
    const batch: string[] = [];
    for (let i = 0; i < 1000; i++, n++) {
      const reading = hcReading('021861348497', t0 + n * 1000, n);
      batch.push(messageRecord('teleinfo/pi-bench/021861348497/reading', reading));
    }
    spool.append(batch);
  }
  const out = { records: spool.length, mb: spool.bytes / 1024 / 1024 };
  spool.close();
  return out;
}

async function main(): Promise<void> {
  console.log('# installing Node-RED, then the packed package into a userDir…');
  const { redJs, userDir } = installLikeAPi();
  const broker = await startMosquitto();
  const box = await startBox({ contract: 'TEMPO', seed: 1, start: Date.now() });
  const piFlow = JSON.parse(fs.readFileSync(path.join(ROOT, 'flows', 'pi.json'), 'utf8')) as unknown[];
  const env = {
    PI_ID: 'pi-bench',
    MQTT_URL: broker.url,
    ECODEVICES_HOST: '127.0.0.1',
    ECODEVICES_PORT: String(box.port),
    POLL_SECONDS: '10',
  };
  const published = { n: 0 };
  const watcher = await mqtt.connectAsync(broker.url, { clientId: 'bench-watcher' });
  await watcher.subscribeAsync('teleinfo/pi-bench/+/reading', { qos: 1 });
  // Readings, not messages: a replay sends up to 100 readings of a meter per message (a JSON array).
  watcher.on('message', (_topic, payload) => {
    const readings: unknown = JSON.parse(payload.toString());
    published.n += Array.isArray(readings) ? readings.length : 1;
  });
  // eslint-disable-next-line @typescript-eslint/no-require-imports -- the launcher is plain JS shared with npm start
  const { NODE_ARGS } = require(path.join(ROOT, 'scripts', 'instance.js')) as { NODE_ARGS: { pi: string[] } };
  // As the launcher runs a Pi: its Node flags and its settings (which leave out some core nodes).
  const flagSets: [string, string[], 'pi' | 'server'][] = [
    ["Node's defaults, every core node", [], 'server'],
    [`as the launcher runs it (${NODE_ARGS.pi.join(' ')}, the Pi's core nodes)`, NODE_ARGS.pi, 'pi'],
  ];
  const start = (dir: string, flows: unknown[], flags: string[], role: 'pi' | 'server', snapshot = false) => {
    return startNodeRed({
      dir,
      flows,
      env,
      installed: true,
      redJs,
      role,
      nodeArgs: [...flags, ...(snapshot ? ['--heapsnapshot-signal=SIGUSR2', `--diagnostic-dir=${dir}`] : [])],
    });
  };
  // Each run starts on the userDir as installed: no spool, no context from the run before.
  const clean = (dir: string) => {
    for (const state of ['teleinfo-spool', 'context'])
      fs.rmSync(path.join(dir, state), { recursive: true, force: true });
  };
  const rows: Row[] = [];
  const row = (r: Row) => {
    rows.push(r);
    console.log(
      `# ${r.label}: ${r.seconds.toFixed(0)} s, CPU ${((r.cpu / r.seconds) * 100).toFixed(2)} %, peak ${r.peakRss.toFixed(1)} MiB, last ${r.lastRss.toFixed(1)} MiB; ${r.note}`,
    );
  };
  try {
    // Node-RED's own floor, then with the package loaded and no flow.
    const short = Math.min(SECONDS, 120);
    for (const [label, dir] of [
      ['Node-RED 4 alone, no flow', tempDir('pi-bare')],
      ['+ this package installed, no flow', userDir],
    ] as const) {
      clean(dir);
      const nr = await start(dir, [], [], 'server');
      row({ label, ...(await observe(nr.pid, short)), note: "Node's defaults" });
      await nr.stop();
    }

    // The shipped Pi flow, one box every 10 s.
    for (const [flagsLabel, flags, role] of flagSets) {
      clean(userDir);
      const snapshot = PROFILE && flags.length === 0;
      const nr = await start(userDir, piFlow, flags, role, snapshot);
      await waitFor('the first reading at the broker', () => published.n > 0, 60_000);
      const before = published.n;
      const poll = await observe(nr.pid, SECONDS);
      row({
        label: 'the shipped Pi flow, 1 box every 10 s',
        ...poll,
        note: `${flagsLabel}; ${published.n - before} readings published`,
      });
      if (snapshot) await heapSnapshot(nr.pid, userDir);
      published.n = 0;
      await nr.stop();
    }

    // A full spool replayed: written as teleinfo-spool writes it, then the Pi started with the broker up.
    for (const [flagsLabel, flags, role] of flagSets) {
      clean(userDir);
      const { records, mb } = fillSpool(userDir);
      const replayStart = published.n;
      const nr = await start(userDir, piFlow, flags, role);
      const drained = waitFor(
        'the backlog at the broker',
        () => published.n - replayStart >= records,
        SECONDS * 1000,
      );
      const replay = await observe(nr.pid, SECONDS, drained);
      await drained;
      row({
        label: `the same Pi replaying a ${mb.toFixed(0)} MB spool`,
        ...replay,
        note: `${flagsLabel}; ${records} readings in ${replay.seconds.toFixed(1)} s (${(records / replay.seconds).toFixed(0)}/s)`,
      });
      await nr.stop();
    }
  } finally {
    await watcher.endAsync();
    await broker.stop();
    await box.close();
  }
  console.log('\nThe Pi instance installed as on a Pi (Node-RED 4 + the package tarball), on this machine:');
  console.log(
    '| Run | Seconds | CPU % of one core | Peak RSS (MiB) | Last RSS (MiB) | Node flags, and what it did |',
  );
  console.log('|---|---|---|---|---|---|');
  for (const r of rows)
    console.log(
      `| ${r.label} | ${r.seconds.toFixed(0)} | ${((r.cpu / r.seconds) * 100).toFixed(2)} % | ${r.peakRss.toFixed(1)} | ${r.lastRss.toFixed(1)} | ${r.note} |`,
    );
  const [bare, loaded, poll, tunedPoll, replay, tunedReplay] = rows;
  console.log(
    `\nOver Node-RED's own floor (last ${bare.lastRss.toFixed(1)} MiB): the package loaded adds ${(loaded.lastRss - bare.lastRss).toFixed(1)} MiB, the running Pi flow ${(poll.lastRss - bare.lastRss).toFixed(1)} MiB.`,
  );
  console.log(
    `The launcher's flags: peak ${tunedPoll.peakRss.toFixed(1)} vs ${poll.peakRss.toFixed(1)} MiB polling, ${tunedReplay.peakRss.toFixed(1)} vs ${replay.peakRss.toFixed(1)} MiB replaying, the replay ${(tunedReplay.seconds / replay.seconds).toFixed(2)}× as long.`,
  );
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
