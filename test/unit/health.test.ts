import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { AlertEngine, type AlertOptions } from '../../nodes/lib/alerts';
import {
  admitHealth,
  compareVersions,
  healthLine,
  HEALTH_MAX_BYTES,
  type PiHealth,
} from '../../nodes/lib/health';

const NOW = Date.parse('2026-12-06T12:00:00Z');

function health(over: Partial<Record<keyof PiHealth, unknown>> = {}): Record<string, unknown> {
  return {
    pi: 'pi-1',
    at: new Date(NOW).toISOString(),
    uptimeS: 3600,
    versions: { package: '0.3.0', nodeRed: '4.1.2', node: '20.20.2' },
    spool: {
      depth: 12,
      bytes: 4096,
      oldestAgeS: 30,
      sent: 100,
      acknowledged: 88,
      dropped: 0,
      quarantinedBytes: 0,
    },
    errors: { checksum: 2, poll: 1 },
    diskFreeMB: 900,
    diskTotalMB: 14_000,
    ...over,
  };
}

describe("a Pi's health, as a server admits it", () => {
  test('a good one, as an object or as its JSON text', () => {
    const h = admitHealth('pi-1', health(), NOW);
    assert.equal(typeof h, 'object');
    assert.deepEqual(admitHealth('pi-1', JSON.stringify(health()), NOW), h);
    assert.deepEqual(admitHealth('pi-1', Buffer.from(JSON.stringify(health())), NOW), h);
  });

  test('what a hostile or broken Pi sends is refused, with the reason', () => {
    const cases: [string, unknown, RegExp][] = [
      ['pi-1', 'x'.repeat(HEALTH_MAX_BYTES + 1), /larger than 4096/],
      ['pi-1', { ...health(), padding: 'x'.repeat(HEALTH_MAX_BYTES) }, /larger than 4096/],
      ['pi-1', '{"pi":', /not JSON/],
      ['pi-1', [health()], /not an object/],
      ['pi-1', health({ pi: 'pi-2' }), /of "pi-2" on the topic of pi-1/],
      ['pi 1', health({ pi: 'pi 1' }), /Pi id/],
      ['pi-1', health({ at: '2026-11-01T00:00:00Z' }), /outside the last 7 days/],
      ['pi-1', health({ at: '2026-12-06T13:00:00Z' }), /outside/],
      ['pi-1', health({ uptimeS: -1 }), /uptimeS/],
      ['pi-1', health({ versions: { package: '0.3.0"; DROP', nodeRed: '4', node: '20' } }), /versions/],
      ['pi-1', health({ spool: { ...(health().spool as object), depth: 1.5 } }), /spool/],
      ['pi-1', health({ spool: { ...(health().spool as object), sent: '100' } }), /spool/],
      ['pi-1', health({ errors: { 'Bad Kind': 1 } }), /kinds/],
      [
        'pi-1',
        health({ errors: Object.fromEntries(Array.from({ length: 17 }, (_, i) => [`k${i}`, 1])) }),
        /16 kinds/,
      ],
      ['pi-1', health({ diskFreeMB: 'lots' }), /diskFreeMB/],
    ];
    for (const [pi, payload, reason] of cases) {
      const r = admitHealth(pi, payload, NOW);
      assert.equal(typeof r, 'string', `${reason}: refused`);
      assert.match(r as string, reason);
    }
  });

  test('as a point: escaped, at the Pi time, every error kind a field', () => {
    const h = admitHealth('pi-1', health(), NOW) as PiHealth;
    assert.equal(
      healthLine(h),
      'teleinfo_health,pi=pi-1 uptime_s=3600,spool_depth=12i,spool_bytes=4096,oldest_age_s=30,sent=100i,acknowledged=88i,dropped=0i,quarantined_bytes=0,errors=3i,errors_checksum=2i,errors_poll=1i,disk_free_mb=900,disk_total_mb=14000,version="0.3.0",node_red="4.1.2" ' +
        String(NOW),
    );
  });

  test('versions compare by number, a pre-release before its release', () => {
    assert.equal(compareVersions('0.10.0', '0.9.2'), 1);
    assert.equal(compareVersions('0.3.0', '0.3.0'), 0);
    assert.equal(compareVersions('0.3.0-rc.1', '0.3.0'), -1);
    assert.equal(compareVersions('0.2.9', '0.3'), -1);
  });
});

describe('alerts on a Pi health', () => {
  const options: AlertOptions = {
    highConsumption: null,
    overrun: false,
    silenceMs: null,
    index: false,
    tempo: null,
    ejp: false,
    raiseAfterMs: 0,
    clearAfterMs: 0,
    reminderMs: 0,
    backlogMs: 30 * 60_000,
    diskPercent: 10,
    version: '0.4.0',
  };
  const at = (minutes: number, over: Partial<Record<keyof PiHealth, unknown>>) =>
    admitHealth(
      'pi-1',
      health({ at: new Date(NOW + minutes * 60_000).toISOString(), ...over }),
      NOW + minutes * 60_000,
    ) as PiHealth;
  const spool = (oldestAgeS: number | null) => ({ ...(health().spool as object), oldestAgeS });

  test('a backlog raises once when it gets older than the threshold, and clears once when it drains', () => {
    const e = new AlertEngine({ ...options, diskPercent: null, version: null });
    const events = [0, 10, 20, 31, 40, 50, 51, 60].flatMap((m, i) =>
      e.health(at(m, { spool: spool(i < 6 ? m * 60 : null) }), NOW + m * 60_000),
    );
    assert.deepEqual(
      events.map((x) => `${x.rule} ${x.state} ${x.value}`),
      ['backlog raised 31', 'backlog cleared 50'],
    );
  });

  test('a disk nearly full, and a Pi older than the server', () => {
    const e = new AlertEngine(options);
    const events = e.health(
      at(0, { diskFreeMB: 700, versions: { package: '0.3.0', nodeRed: '4', node: '20' } }),
      NOW,
    );
    assert.deepEqual(
      events.map((x) => `${x.rule} ${x.state} ${x.value} ${x.threshold}`),
      ['disk raised 5 10', 'version raised 0.3.0 0.4.0'],
    );
    const later = e.health(
      at(5, { versions: { package: '0.4.0', nodeRed: '4', node: '20' } }),
      NOW + 5 * 60_000,
    );
    assert.deepEqual(
      later.map((x) => `${x.rule} ${x.state}`),
      ['version cleared'],
    );
  });
});
