import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import mqtt from 'mqtt';
import type { Reading } from '../../nodes/lib/reading';
import { SerialLine } from '../../nodes/lib/simulator/serial-line';
import { SimulatedMeter } from '../../nodes/lib/simulator/meter';
import { encodeTicFrame, type TicGroupText } from '../../nodes/lib/tic/encoder';
import { labelSpec, type TicMode } from '../../nodes/lib/tic/labels';
import { ROOT } from '../support/fixtures';
import { startInstance, type NodeRedProcess } from '../support/node-red-process';
import { serviceSkip, startMosquitto, tempDir, waitFor, type Mosquitto } from '../support/services';

/**
 * A Linky read from a real serial port: the simulator's meter writes its TIC frames at the line's pace into one
 * end of a socat pseudo-terminal pair, and the shipped Pi flow's TIC tab (node-red-node-serialport's serial in,
 * teleinfo-parse in auto mode driving a serial control node) reads the other end in a real Node-RED and publishes
 * to a real mosquitto. Every reading published is compared with the frame the meter sent.
 *
 * A pseudo-terminal carries bytes at any baud, so "a wrong baud" is emulated by the line: while the reader's port
 * (read with stty) is not at the line's baud, the line delivers garbage, as a UART would.
 */

const skip = serviceSkip('mosquitto') || serviceSkip('socat');

interface SentFrame {
  mode: TicMode;
  groups: TicGroupText[];
  /** The label whose value was corrupted on the wire, if any. */
  corrupted?: string;
}

describe('serial TIC through the shipped Pi flow', { skip }, () => {
  const dir = tempDir('serial');
  const ttyPath = path.join(dir, 'ttyTIC');
  const meter = new SimulatedMeter({
    adco: '021861348497',
    contract: 'HC',
    phases: 1,
    isousc: 30,
    seed: 7,
    origin: Date.now(),
  });
  const sent: SentFrame[] = [];
  let mode: TicMode = 'historic';
  let corruptNext: string | null = null;
  let mosquitto: Mosquitto;
  let pi: NodeRedProcess;
  let line: SerialLine;
  let client: mqtt.MqttClient;
  const received: Reading[] = [];
  const events = (file: string) =>
    fs.existsSync(path.join(pi.dir, file))
      ? fs
          .readFileSync(path.join(pi.dir, file), 'utf8')
          .split('\n')
          .filter(Boolean)
          .map((l) => ({ [file.startsWith('errors') ? 'error' : 'status']: JSON.parse(l) as unknown }))
      : [];
  const errors = () => events('errors.jsonl').map((e) => String((e.error as { message: string }).message));
  const statuses = () => events('status.jsonl').map((e) => String((e.status as { text: string }).text));

  before(async () => {
    mosquitto = await startMosquitto();
    line = await SerialLine.open({
      path: ttyPath,
      baud: 1200,
      frame: () => {
        const groups =
          mode === 'historic' ? meter.historicGroups(Date.now()) : meter.standardGroups(Date.now());
        const frame: SentFrame = { mode, groups };
        let bytes = encodeTicFrame(mode, groups);
        if (corruptNext) {
          // One digit of the label's value changed on the wire: its checksum no longer matches.
          const sep = mode === 'historic' ? ' ' : '\t';
          const at = bytes.indexOf(`\n${corruptNext}${sep}`) + corruptNext.length + 2;
          bytes = bytes.slice(0, at) + (bytes[at] === '1' ? '2' : '1') + bytes.slice(at + 1);
          frame.corrupted = corruptNext;
          corruptNext = null;
        }
        sent.push(frame);
        return Buffer.from(bytes, 'latin1');
      },
    });
    client = await mqtt.connectAsync(mosquitto.url, { protocolVersion: 5 });
    client.on('message', (_t, payload) => received.push(JSON.parse(payload.toString()) as Reading));
    await client.subscribeAsync('teleinfo/pi-serial/+/reading', { qos: 1 });

    const flows = JSON.parse(fs.readFileSync(path.join(ROOT, 'flows', 'pi.json'), 'utf8')) as {
      id: string;
      type: string;
      disabled?: boolean;
    }[];
    flows.find((n) => n.id === 'tic-tab')!.disabled = false;
    flows.find((n) => n.id === 'pi-tab')!.disabled = true;
    // A Catch or Status node on teleinfo-parse, its msg.error or msg.status written as one JSON line.
    const tap = (id: string, type: string, extra: object) => ({
      id,
      type,
      z: 'tic-tab',
      scope: ['tic-parse'],
      ...extra,
      wires: [[`${id}-pick`]],
    });
    const pick = (id: string, property: string) => ({
      id: `${id}-pick`,
      type: 'change',
      z: 'tic-tab',
      rules: [{ t: 'set', p: 'payload', pt: 'msg', to: property, tot: 'msg' }],
      wires: [[`${id}-file`]],
    });
    const file = (id: string, name: string) => ({
      id: `${id}-file`,
      type: 'file',
      z: 'tic-tab',
      filename: path.join(dir, 'pi', name),
      filenameType: 'str',
      appendNewline: true,
      createDir: true,
      overwriteFile: 'false',
      encoding: 'none',
      wires: [[]],
    });
    flows.push(
      tap('test-errors', 'catch', { uncaught: false }),
      pick('test-errors', 'error'),
      file('test-errors', 'errors.jsonl'),
      tap('test-status', 'status', {}),
      pick('test-status', 'status'),
      file('test-status', 'status.jsonl'),
    );
    pi = await startInstance('pi', {
      dir: path.join(dir, 'pi'),
      flows,
      env: {
        PI_ID: 'pi-serial',
        MQTT_URL: mosquitto.url,
        TIC_PORT: ttyPath,
        TIC_MODE: 'auto',
        TIC_RECONNECT_MS: '500',
      },
    });
  });

  after(async () => {
    await client?.endAsync();
    await pi?.stop();
    await line?.close();
    await mosquitto?.stop();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  /** Every reading from `from` on is a frame the meter sent, in order, with exactly its labels and values. */
  const assertExact = (from: number) => {
    let next = 0;
    for (const r of received.slice(from)) {
      const k = sent.findIndex((f, i) => i >= next && matches(r, f));
      assert.ok(k >= 0, `reading ${JSON.stringify(r.values)} matches no frame sent`);
      next = k + 1;
    }
  };
  const readingsAfter = async (count: number, what: string, timeoutMs = 30_000) => {
    const from = received.length;
    await waitFor(what, () => received.length >= from + count, timeoutMs);
    return from;
  };

  test('historic at 1200 Bd: found in auto mode, readings equal the frames the meter sent', async () => {
    const t0 = Date.now();
    const from = await readingsAfter(3, 'three historic readings');
    console.log(`# historic line: first reading ${Date.now() - t0} ms after Node-RED was up`);
    assertExact(from);
    assert.ok(received.slice(from).every((r) => r.source === 'tic-historic' && r.meter === '021861348497'));
    assert.ok(statuses().some((s) => s.startsWith('1200 Bd historic 021861348497')));
  });

  test('noise between frames and a corrupted group: counted errors, the rest of the frame kept, reading goes on', async () => {
    const errorsBefore = errors().length;
    line.noise(Buffer.from('\x00\xff\x13garbage\x7f\x00', 'latin1'));
    corruptNext = 'PAPP';
    const from = await readingsAfter(3, 'readings after the noise');
    assertExact(from);
    const bad = sent.find((f) => f.corrupted === 'PAPP')!;
    const kept = received.slice(from).find((r) => matches(r, bad));
    assert.ok(kept, 'the corrupted frame still gave a reading without its bad group');
    assert.equal(kept.values.PAPP, undefined);
    await waitFor('the checksum error reached the Catch node', () =>
      errors()
        .slice(errorsBefore)
        .some((e) => e.includes('TIC checksum error') && e.includes('PAPP')),
    );
  });

  test('adapter unplugged and plugged back: status, a counted error, and reading resumes by itself', async () => {
    await line.unplug();
    await waitFor('the Catch node heard the line was lost', () =>
      errors().some((e) => e.includes('serial line lost: the serial port is gone')),
    ).catch((e: unknown) => {
      // Seen once in a full run, never alone: what the Pi logged is the only witness.
      console.log(pi.log().slice(-4000));
      throw e;
    });
    await waitFor('the status says so', () => statuses().some((s) => s === 'serial line lost (1×)'));
    const during = received.length;
    await new Promise((r) => setTimeout(r, 1500)); // unplugged for a while, reconnect attempts failing
    assert.equal(received.length, during, 'nothing read while unplugged');
    const plugged = Date.now();
    await line.plug();
    const from = await readingsAfter(2, 'readings after the adapter is back');
    console.log(`# replug: first reading ${Date.now() - plugged} ms after the device reappeared`);
    assertExact(from);
    assert.ok(pi.log().includes('serial line back (lost 1 times since deploy)'));
  });

  test('the meter switched to standard mode (9600 Bd): garbage at 1200 Bd, auto reopens at 9600, readings exact', async () => {
    const switched = Date.now();
    const errorsBefore = errors().length;
    line.baud = 9600;
    mode = 'standard';
    await waitFor('the status shows the baud hunt', () =>
      statuses().some((s) => s.startsWith('trying 9600 Bd')),
    );
    const from = received.length;
    await waitFor(
      'standard readings',
      () => received.slice(from).filter((r) => r.source === 'tic-standard').length >= 3,
      30_000,
    );
    const first = received.slice(from).findIndex((r) => r.source === 'tic-standard');
    console.log(
      `# mode switch: first standard reading ${Date.now() - switched} ms after the meter switched; ` +
        `line garbled ${line.stats.garbled} bytes`,
    );
    assertExact(from + first);
    assert.ok(errors().length > errorsBefore, 'the garbage was counted as errors');
    assert.ok(pi.log().includes('reopening the serial port at 9600 Bd'));
    assert.ok(statuses().some((s) => s.startsWith('9600 Bd standard 021861348497')));
    const r = received[received.length - 1];
    assert.equal(typeof r.values.SINSTS, 'number');
    assert.ok(Math.abs(Date.parse(r.time) - Date.now()) < 60_000, 'standard readings carry the meter clock');
  });
});

/** The reading is that frame: the same labels (minus a corrupted one) with the same values, typed by the label table. */
function matches(r: Reading, f: SentFrame): boolean {
  if (r.source !== `tic-${f.mode}`) return false;
  const expected = f.groups.filter((g) => g.label !== f.corrupted);
  if (Object.keys(r.values).length !== expected.length) return false;
  return expected.every((g) => {
    const v = r.values[g.label];
    return labelSpec(f.mode, g.label).kind === 'int' ? v === Number(g.value) : v === g.value;
  });
}
