import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { ROOT } from '../support/fixtures';

/**
 * Every command the README gives a newcomer is run, as written, by a test or by CI: this says which, so that a
 * command cannot appear in the README without one.
 */
const RUN_BY: Record<string, string> = {
  'npm ci && npm start': 'test/e2e/npm-start.test.ts (in a fresh clone, from the Set-up table)',
  'npm ci && npm test': '.ci/run (from the Set-up table)',
  'npm start': 'test/e2e/npm-start.test.ts',
  'npm run backup -- backups/today': 'test/e2e/backup.test.ts',
  'npm start -- --restore backups/today':
    'test/e2e/backup.test.ts (as scripts/start.js --restore, which npm start runs once it has built)',
  'sh docker/backup.sh backups/today': 'test/e2e/docker-deployment.test.ts (on a stand-in docker CLI)',
  'sh docker/restore.sh backups/today': 'test/e2e/docker-deployment.test.ts (on a stand-in docker CLI)',
  'npm test': '.ci/run',
  'npx teleinfo-sim --help': 'test/e2e/npm-start.test.ts (in a fresh clone)',
  'npx node-red admin hash-pw': 'test/e2e/npm-start.test.ts (in a fresh clone)',
  'npm run certs': 'test/e2e/docker-deployment.test.ts (the Deploy blocks)',
  'docker compose up -d': 'test/e2e/docker-deployment.test.ts (the Deploy blocks)',
  'sh scripts/instance.sh pi ~/.node-red-teleinfo':
    "test/e2e/docker-deployment.test.ts (the image's entry point, sh scripts/instance.sh pi <userDir>)",
  'ssh -L 3000:127.0.0.1:3000 <host>': 'none: a hint with a placeholder for a remote host',
};

test('every command of the README is one a test or CI runs as written (the Deploy blocks by the deployment test)', () => {
  const readme = fs.readFileSync(path.join(ROOT, 'README.md'), 'utf8');
  const inline = [...readme.matchAll(/`((?:npm|npx|docker|sh|git|cp|ssh) [^`]*)`/g)].map((m) => m[1]);
  const deploy = readme.slice(readme.indexOf('## Deploy with Docker'));
  const blocks =
    readme.indexOf('## Deploy with Docker') >= 0 ? deploy.slice(0, deploy.indexOf('\n## ', 3)) : '';
  const blockCommands = [...readme.matchAll(/```sh\n([\s\S]*?)```/g)].flatMap((m) => m[1].trim().split('\n'));
  for (const command of blockCommands)
    assert.ok(
      blocks.includes(command),
      `${command}: a code block outside the Deploy section, which no test reads`,
    );
  const unknown = inline.filter((c) => !(c in RUN_BY));
  assert.deepEqual(unknown, [], 'README commands no test runs');
  for (const runner of Object.values(RUN_BY)) {
    const file = /^([\w./-]+)/.exec(runner)![1];
    if (!runner.startsWith('none:')) assert.ok(fs.existsSync(path.join(ROOT, file)), `${file} exists`);
  }
});

test('the repository speaks of itself: no session or issue numbers in what it tracks', () => {
  const files = execFileSync('git', ['ls-files', '-co', '--exclude-standard'], {
    cwd: ROOT,
    encoding: 'utf8',
  })
    .split('\n')
    .filter((f) => f && !f.endsWith('package-lock.json') && fs.existsSync(path.join(ROOT, f)));
  const found: string[] = [];
  for (const file of files) {
    const text = fs.readFileSync(path.join(ROOT, file), 'utf8');
    for (const m of text.matchAll(/\b(sessions?|issues?) #?\d+/gi)) {
      const line = text.slice(text.lastIndexOf('\n', m.index) + 1, text.indexOf('\n', m.index));
      // Another project's bug report, named as its own tracker names it.
      if (/node-red issue #\d+|github\.com/.test(line)) continue;
      found.push(`${file}: ${m[0]}`);
    }
  }
  assert.deepEqual(found, []);
});
