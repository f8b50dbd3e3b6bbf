import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import path from 'node:path';
import { test } from 'node:test';
import { ROOT } from '../support/fixtures';
import { freePort, serviceSkip, tempDir, waitFor } from '../support/services';

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

// The demo script itself (what `npm start` runs after its build), on free ports and a temporary directory: with
// mosquitto from the PATH, and with the embedded broker it uses when there is none.
for (const broker of ['mosquitto', 'embedded'] as const) {
  test(
    `npm start (${broker} broker): readings reach InfluxDB; SIGINT stops every process it started`,
    { skip: serviceSkip('mosquitto') || serviceSkip('influxd') },
    async () => {
      const demo = spawn(process.execPath, [path.join(ROOT, 'scripts', 'start.js')], {
        env: {
          ...process.env,
          DEMO_DIR: tempDir('demo'),
          PI_PORT: String(await freePort()),
          SERVER_PORT: String(await freePort()),
          POLL_SECONDS: '2',
          ...(broker === 'embedded' ? { DEMO_BROKER: 'embedded' } : {}),
        },
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      let out = '';
      demo.stdout.on('data', (d: Buffer) => (out += d.toString()));
      demo.stderr.on('data', (d: Buffer) => (out += d.toString()));
      const exited = new Promise<number | null>((r) => demo.once('exit', (code) => r(code)));
      try {
        await waitFor('the demo to start', () => out.includes('Ctrl-C stops everything'), 90_000);
        const influx = /influxd 1\.x\s+(http:\/\/\S+)/.exec(out)![1];
        const pids = [...out.matchAll(/([\w-]+)=(\d+)/g)].map((m) => ({ name: m[1], pid: Number(m[2]) }));
        assert.deepEqual(
          pids.map((p) => p.name),
          ['simulator', broker === 'embedded' ? 'embedded-broker' : 'mosquitto', 'influxd', 'server', 'pi'],
        );
        let meters = 0;
        await waitFor(
          'readings in InfluxDB',
          async () => {
            const res = await fetch(
              `${influx}/query?db=teleinfo&q=${encodeURIComponent('SELECT count("phases") FROM teleinfo GROUP BY "meter"')}`,
            );
            const json = (await res.json()) as { results: { series?: unknown[] }[] };
            meters = json.results[0]?.series?.length ?? 0;
            return meters >= 4;
          },
          60_000,
        );
        console.log(
          `# npm start (${broker} broker): readings of ${meters} meters in InfluxDB; stopping with SIGINT`,
        );
        demo.kill('SIGINT');
        assert.equal(await exited, 0);
        const left = pids.filter((p) => alive(p.pid));
        assert.deepEqual(left, [], 'every child process is gone');
      } finally {
        if (demo.exitCode === null) demo.kill('SIGKILL');
      }
    },
  );
}
