import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { ROOT } from '../support/fixtures';
import { freePort, serviceSkip, tempDir, waitFor, alive } from '../support/services';

/** The README's demo command (its Set-up table), as a newcomer copies it. */
function readmeDemoCommand(): string {
  const readme = fs.readFileSync(path.join(ROOT, 'README.md'), 'utf8');
  const row = readme.split('\n').find((l) => l.startsWith('| Run the whole chain'));
  const command = /`([^`]+)` \|$/.exec(row ?? '')?.[1];
  assert.ok(command, "the README's Set-up table has the demo command");
  return command;
}

/**
 * Run the demo on free ports and a temporary directory: the demo script itself, or (`clone`) the README's demo
 * command in a fresh clone of this repository, in its own process group as a terminal runs it. Wait until `running`
 * is satisfied, send SIGINT (Ctrl-C: to the whole group), and check that it exits 0 with every process it listed gone.
 */
async function runDemo(
  env: Record<string, string>,
  expected: string[],
  running: (out: string, dir: string) => Promise<void>,
  clone?: string,
): Promise<void> {
  const dir = tempDir('demo');
  const [cmd, args] = clone
    ? ['bash', ['-c', readmeDemoCommand()]]
    : [process.execPath, [path.join(ROOT, 'scripts', 'start.js')]];
  const demo = spawn(cmd, args, {
    cwd: clone ?? ROOT,
    detached: Boolean(clone),
    env: {
      ...process.env,
      DEMO_DIR: dir,
      PI_PORT: String(await freePort()),
      SERVER_PORT: String(await freePort()),
      POLL_SECONDS: '2',
      ...env,
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  demo.stdout.on('data', (d: Buffer) => (out += d.toString()));
  demo.stderr.on('data', (d: Buffer) => (out += d.toString()));
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((r) =>
    demo.once('exit', (code, signal) => r({ code, signal })),
  );
  try {
    // In a clone the command installs the dependencies and builds first.
    await waitFor(
      'the demo to start',
      () => out.includes('Ctrl-C stops everything'),
      clone ? 300_000 : 90_000,
    );
    const pids = [...out.matchAll(/([\w-]+)=(\d+)/g)].map((m) => ({ name: m[1], pid: Number(m[2]) }));
    assert.deepEqual(
      pids.map((p) => p.name),
      expected,
    );
    await running(out, dir);
    if (clone) process.kill(-demo.pid!, 'SIGINT');
    else demo.kill('SIGINT');
    const end = await exited;
    if (clone) {
      // Ctrl-C ends the shell and npm by the signal; the demo itself stops everything and exits 0.
      assert.ok(end.code === 0 || end.signal === 'SIGINT' || end.code === 130, JSON.stringify(end));
      await waitFor('the demo to say it stopped', () => out.includes('demo stopped'));
    } else assert.equal(end.code, 0);
    const left = pids.filter((p) => alive(p.pid));
    assert.deepEqual(left, [], 'every child process is gone');
  } finally {
    // A failed check leaves the demo running: in a clone, its whole process group (npm, the demo, its children).
    if (demo.exitCode === null && demo.signalCode === null) {
      if (clone) {
        try {
          process.kill(-demo.pid!, 'SIGKILL');
        } catch {
          // already gone
        }
      } else demo.kill('SIGKILL');
    }
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

/** A fresh clone of this repository (what is committed), in a temporary folder. */
/**
 * The README's other commands a newcomer runs in the clone once `npm ci` is done, as written there: the simulator's
 * help, and the editor's password hash (the password on its standard input, as a user types it).
 */
function readmeToolCommands(clone: string): void {
  const readme = fs.readFileSync(path.join(ROOT, 'README.md'), 'utf8');
  const inline = new Set([...readme.matchAll(/`(npx [^`]+)`/g)].map((m) => m[1]));
  for (const [command, input, expected] of [
    ['npx teleinfo-sim --help', '', /--spike/],
    ['npx node-red admin hash-pw', 'a newcomer password\n', /\$2[aby]\$\d\d\$/],
  ] as const) {
    assert.ok(inline.has(command), `the README says ${command}`);
    const out = execFileSync('sh', ['-c', command], {
      cwd: clone,
      input,
      encoding: 'utf8',
      timeout: 120_000,
    });
    assert.match(out, expected, `${command} in a fresh clone`);
    console.log(`# README command in a clone: ${command}`);
  }
}

function freshClone(): string {
  const dir = tempDir('clone');
  execFileSync('git', ['clone', '--quiet', ROOT, dir]);
  return dir;
}

/** A PATH with what a newcomer has (Node.js, npm, a shell) and influxd, but no mosquitto. */
function pathWithoutMosquitto(): string {
  const bin = tempDir('no-mosquitto');
  for (const tool of ['node', 'npm', 'npx', 'sh', 'bash', 'influxd']) {
    const found = execFileSync('sh', ['-c', `command -v ${tool}`], { encoding: 'utf8' }).trim();
    fs.symlinkSync(found, path.join(bin, tool));
  }
  return bin;
}

// The README's demo command in a fresh clone: with mosquitto on the PATH, and without (the embedded aedes).
for (const broker of ['mosquitto', 'embedded'] as const) {
  test(
    `README demo command in a fresh clone (${broker === 'mosquitto' ? 'mosquitto on the PATH' : 'no mosquitto: aedes'}): readings reach InfluxDB; SIGINT stops every process`,
    { skip: serviceSkip('mosquitto') || serviceSkip('influxd') || serviceSkip('git') },
    async () => {
      const clone = freshClone();
      const names = [
        'simulator',
        broker === 'embedded' ? 'embedded-broker' : 'mosquitto',
        'influxd',
        'server',
        'pi',
      ];
      await runDemo(
        broker === 'embedded' ? { PATH: pathWithoutMosquitto() } : {},
        names,
        async (out) => {
          if (broker === 'embedded')
            assert.match(
              out,
              /aedes MQTT broker .*MQTT 3\.1\.1; no shared subscriptions: the server subscribes to teleinfo\/\+\/\+\/reading/,
            );
          const dashboard = /live dashboard\s+(http:\/\/127\.0\.0\.1:\d+\/dashboard\/teleinfo)/.exec(
            out,
          )?.[1];
          assert.ok(dashboard, 'the demo prints the live dashboard URL');
          assert.equal((await fetch(dashboard)).status, 200);
          const influx = /influxd 1\.x\s+(http:\/\/\S+)/.exec(out)![1];
          let meters = 0;
          await waitFor(
            'readings in InfluxDB',
            async () => {
              const q = encodeURIComponent(
                'SELECT count("phases"), count("index") FROM teleinfo GROUP BY "meter"',
              );
              const res = await fetch(`${influx}/query?db=teleinfo&q=${q}`);
              const json = (await res.json()) as { results: { series?: unknown[] }[] };
              meters = json.results[0]?.series?.length ?? 0;
              return meters >= 4;
            },
            60_000,
          );
          console.log(
            `# README demo command in a clone (${broker} broker): readings of ${meters} meters in InfluxDB; stopping with SIGINT`,
          );
        },
        clone,
      );
      if (broker === 'mosquitto') readmeToolCommands(clone);
      fs.rmSync(clone, { recursive: true, force: true });
    },
  );
}

// A fresh machine with nothing but Node.js: no mosquitto and no influxd on the PATH.
test('npm start with nothing but Node.js: the embedded broker, and the server spools every reading', async () => {
  const bin = tempDir('node-only'); // a PATH with node alone
  fs.symlinkSync(process.execPath, path.join(bin, 'node'));
  await runDemo({ PATH: bin }, ['simulator', 'embedded-broker', 'server', 'pi'], async (out, dir) => {
    assert.match(out, /no influxd on PATH: the server keeps readings in its spool/);
    const spool = path.join(dir, 'server', 'teleinfo-spool', 'srv-influx');
    const meters = new Set<string>();
    await waitFor(
      'readings of 4 meters in the server spool',
      () => {
        if (!fs.existsSync(spool)) return false;
        for (const file of fs.readdirSync(spool).filter((f) => f.endsWith('.spool')))
          for (const m of fs
            .readFileSync(path.join(spool, file), 'latin1')
            .matchAll(/teleinfo,meter=([^,]+)/g))
            meters.add(m[1]);
        return meters.size >= 4;
      },
      60_000,
    );
    console.log(
      `# npm start with nothing but Node.js: readings of ${meters.size} meters in the server spool`,
    );
  });
  fs.rmSync(bin, { recursive: true, force: true });
});
