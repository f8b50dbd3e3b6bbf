import { escapeKey, escapeMeasurement, escapeStringField } from './influx/line-protocol';

/**
 * A Pi's health, as it publishes it (retained, on `teleinfo/<pi-id>/health`) and as a server admits it: what its
 * spools hold and how old their oldest reading is, what went out and what servers acknowledged, decode errors by
 * kind, free disk, uptime and versions. Knows nothing of Node-RED: the Pi's teleinfo-health node gathers it, the
 * server's teleinfo-fleet node checks it before storing it or alerting on it.
 */

export interface SpoolHealth {
  /** Readings in the spools, not yet released (acknowledged by a server, or past the broker's overlap). */
  readonly depth: number;
  readonly bytes: number;
  /** Seconds since the oldest reading in the spools was taken; null when they are empty. */
  readonly oldestAgeS: number | null;
  readonly sent: number;
  /** Readings a server acknowledged (release "when a server stored it") or the broker did (broker release). */
  readonly acknowledged: number;
  /** Readings dropped because a spool was full. */
  readonly dropped: number;
  /** Damaged bytes moved aside. */
  readonly quarantinedBytes: number;
}

export interface PiHealth {
  readonly pi: string;
  /** When the Pi took it (ISO). */
  readonly at: string;
  readonly uptimeS: number;
  readonly versions: { readonly package: string; readonly nodeRed: string; readonly node: string };
  readonly spool: SpoolHealth;
  /** Decode and poll errors since the start, by kind (`checksum`, `format`, `http`…). */
  readonly errors: Readonly<Record<string, number>>;
  /** Free bytes on the userDir's file system, in MB; null when unknown. */
  readonly diskFreeMB: number | null;
  readonly diskTotalMB: number | null;
}

/** A health message larger than this is refused before it is parsed. */
export const HEALTH_MAX_BYTES = 4096;
/** Kinds of errors a Pi may report at most. */
const MAX_ERROR_KINDS = 16;
const KIND = /^[a-z][a-z0-9-]{0,31}$/;
const VERSION = /^[0-9A-Za-z.+-]{1,32}$/;
const PI_ID = /^[A-Za-z0-9_-]{1,64}$/;
/** A health taken further from the server's clock than this is refused: a Pi's clock, or a replay. */
export const HEALTH_WINDOW_MS = 7 * 86_400_000;
const FUTURE_MS = 10 * 60_000;

/** Add up the spools' and the decoders' parts (a Pi may have several of each). */
export function sumSpools(parts: readonly SpoolHealth[]): SpoolHealth {
  const ages = parts.map((p) => p.oldestAgeS).filter((a): a is number => a !== null);
  const sum = (k: keyof SpoolHealth) => parts.reduce((n, p) => n + (p[k] ?? 0), 0);
  return {
    depth: sum('depth'),
    bytes: sum('bytes'),
    oldestAgeS: ages.length > 0 ? Math.max(...ages) : null,
    sent: sum('sent'),
    acknowledged: sum('acknowledged'),
    dropped: sum('dropped'),
    quarantinedBytes: sum('quarantinedBytes'),
  };
}

export function sumErrors(parts: readonly Readonly<Record<string, number>>[]): Record<string, number> {
  const out: Record<string, number> = {};
  for (const p of parts) for (const [k, v] of Object.entries(p)) if (v > 0) out[k] = (out[k] ?? 0) + v;
  return out;
}

const count = (v: unknown): v is number =>
  typeof v === 'number' && Number.isInteger(v) && v >= 0 && v < 2 ** 53;
const size = (v: unknown): v is number => typeof v === 'number' && Number.isFinite(v) && v >= 0 && v < 1e12;

/**
 * A health message received from `pi` (the id in its topic) at `now`, checked: its size first, then every field
 * against its type and bounds, its id against the topic's, its time within the window. The health, or why not.
 */
export function admitHealth(pi: string, payload: unknown, now: number): PiHealth | string {
  if (!PI_ID.test(pi)) return 'a Pi id is 1 to 64 letters, digits, - or _';
  let value = payload;
  if (typeof value === 'string' || Buffer.isBuffer(value)) {
    if (value.length > HEALTH_MAX_BYTES) return `larger than ${HEALTH_MAX_BYTES} bytes`;
    try {
      value = JSON.parse(value.toString()) as unknown;
    } catch {
      return 'not JSON';
    }
  } else if (JSON.stringify(value ?? null).length > HEALTH_MAX_BYTES)
    return `larger than ${HEALTH_MAX_BYTES} bytes`;
  const h = value as Partial<Record<keyof PiHealth, unknown>> | null;
  if (typeof h !== 'object' || h === null || Array.isArray(h)) return 'not an object';
  if (h.pi !== pi) return `the health of "${String(h.pi).slice(0, 64)}" on the topic of ${pi}`;
  const at = typeof h.at === 'string' ? Date.parse(h.at) : NaN;
  if (!Number.isFinite(at) || at > now + FUTURE_MS || at < now - HEALTH_WINDOW_MS)
    return 'its time is missing or outside the last 7 days';
  if (!size(h.uptimeS)) return 'uptimeS is not a number of seconds';
  const v = h.versions as Record<string, unknown> | null;
  if (
    typeof v !== 'object' ||
    v === null ||
    !['package', 'nodeRed', 'node'].every((k) => VERSION.test(String(v[k])))
  )
    return 'versions are not package, nodeRed and node version strings';
  const s = h.spool as Record<string, unknown> | null;
  if (
    typeof s !== 'object' ||
    s === null ||
    !['depth', 'sent', 'acknowledged', 'dropped'].every((k) => count(s[k])) ||
    !size(s.bytes) ||
    !size(s.quarantinedBytes) ||
    !(s.oldestAgeS === null || size(s.oldestAgeS))
  )
    return 'spool is not depth, bytes, oldestAgeS, sent, acknowledged, dropped, quarantinedBytes';
  const e = h.errors as Record<string, unknown> | null;
  if (typeof e !== 'object' || e === null || Array.isArray(e)) return 'errors is not an object';
  const kinds = Object.keys(e);
  if (kinds.length > MAX_ERROR_KINDS || !kinds.every((k) => KIND.test(k) && count(e[k])))
    return `errors are at most ${MAX_ERROR_KINDS} kinds (lower-case names) of counts`;
  for (const k of ['diskFreeMB', 'diskTotalMB'] as const)
    if (!(h[k] === null || size(h[k]))) return `${k} is not a number of MB`;
  return {
    pi,
    at: new Date(at).toISOString(),
    uptimeS: h.uptimeS,
    versions: { package: String(v.package), nodeRed: String(v.nodeRed), node: String(v.node) },
    spool: {
      depth: s.depth as number,
      bytes: s.bytes,
      oldestAgeS: s.oldestAgeS,
      sent: s.sent as number,
      acknowledged: s.acknowledged as number,
      dropped: s.dropped as number,
      quarantinedBytes: s.quarantinedBytes,
    },
    errors: Object.fromEntries(kinds.map((k) => [k, e[k] as number])),
    diskFreeMB: h.diskFreeMB as number | null,
    diskTotalMB: h.diskTotalMB as number | null,
  };
}

/** An admitted health as one InfluxDB point of `measurement` (tag `pi`), at the Pi's time. */
export function healthLine(h: PiHealth, measurement = 'teleinfo_health'): string {
  const fields = [
    `uptime_s=${h.uptimeS}`,
    `spool_depth=${h.spool.depth}i`,
    `spool_bytes=${h.spool.bytes}`,
    // 0 when nothing waits: a missing field would leave last() on the backlog of before.
    `oldest_age_s=${h.spool.oldestAgeS ?? 0}`,
    `sent=${h.spool.sent}i`,
    `acknowledged=${h.spool.acknowledged}i`,
    `dropped=${h.spool.dropped}i`,
    `quarantined_bytes=${h.spool.quarantinedBytes}`,
    `errors=${Object.values(h.errors).reduce((n, c) => n + c, 0)}i`,
    ...Object.entries(h.errors).map(([k, c]) => `${escapeKey(`errors_${k}`)}=${c}i`),
    ...(h.diskFreeMB === null ? [] : [`disk_free_mb=${h.diskFreeMB}`]),
    ...(h.diskTotalMB === null ? [] : [`disk_total_mb=${h.diskTotalMB}`]),
    `version=${escapeStringField(h.versions.package)}`,
    `node_red=${escapeStringField(h.versions.nodeRed)}`,
  ];
  return `${escapeMeasurement(measurement)},pi=${escapeKey(h.pi)} ${fields.join(',')} ${Date.parse(h.at)}`;
}

/** Compare two dotted versions numerically (`0.10.0` > `0.9.2`); a pre-release sorts before its release. */
export function compareVersions(a: string, b: string): number {
  const parse = (v: string) => {
    const [main, pre] = v.split(/-(.*)/, 2);
    return { parts: main.split('.').map((p) => Number.parseInt(p, 10) || 0), pre: pre ?? null };
  };
  const x = parse(a);
  const y = parse(b);
  for (let i = 0; i < Math.max(x.parts.length, y.parts.length); i++) {
    const d = (x.parts[i] ?? 0) - (y.parts[i] ?? 0);
    if (d !== 0) return Math.sign(d);
  }
  if (x.pre === y.pre) return 0;
  if (x.pre === null) return 1;
  if (y.pre === null) return -1;
  return x.pre < y.pre ? -1 : 1;
}
