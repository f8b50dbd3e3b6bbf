import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { ROOT } from '../support/fixtures';
import { startNodeRed, type NodeRedProcess } from '../support/node-red-process';
import { serviceSkip } from '../support/services';

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
