import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { BaudHunt } from '../../nodes/lib/tic/baud-hunt';

describe('BaudHunt: which baud a TIC line runs at', () => {
  test('auto starts at 1200 Bd and stays while groups pass their checksums', () => {
    const hunt = new BaudHunt('auto', 0);
    assert.equal(hunt.baud, 1200);
    assert.equal(hunt.observe(200, 3, 1000), null);
    assert.equal(hunt.locked, true);
    assert.equal(hunt.detectedAfterMs, 1000);
    assert.equal(hunt.observe(200, 0, 5500), null, 'a 4.5 s gap in valid groups is within the window');
  });

  test('bytes without one valid group for the window: the other baud, then back if that fails too', () => {
    const hunt = new BaudHunt('auto', 0, { windowMs: 5000, minBytes: 64 });
    assert.equal(hunt.observe(500, 0, 4999), null);
    assert.equal(hunt.observe(10, 0, 5000), 9600);
    assert.equal(hunt.locked, false);
    assert.equal(hunt.observe(500, 0, 9999), null, 'a new window starts at the switch');
    assert.equal(hunt.observe(10, 0, 10_000), 1200);
    assert.equal(hunt.switches, 2);
  });

  test('a silent line (meter off, adapter unplugged) is no reason to switch', () => {
    const hunt = new BaudHunt('auto', 0, { minBytes: 64 });
    assert.equal(hunt.observe(10, 0, 60_000), null);
    assert.equal(hunt.baud, 1200);
  });

  test('a line that goes bad after locking (Enedis switched the mode) is hunted again', () => {
    const hunt = new BaudHunt('auto', 0);
    hunt.observe(100, 2, 100);
    assert.equal(hunt.observe(1000, 0, 5200), 9600);
  });

  test('a fixed mode sets its own baud and never switches', () => {
    const hunt = new BaudHunt('standard', 0);
    assert.equal(hunt.baud, 9600);
    assert.equal(hunt.observe(10_000, 0, 60_000), null);
  });

  test('after a reopen the line gets a whole window again', () => {
    const hunt = new BaudHunt('auto', 0);
    hunt.observe(100, 0, 3000);
    hunt.reopened(4000);
    assert.equal(hunt.observe(1000, 0, 8000), null);
    assert.equal(hunt.observe(10, 0, 9000), 9600);
  });
});
