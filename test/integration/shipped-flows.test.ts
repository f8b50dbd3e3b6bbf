import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { ROOT } from '../support/fixtures';
import { startNodeRed, type NodeRedProcess } from '../support/node-red-process';
import mqtt from 'mqtt';
import { freePort, serviceSkip, stopper, tcpOpen, tempDir, waitFor } from '../support/services';
import { passwordFile } from '../support/tls';

const examples = fs.readdirSync(path.join(ROOT, 'examples')).filter((f) => f.endsWith('.json'));

describe('shipped flows and examples load in a real Node-RED', () => {
  let nr: NodeRedProcess;
  before(async () => {
    nr = await startNodeRed();
  });
  after(() => nr.stop());

  for (const file of [...examples.map((f) => `examples/${f}`), 'flows/pi.json', 'flows/server.json']) {
    test(`${file}: every node type is known, and it says what to set`, async () => {
      const flows = JSON.parse(fs.readFileSync(path.join(ROOT, file), 'utf8')) as {
        type: string;
        z?: string;
      }[];
      assert.ok(
        flows.some((n) => n.type === 'comment'),
        'a Comment node says what to set',
      );
      const before = nr.log().length;
      await nr.deploy(flows);
      const log = nr.log().slice(before);
      assert.doesNotMatch(log, /Waiting for missing types|unknown type/i);
    });
  }

  test('the four examples the palette menu lists', () => {
    assert.deepEqual(examples.sort(), [
      'Eco-Devices to InfluxDB (single instance).json',
      'Linky serial TIC to MQTT.json',
      'Raspberry Pi publisher.json',
      'Server ingest.json',
    ]);
  });

  test('no secret in a shipped flow: credentials come from the environment or the editor', () => {
    for (const file of [...examples.map((f) => `examples/${f}`), 'flows/pi.json', 'flows/server.json']) {
      const text = fs.readFileSync(path.join(ROOT, file), 'utf8');
      assert.doesNotMatch(text, /"(credentials|password|token)"\s*:/i, file);
    }
  });
});

test(
  'docker-compose.yml is valid (docker-compose config -q) and sets no default password',
  { skip: serviceSkip('docker-compose') },
  () => {
    const secrets = ['MQTT_USER', 'MQTT_PASSWORD', 'INFLUX_ADMIN_PASSWORD', 'INFLUX_USER', 'INFLUX_PASSWORD'];
    const compose = (env: NodeJS.ProcessEnv) =>
      execFileSync('docker-compose', ['-f', path.join(ROOT, 'docker-compose.yml'), 'config', '-q'], {
        env,
        stdio: 'pipe',
      });
    const clean = Object.fromEntries(Object.entries(process.env).filter(([k]) => !secrets.includes(k)));
    compose({ ...clean, ...Object.fromEntries(secrets.map((k) => [k, 'x'])) });
    // Without them it refuses: there is no default to fall back on.
    assert.throws(() => compose(clean), /set (MQTT|INFLUX)_/);
    const text = fs.readFileSync(path.join(ROOT, 'docker-compose.yml'), 'utf8');
    assert.doesNotMatch(
      text,
      /^\s*\w*PASSWORD\w*:\s*(?!\$\{)\S/m,
      'passwords come from the environment (${VAR:?})',
    );
  },
);

/** docker/mosquitto/mosquitto.conf as docker-compose mounts it, with its container paths and port made local. */
async function composeMosquitto(dir: string, port: number, passwd: string) {
  let conf = fs.readFileSync(path.join(ROOT, 'docker', 'mosquitto', 'mosquitto.conf'), 'utf8');
  for (const [line, local] of [
    ['persistence_location /mosquitto/data/', `persistence_location ${dir}/`],
    ['password_file /mosquitto/config/passwd', `password_file ${passwd}`],
    ['listener 1883', `listener ${port} 127.0.0.1`],
  ]) {
    assert.ok(conf.includes(`\n${line}\n`), `mosquitto.conf has "${line}"`);
    conf = conf.replace(`\n${line}\n`, `\n${local}\n`);
  }
  const file = path.join(dir, 'mosquitto.conf');
  fs.writeFileSync(file, `user root\n${conf}`); // as root, mosquitto would drop to a user that cannot write here
  const child = spawn('mosquitto', ['-c', file], { stdio: ['ignore', 'ignore', 'ignore'] });
  await waitFor(`mosquitto on ${port}`, () => tcpOpen(port));
  return stopper(child, null);
}

test(
  'docker/mosquitto/mosquitto.conf on a local mosquitto: anonymous refused, its password file used, sessions kept across a restart',
  { skip: serviceSkip('mosquitto') },
  async () => {
    const dir = tempDir('compose-mosquitto');
    const port = await freePort();
    const passwd = passwordFile(dir, 'teleinfo', 'compose-pass');
    const url = `mqtt://127.0.0.1:${port}`;
    const account = {
      username: 'teleinfo',
      password: 'compose-pass',
      protocolVersion: 5 as const,
      reconnectPeriod: 0,
    };
    const server = {
      ...account,
      clientId: 'compose-server',
      clean: false,
      properties: { sessionExpiryInterval: 3600 },
    };
    let stop = await composeMosquitto(dir, port, passwd);
    try {
      await assert.rejects(
        mqtt.connectAsync(url, { protocolVersion: 5, reconnectPeriod: 0 }),
        /not authori[sz]ed/i,
      );
      await assert.rejects(
        mqtt.connectAsync(url, { ...account, password: 'wrong' }),
        /not authori[sz]ed|bad user/i,
      );

      const subscriber = await mqtt.connectAsync(url, server);
      await subscriber.subscribeAsync('teleinfo/+/reading', { qos: 1 });
      await subscriber.endAsync();
      const pi = await mqtt.connectAsync(url, account);
      await pi.publishAsync('teleinfo/m1/reading', 'queued while the server is away', { qos: 1 });
      await pi.endAsync();

      await stop(); // SIGTERM: mosquitto saves its sessions
      stop = await composeMosquitto(dir, port, passwd);
      const back = mqtt.connect(url, server);
      const received = new Promise<string>((resolve) => back.on('message', (_t, p) => resolve(p.toString())));
      const connack = await new Promise<{ sessionPresent: boolean }>((resolve) =>
        back.once('connect', resolve),
      );
      assert.equal(connack.sessionPresent, true);
      assert.equal(await received, 'queued while the server is away');
      await back.endAsync();
    } finally {
      await stop();
      fs.rmSync(dir, { recursive: true, force: true });
    }
  },
);
