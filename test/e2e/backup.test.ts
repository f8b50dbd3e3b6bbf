import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { dashboard, expand } from '../support/dashboard';
import { ROOT } from '../support/fixtures';
import { alive, freePort, serviceSkip, tempDir, waitFor } from '../support/services';

/**
 * The demo's backup and restore, as a user runs them: the demo, `npm run backup -- <dir>`, the demo stopped and its
 * directory deleted, then the demo again with `--restore <dir>` in a new, empty one (scripts/start.js itself, which
 * `npm start` runs once it has built: a build here would replace dist/ under the running tests). The restored demo has the same
 * readings, rollups and retention policies, the same answers to every dashboard query on them, the same flows (with
 * the change deployed before the backup) and credentials.
 */

interface Demo {
  readonly dir: string;
  readonly state: { influx: { url: string }; userDirs: Record<string, string> };
  /** Each process the demo started, by name. */
  readonly pids: Record<string, number>;
  readonly piPort: number;
  readonly serverPort: number;
  stop(): Promise<void>;
}

async function startDemo(env: Record<string, string>, args: string[] = []): Promise<Demo> {
  const dir = tempDir('backup-demo');
  const piPort = await freePort();
  const serverPort = await freePort();
  const demo = spawn(process.execPath, [path.join(ROOT, 'scripts', 'start.js'), ...args], {
    cwd: ROOT,
    env: {
      ...process.env,
      DEMO_DIR: dir,
      PI_PORT: String(piPort),
      SERVER_PORT: String(serverPort),
      POLL_SECONDS: '2',
      ...env,
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  demo.stdout.on('data', (d: Buffer) => (out += d.toString()));
  demo.stderr.on('data', (d: Buffer) => (out += d.toString()));
  const exited = new Promise<number | null>((r) => demo.once('exit', (code) => r(code)));
  await waitFor(
    'the demo to start',
    () => out.includes('Ctrl-C stops everything') || demo.exitCode !== null,
    90_000,
  );
  assert.match(out, /Ctrl-C stops everything/, out);
  const pids = Object.fromEntries([...out.matchAll(/([\w-]+)=(\d+)/g)].map((m) => [m[1], Number(m[2])]));
  return {
    dir,
    state: JSON.parse(fs.readFileSync(path.join(dir, 'demo.json'), 'utf8')) as Demo['state'],
    pids,
    piPort,
    serverPort,
    async stop() {
      demo.kill('SIGINT');
      assert.equal(await exited, 0, out);
      assert.deepEqual(
        Object.entries(pids).filter(([, p]) => alive(p)),
        [],
      );
    },
  };
}

const query = async (demo: Demo, q: string) => {
  const res = await fetch(`${demo.state.influx.url}/query`, {
    method: 'POST',
    body: new URLSearchParams({ q, db: 'teleinfo', epoch: 'ms' }),
  });
  const body = (await res.json()) as { results: { error?: string; series?: unknown[] }[] };
  assert.equal(body.results[0].error, undefined, q);
  return body.results[0].series ?? [];
};

/** What the backup must keep: the points, the rollups and policies, every dashboard answer on them, the flows. */
async function snapshot(demo: Demo, from: number, to: number) {
  const meters = (
    (await query(demo, 'SHOW TAG VALUES FROM "teleinfo" WITH KEY = "meter"')) as { values: string[][] }[]
  )[0].values.map((v) => v[1]);
  const answers: Record<string, unknown> = {};
  // The Pis' status and health go on after a restore (the Pi starts again): those panels are left out.
  for (const panel of dashboard.panels.filter((p) => ![8, 12, 13].includes(p.id)))
    answers[panel.title] = await query(
      demo,
      expand(panel.targets[0].query, { from, to, interval: '1m' }, meters),
    );
  const flows: Record<string, unknown> = {};
  for (const [role, port] of [
    ['pi', demo.piPort],
    ['server', demo.serverPort],
  ] as const)
    flows[role] = await (await fetch(`http://127.0.0.1:${port}/flows`)).json();
  return {
    raw: await query(demo, 'SELECT * FROM "autogen"."teleinfo" GROUP BY "meter"'),
    hourly: await query(demo, 'SELECT * FROM "forever"."teleinfo_hourly" GROUP BY "meter"'),
    daily: await query(demo, 'SELECT * FROM "forever"."teleinfo_daily" GROUP BY "meter"'),
    policies: await query(demo, 'SHOW RETENTION POLICIES ON "teleinfo"'),
    answers,
    flows,
  };
}

test(
  'npm run backup, the demo destroyed, npm start -- --restore: the same points, rollups, dashboard answers and flows',
  { skip: serviceSkip('influxd') || serviceSkip('mosquitto') },
  async () => {
    const from = Date.now() - 60_000;
    const a = await startDemo({});
    const backup = path.join(tempDir('backup'), 'demo');
    let b: Demo | null = null;
    try {
      // A change deployed in the editor, which the backup must keep.
      const server = `http://127.0.0.1:${a.serverPort}`;
      const deployed = (await (await fetch(`${server}/flows`)).json()) as { id: string; name?: string }[];
      deployed.find((n) => n.id === 'srv-comment')!.name = 'deployed before the backup';
      // The current hour recomputed at each pass (every 60 s), so that the rollups catch up at rest.
      Object.assign(
        deployed.find((n) => n.id === 'srv-rollup')!,
        { currentEvery: '60' },
      );
      const res = await fetch(`${server}/flows`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', 'Node-RED-Deployment-Type': 'full' },
        body: JSON.stringify(deployed),
      });
      assert.equal(res.status, 204);
      // Readings, then the rollups of the server flow (every 60 s) catching up with them.
      await waitFor(
        'readings and their hourly rollups',
        async () => {
          const raw = (await query(a, 'SELECT count("phases") FROM "teleinfo"')) as { values: number[][] }[];
          const rolled = await query(a, 'SELECT last("power_max") FROM "forever"."teleinfo_hourly"');
          return (raw[0]?.values[0][1] ?? 0) >= 20 && rolled.length > 0;
        },
        150_000,
      );
      // The box stops answering; the backup is taken once every reading is stored and rolled up: each meter's last
      // hourly rollup ends on its last raw index.
      process.kill(a.pids.simulator, 'SIGTERM');
      await waitFor(
        'the readings stored and rolled up, at rest',
        async () => {
          const lasts = async (q: string) =>
            Object.fromEntries(
              (
                (await query(a, q)) as { tags: { meter: string }; columns: string[]; values: unknown[][] }[]
              ).map((s) => [s.tags.meter, Object.fromEntries(s.columns.map((c, i) => [c, s.values[0][i]]))]),
            );
          const raw = await lasts('SELECT last(*) FROM "autogen"."teleinfo" GROUP BY "meter"');
          const rolled = await lasts('SELECT last(*) FROM "forever"."teleinfo_hourly" GROUP BY "meter"');
          return Object.entries(raw).every(([meter, fields]) => {
            const ends = Object.entries(rolled[meter] ?? {}).filter(([c]) => c.startsWith('last_end_'));
            return ends.length > 0 && ends.every(([c, v]) => fields[`last_${c.slice(9)}`] === v);
          });
        },
        150_000,
      );
      const to = Date.now();
      const before = await snapshot(a, from, to);
      // The README's command.
      execFileSync('npm', ['run', 'backup', '--', backup], {
        cwd: ROOT,
        env: { ...process.env, DEMO_DIR: a.dir },
        stdio: 'pipe',
      });
      await a.stop();
      fs.rmSync(a.dir, { recursive: true, force: true });

      // A dead box: the restored demo has only what was backed up.
      b = await startDemo({ ECODEVICES_HOST: '127.0.0.1', ECODEVICES_PORT: String(await freePort()) }, [
        '--restore',
        backup,
      ]);
      const after = await snapshot(b, from, to);
      const counts = (s: typeof before) =>
        (s.raw as { values: unknown[] }[]).reduce((n, x) => n + x.values.length, 0);
      console.log(
        `# backup: ${counts(before)} readings, ${(before.hourly as { values: unknown[] }[]).reduce((n, x) => n + x.values.length, 0)} hourly rollups; restored ${counts(after)}`,
      );
      assert.ok(counts(before) > 10);
      assert.deepEqual(after.raw, before.raw, 'the same readings');
      assert.deepEqual(after.hourly, before.hourly, 'the same hourly rollups');
      assert.deepEqual(after.daily, before.daily, 'the same daily rollups');
      assert.deepEqual(after.policies, before.policies, 'the same retention policies');
      assert.deepEqual(after.answers, before.answers, 'the same dashboard answers');
      assert.deepEqual(after.flows, before.flows, 'the same flows, with the deployed change');
      for (const role of ['pi', 'server'])
        for (const file of ['flows.json', 'flows_cred.json'])
          assert.equal(
            fs.readFileSync(path.join(b.state.userDirs[role], file), 'utf8'),
            fs.readFileSync(path.join(backup, 'node-red', role, file), 'utf8'),
            `${role} ${file}`,
          );
    } finally {
      await b?.stop();
    }
  },
);
