/**
 * Standard-mode horodate `SAAMMJJhhmmss` (54E §6.2.1.1): French legal time, S = `H` winter (UTC+1),
 * `E` summer (UTC+2), lowercase when the meter clock is degraded, space when not applicable.
 */
export interface Horodate {
  /** The instant, ISO 8601 in UTC. */
  readonly time: string;
  readonly season: 'winter' | 'summer' | null;
  /** The meter clock has lost time and is not resynchronised yet: the instant may be wrong. */
  readonly degraded: boolean;
}

const HORODATE = /^([ HhEe])(\d{2})(\d{2})(\d{2})(\d{2})(\d{2})(\d{2})$/;

export function parseHorodate(text: string): Horodate | null {
  const m = HORODATE.exec(text);
  if (!m) return null;
  const [, s, yy, mo, dd, hh, mi, ss] = m as unknown as [
    string,
    string,
    string,
    string,
    string,
    string,
    string,
    string,
  ];
  const fields = [2000 + Number(yy), Number(mo), Number(dd), Number(hh), Number(mi), Number(ss)] as const;
  const [year, month, day, hour, minute, second] = fields;
  if (month < 1 || month > 12 || day < 1 || day > 31 || hour > 23 || minute > 59 || second > 59) return null;
  const localAsUtc = Date.UTC(year, month - 1, day, hour, minute, second);
  const upper = s.toUpperCase();
  const season = upper === 'H' ? 'winter' : upper === 'E' ? 'summer' : null;
  const offsetHours = season === 'winter' ? 1 : season === 'summer' ? 2 : parisOffsetHours(localAsUtc);
  return {
    time: new Date(localAsUtc - offsetHours * 3_600_000).toISOString(),
    season,
    degraded: s === 'h' || s === 'e',
  };
}

function parisOffsetHours(localAsUtc: number): 1 | 2 {
  return parisOffsetAt(localAsUtc - 3_600_000);
}

/** French legal time offset at a UTC instant. EU rule: summer time from the last Sunday of March to the
 * last Sunday of October, 01:00 UTC. */
export function parisOffsetAt(utcMs: number): 1 | 2 {
  const year = new Date(utcMs).getUTCFullYear();
  const lastSunday = (month: number) => {
    const d = new Date(Date.UTC(year, month + 1, 0));
    return Date.UTC(year, month, d.getUTCDate() - d.getUTCDay());
  };
  return utcMs >= lastSunday(2) + 3_600_000 && utcMs < lastSunday(9) + 3_600_000 ? 2 : 1;
}

/** The horodate a meter with a synchronised clock sends at `utcMs`. */
export function formatHorodate(utcMs: number): string {
  const offset = parisOffsetAt(utcMs);
  const d = new Date(utcMs + offset * 3_600_000);
  const two = (n: number) => String(n).padStart(2, '0');
  return `${offset === 2 ? 'E' : 'H'}${two(d.getUTCFullYear() % 100)}${two(d.getUTCMonth() + 1)}${two(d.getUTCDate())}${two(d.getUTCHours())}${two(d.getUTCMinutes())}${two(d.getUTCSeconds())}`;
}
