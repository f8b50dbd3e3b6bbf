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
    'CHANGELOG.md',
    'LICENSE',
    'README.md',
    'bin',
    'dist/nodes',
    'examples',
    'flows',
    'package.json',
    'resources',
  ]);
  for (const file of [pkg.main, ...Object.values(pkg['node-red'].nodes)])
    assert.ok(files.has(file), `${file} is packed`);
  for (const file of Object.values(pkg['node-red'].nodes)) {
    const html = file.replace(/\.js$/, '.html');
    assert.ok(files.has(html), `${html} (its editor) is packed`);
  }
});

/**
 * The Node-RED flow library's scorecard (https://flows.nodered.org/add/node, "Scorecard"), the rules that fit a
 * package: each is checked here so a release cannot lose a point unnoticed.
 */
test('flow library scorecard: keywords, node-red.version, engines, licence, repository, examples, few and used dependencies', () => {
  const pkg = JSON.parse(fs.readFileSync(path.join(ROOT, 'package.json'), 'utf8')) as PackageJson & {
    keywords: string[];
    license: string;
    repository: { url: string };
    engines: { node: string };
    dependencies: Record<string, string>;
    'node-red': { version: string };
  };
  assert.ok(pkg.keywords.includes('node-red'), 'the node-red keyword (the library lists only those)');
  assert.match(pkg['node-red'].version, /^>=\d/, 'node-red.version: the Node-RED versions it works on');
  // What is claimed is what the tests run: the lowest major claimed is the one installed for them.
  const tested = (
    JSON.parse(fs.readFileSync(require.resolve('node-red/package.json'), 'utf8')) as { version: string }
  ).version;
  assert.equal(pkg['node-red'].version.match(/^>=(\d+)/)![1], tested.split('.')[0]);
  assert.match(pkg.engines.node, /^>=\d+/, 'engines.node');
  assert.equal(pkg.license, 'MIT');
  assert.ok(fs.existsSync(path.join(ROOT, 'LICENSE')), 'a LICENSE file');
  assert.match(pkg.repository.url, /^https:\/\/github\.com\//, 'a repository');
  assert.ok(fs.existsSync(path.join(ROOT, 'README.md')));

  // An example for every node that is not a config node (config nodes come with the nodes that use them).
  const examples = fs
    .readdirSync(path.join(ROOT, 'examples'))
    .flatMap(
      (f) => JSON.parse(fs.readFileSync(path.join(ROOT, 'examples', f), 'utf8')) as { type: string }[],
    );
  const configNodes = new Set<string>();
  for (const type of Object.keys(pkg['node-red'].nodes)) {
    const html = fs.readFileSync(path.join(ROOT, 'nodes', type, `${type}.html`), 'utf8');
    if (/category:\s*'config'/.test(html)) configNodes.add(type);
  }
  for (const type of Object.keys(pkg['node-red'].nodes)) {
    if (configNodes.has(type)) continue;
    assert.ok(
      examples.some((n) => n.type === type),
      `an example uses ${type}`,
    );
  }

  // Few dependencies, each one used by the shipped code.
  const deps = Object.keys(pkg.dependencies);
  assert.ok(deps.length <= 3, `few dependencies: ${deps.join(', ')}`);
  const sources = fs
    .readdirSync(path.join(ROOT, 'nodes'), { recursive: true })
    .filter((f) => String(f).endsWith('.ts'))
    .map((f) => fs.readFileSync(path.join(ROOT, 'nodes', String(f)), 'utf8'))
    .join('\n');
  for (const dep of deps) assert.ok(sources.includes(`from '${dep}`), `${dep} is used by nodes/`);
});

test("the README's two commands: each does its whole set-up, and .ci/run runs exactly the test one", () => {
  const readme = fs.readFileSync(path.join(ROOT, 'README.md'), 'utf8');
  const command = (what: RegExp) => {
    const row = readme.split('\n').find((l) => l.startsWith('|') && what.test(l));
    return /`([^`]+)` \|$/.exec(row ?? '')?.[1];
  };
  assert.equal(command(/^\| Run the whole chain/), 'npm ci && npm start');
  assert.equal(command(/^\| Run every test/), 'npm ci && npm test');
  const ci = fs.readFileSync(path.join(ROOT, '.ci', 'run'), 'utf8');
  assert.match(ci, /sed -n .*Run every test.*README\.md/, '.ci/run reads the command from the README');
  assert.match(ci, /CI=true bash -c "\$test_command"/);
});

test('a Pi loads neither undici nor the InfluxDB client: registering every node requires only what polling needs', () => {
  const pkg = JSON.parse(fs.readFileSync(path.join(ROOT, 'package.json'), 'utf8')) as PackageJson;
  // Each node file as Node-RED loads it at start, in a fresh process: then the modules it pulled in.
  const script = `
    for (const file of ${JSON.stringify(Object.values(pkg['node-red'].nodes))}) require(require('path').join(${JSON.stringify(ROOT)}, file));
    console.log(JSON.stringify(Object.keys(require.cache)));`;
  const loaded = JSON.parse(execFileSync(process.execPath, ['-e', script], { encoding: 'utf8' })) as string[];
  const heavy = loaded.filter((f) => /node_modules[\\/](undici|@influxdata)[\\/]/.test(f));
  assert.deepEqual(heavy, [], 'loaded only once an InfluxDB server is configured');
  assert.ok(
    loaded.some((f) => f.includes('ecodevices-in')),
    'the node files themselves were loaded',
  );
});
