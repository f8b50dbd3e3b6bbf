import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { startNodeRed, type NodeRedProcess } from '../support/node-red-process';
import { tempDir, waitFor } from '../support/services';

/**
 * teleinfo-alert keeps its state in the context store of the shipped instances' settings (localfilesystem), in a
 * real Node-RED process: a redeploy and a restart raise nothing twice.
 */
test('teleinfo-alert across a full redeploy and a restart of Node-RED: an active alert is not raised again, its end is sent', async () => {
  const dir = tempDir('alert-persistence');
  const record = path.join(dir, 'alerts.jsonl');
  const flows = [
    { id: 'tab', type: 'tab' },
    { id: 'in', z: 'tab', type: 'http in', url: '/alert-in', method: 'post', wires: [['unpack', 'ok']] },
    { id: 'ok', z: 'tab', type: 'http response', statusCode: '200' },
    {
      id: 'unpack',
      z: 'tab',
      type: 'change',
      rules: [
        { t: 'set', p: 'topic', pt: 'msg', to: 'payload.topic', tot: 'msg' },
        { t: 'set', p: 'payload', pt: 'msg', to: 'payload.payload', tot: 'msg' },
      ],
      wires: [['alert']],
    },
    {
      id: 'alert',
      z: 'tab',
      type: 'teleinfo-alert',
      silence: true,
      silenceMinutes: '60',
      wires: [['record']],
    },
    {
      id: 'record',
      z: 'tab',
      type: 'file',
      filename: record,
      filenameType: 'str',
      appendNewline: true,
      createDir: true,
      overwriteFile: 'false',
      encoding: 'none',
    },
  ];
  const lines = () =>
    fs.existsSync(record)
      ? fs
          .readFileSync(record, 'utf8')
          .trim()
          .split('\n')
          .map((l) => JSON.parse(l) as { meter: string; state: string })
      : [];
  const status = async (nr: NodeRedProcess, pi: string, state: string) => {
    const res = await fetch(`${nr.url}/alert-in`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ topic: `teleinfo/${pi}/status`, payload: state }),
    });
    assert.equal(res.status, 200);
  };
  let nr = await startNodeRed({ flows, dir });
  try {
    await status(nr, 'pi-1', 'offline');
    await waitFor('pi-1 raised', () => lines().length === 1);

    await nr.deploy(flows);
    await status(nr, 'pi-1', 'offline'); // as a retained status is delivered again after a reconnection
    await status(nr, 'pi-2', 'offline');
    await waitFor('pi-2 raised', () => lines().length === 2);
    assert.deepEqual(
      lines()[1],
      { ...lines()[1], meter: 'pi-2', state: 'raised' },
      'pi-1 not raised again after a redeploy',
    );

    await nr.stop(); // the context store is written on shutdown
    nr = await startNodeRed({ flows, dir });
    await status(nr, 'pi-1', 'offline');
    await status(nr, 'pi-1', 'online');
    await waitFor('pi-1 cleared', () => lines().length === 3);
    assert.deepEqual(
      lines().map((l) => `${l.meter} ${l.state}`),
      ['pi-1 raised', 'pi-2 raised', 'pi-1 cleared'],
      'after a restart: pi-1 still raised, so only its end',
    );
  } finally {
    await nr.stop();
    fs.rmSync(dir, { recursive: true, force: true });
  }
});
