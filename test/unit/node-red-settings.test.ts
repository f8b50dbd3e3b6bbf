import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, test } from 'node:test';
import { ROOT } from '../support/fixtures';

type Settings = (o: { port: number; role?: string; env?: Record<string, string>; userDir?: string }) => {
  nodesExcludes?: string[];
};
// eslint-disable-next-line @typescript-eslint/no-require-imports -- the settings are plain JS shared with the launcher
const settings = require(path.join(ROOT, 'scripts', 'node-red-settings.js')) as Settings;

describe("the instances' Node-RED settings", () => {
  test('a Pi leaves out the core nodes it does not use, unless PI_CORE_NODES=all; a server loads them all', () => {
    const pi = settings({ port: 1, role: 'pi', env: {} }).nodesExcludes ?? [];
    assert.ok(pi.includes('21-httprequest.js'), pi.join(' '));
    for (const kept of ['10-mqtt.js', '10-function.js', '10-file.js', '21-httpin.js', '70-JSON.js'])
      assert.equal(pi.includes(kept), false, kept);
    // Each name is a file of Node-RED's core nodes: an upgrade that renames one would load it again unnoticed.
    const core = path.dirname(require.resolve('@node-red/nodes/package.json'));
    const files = fs
      .readdirSync(path.join(core, 'core'), { recursive: true })
      .map((f) => path.basename(String(f)));
    for (const file of pi) assert.ok(files.includes(file), `${file} is a core node file`);
    assert.equal(settings({ port: 1, role: 'pi', env: { PI_CORE_NODES: 'all' } }).nodesExcludes, undefined);
    // A flow that uses a left-out type (a tcp in, in a Pi flow of an earlier version) gets its file loaded.
    const userDir = fs.mkdtempSync(path.join(os.tmpdir(), 'settings-'));
    fs.writeFileSync(path.join(userDir, 'flows.json'), JSON.stringify([{ id: 'a', type: 'tcp in' }]));
    const withTcp = settings({ port: 1, role: 'pi', env: {}, userDir }).nodesExcludes ?? [];
    assert.deepEqual(
      pi.filter((f) => !withTcp.includes(f)),
      ['31-tcpin.js'],
    );
    fs.rmSync(userDir, { recursive: true, force: true });
    assert.equal(settings({ port: 1, role: 'server', env: {} }).nodesExcludes, undefined);
  });
});
