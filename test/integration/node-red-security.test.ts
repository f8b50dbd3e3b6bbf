import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { describe, test } from 'node:test';
import bcrypt from 'bcryptjs';
import { ROOT } from '../support/fixtures';
import { editorToken } from '../support/node-red-process';
import { freePort, stopper, tcpOpen, tempDir, waitFor } from '../support/services';

/**
 * The launcher the containers run (`sh scripts/instance.sh server <userDir> <port>`), with the settings of the
 * images, as a real Node-RED process: what it refuses and what it keeps.
 */

const LAUNCHER = path.join(ROOT, 'scripts', 'instance.sh');
const SECRETS = { MQTT_PASSWORD: 'mqtt-secret-pass', INFLUX_PASSWORD: 'influx-secret-pass' };

function launcher(dir: string, port: number, env: Record<string, string>, extra: string[] = []) {
  const log = fs.openSync(path.join(dir, 'launcher.log'), 'a');
  const child = spawn('sh', [LAUNCHER, 'server', path.join(dir, 'userDir'), String(port), ...extra], {
    env: { ...process.env, ...env },
    stdio: ['ignore', log, log],
  });
  fs.closeSync(log);
  return {
    pid: child.pid!,
    stop: stopper(child, null),
    log: () => fs.readFileSync(path.join(dir, 'launcher.log'), 'utf8'),
  };
}

describe('the Node-RED launcher of the images, secured', () => {
  test('beyond loopback it refuses to start without adminAuth and a credential secret, and a hash that is no bcrypt hash', () => {
    const dir = tempDir('launcher-refused');
    const run = (env: Record<string, string>) =>
      spawnSync('sh', [LAUNCHER, 'server', path.join(dir, 'userDir'), '1'], {
        env: { ...process.env, ...env },
        encoding: 'utf8',
      });
    const open = run({ NODE_RED_HOST: '0.0.0.0' });
    assert.equal(open.status, 2);
    assert.match(
      open.stderr,
      /refusing to listen on 0\.0\.0\.0 without NODE_RED_ADMIN_HASH and NODE_RED_CREDENTIAL_SECRET/,
    );
    const noSecret = run({ NODE_RED_HOST: '0.0.0.0', NODE_RED_ADMIN_HASH: bcrypt.hashSync('x', 4) });
    assert.match(noSecret.stderr, /without NODE_RED_CREDENTIAL_SECRET/);
    assert.match(run({ NODE_RED_ADMIN_HASH: 'plain-password' }).stderr, /not a bcrypt hash/);
    assert.equal(
      fs.existsSync(path.join(dir, 'userDir', 'flows.json')),
      false,
      'nothing written before refusing',
    );

    // Node-RED started on these settings without the launcher refuses too.
    const settings = path.join(dir, 'settings.js');
    fs.writeFileSync(
      settings,
      `module.exports = require(${JSON.stringify(path.join(ROOT, 'scripts', 'node-red-settings.js'))})({ port: 1 });\n`,
    );
    const direct = spawnSync(
      process.execPath,
      [require.resolve('node-red/red.js'), '-u', path.join(dir, 'direct'), '-s', settings],
      { env: { ...process.env, NODE_RED_HOST: '0.0.0.0' }, encoding: 'utf8', timeout: 60_000 },
    );
    assert.notEqual(direct.status, 0);
    assert.match(direct.stdout + direct.stderr, /refusing to listen on 0\.0\.0\.0/);
    fs.rmSync(dir, { recursive: true, force: true });
  });

  test('the entry point becomes Node-RED; the editor needs a login, the credentials file holds no clear secret, an edit deployed in the editor survives a restart', async () => {
    const dir = tempDir('launcher-secure');
    const port = await freePort();
    const env = {
      ...SECRETS,
      NODE_RED_ADMIN_USER: 'admin',
      NODE_RED_ADMIN_HASH: bcrypt.hashSync('editor-pass', 8),
      NODE_RED_CREDENTIAL_SECRET: 'a-long-credential-secret',
      MQTT_URL: 'mqtt://127.0.0.1:9', // nothing there: the instance retries, which is enough here
      INFLUX_URL: 'http://127.0.0.1:9',
    };
    const api = `http://127.0.0.1:${port}`;
    const flows = async (bearer: string) => {
      const res = await fetch(`${api}/flows`, { headers: { authorization: `Bearer ${bearer}` } });
      assert.equal(res.status, 200);
      return (await res.json()) as { id: string; name?: string }[];
    };

    let nr = launcher(dir, port, env);
    try {
      await waitFor('the editor', () => tcpOpen(port), 30_000);
      // The entry point became Node-RED (which titles its process `node-red`): no launcher is left beside it.
      assert.equal(fs.readlinkSync(`/proc/${nr.pid}/exe`), fs.realpathSync(process.execPath));
      assert.match(fs.readFileSync(`/proc/${nr.pid}/cmdline`, 'utf8'), /^node-red/);
      assert.equal((await fetch(`${api}/flows`)).status, 401, 'the admin API without a token');
      assert.equal(await editorToken(api, 'wrong-pass'), null, 'a wrong password gets no token');
      const bearer = (await editorToken(api, 'editor-pass'))!;
      assert.ok(bearer, 'the right password gets a token');
      const deployed = await flows(bearer);
      assert.ok(deployed.some((n) => n.id === 'srv-influx'));

      const onDisk = fs.readFileSync(path.join(dir, 'userDir', 'flows_cred.json'), 'utf8');
      for (const secret of Object.values(SECRETS))
        assert.equal(onDisk.includes(secret), false, 'no clear secret');
      assert.deepEqual(Object.keys(JSON.parse(onDisk) as object), ['$'], 'encrypted as Node-RED does');
      const creds = await fetch(`${api}/credentials/influxdb-teleinfo-server/srv-influx`, {
        headers: { authorization: `Bearer ${bearer}` },
      });
      assert.equal(
        ((await creds.json()) as { has_password?: boolean }).has_password,
        true,
        'Node-RED decrypts them',
      );

      // With an HTTP route of the flows' own (the dashboard's, an http in's): the same login.
      const edited = [
        ...deployed.map((n) =>
          n.id === 'srv-tab' || n.id === deployed[0].id ? { ...n, label: 'edited in the editor' } : n,
        ),
        {
          id: 'probe-in',
          type: 'http in',
          z: 'srv-tab',
          url: '/probe',
          method: 'get',
          wires: [['probe-out']],
        },
        { id: 'probe-out', type: 'http response', z: 'srv-tab', statusCode: '200', wires: [] },
      ];
      const deploy = await fetch(`${api}/flows`, {
        method: 'POST',
        headers: {
          authorization: `Bearer ${bearer}`,
          'content-type': 'application/json',
          'Node-RED-Deployment-Type': 'full',
        },
        body: JSON.stringify(edited),
      });
      assert.equal(deploy.status, 204);
      const basic = (password: string) => ({
        authorization: `Basic ${Buffer.from(`admin:${password}`).toString('base64')}`,
      });
      await waitFor('the route deployed', async () => (await fetch(`${api}/probe`)).status !== 404);
      assert.equal((await fetch(`${api}/probe`)).status, 401, 'an HTTP route of the flows without a login');
      assert.equal((await fetch(`${api}/probe`, { headers: basic('wrong-pass') })).status, 401);
      assert.equal((await fetch(`${api}/probe`, { headers: basic('editor-pass') })).status, 200);

      await nr.stop();
      nr = launcher(dir, port, env);
      await waitFor('the editor again', () => tcpOpen(port), 30_000);
      const again = await flows((await editorToken(api, 'editor-pass'))!);
      assert.ok(
        again.some((n) => (n as { label?: string }).label === 'edited in the editor'),
        'the launcher kept what was deployed',
      );
      assert.doesNotMatch(nr.log(), /Error loading credentials|decrypt/i);

      await nr.stop();
      nr = launcher(dir, port, env, ['--reseed']);
      await waitFor('the editor once more', () => tcpOpen(port), 30_000);
      const reseeded = await flows((await editorToken(api, 'editor-pass'))!);
      assert.equal(
        reseeded.some((n) => (n as { label?: string }).label === 'edited in the editor'),
        false,
        '--reseed puts the shipped flow back',
      );
    } finally {
      await nr.stop();
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});
