import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { ROOT } from '../support/fixtures';

interface PackageJson {
  main: string;
  scripts: Record<string, string>;
  'node-red': { nodes: Record<string, string> };
}

test('npm pack: a prepack build, and a tarball with only what users need and every file the package names', () => {
  const pkg = JSON.parse(fs.readFileSync(path.join(ROOT, 'package.json'), 'utf8')) as PackageJson;
  assert.match(pkg.scripts.prepack ?? '', /build/, 'npm pack and npm publish build dist/ first');
  // --ignore-scripts: the listing of what `npm test` already built, without building again under the running tests.
  const [pack] = JSON.parse(
    execFileSync('npm', ['pack', '--dry-run', '--ignore-scripts', '--json'], { cwd: ROOT, encoding: 'utf8' }),
  ) as { files: { path: string }[] }[];
  const files = new Set(pack.files.map((f) => f.path));
  const tops = new Set(
    [...files].map((f) => (f.startsWith('dist/') ? f.split('/').slice(0, 2).join('/') : f.split('/')[0])),
  );
  assert.deepEqual([...tops].sort(), [
    'LICENSE',
    'README.md',
    'bin',
    'dist/nodes',
    'examples',
    'flows',
    'package.json',
  ]);
  for (const file of [pkg.main, ...Object.values(pkg['node-red'].nodes)])
    assert.ok(files.has(file), `${file} is packed`);
  for (const file of Object.values(pkg['node-red'].nodes)) {
    const html = file.replace(/\.js$/, '.html');
    assert.ok(files.has(html), `${html} (its editor) is packed`);
  }
});
