/**
 * Calendar boundaries in Europe/Paris, where a meter's days and months are. France's offset is always a whole
 * number of hours, so an hour of Paris is an hour of UTC; a day is 23, 24 or 25 of them.
 */

export const HOUR_MS = 3_600_000;

const parts = new Intl.DateTimeFormat('en-GB', {
  timeZone: 'Europe/Paris',
  year: 'numeric',
  month: '2-digit',
  day: '2-digit',
  hour: '2-digit',
  hourCycle: 'h23',
});

/** Paris's calendar date and hour at `ms`. */
function parisParts(ms: number): { year: number; month: number; day: number; hour: number } {
  const p: Record<string, number> = {};
  for (const { type, value } of parts.formatToParts(ms)) p[type] = Number(value);
  return { year: p.year, month: p.month, day: p.day, hour: p.hour };
}

/** The UTC hour that starts at or before `ms`. */
export function hourStart(ms: number): number {
  return Math.floor(ms / HOUR_MS) * HOUR_MS;
}

/** The instant Paris's day holding `ms` begins: midnight there (the hours back to 0 h, whatever the offset). */
export function parisDayStart(ms: number): number {
  const start = hourStart(ms) - parisParts(ms).hour * HOUR_MS;
  // On a day the clocks change, the hours back to midnight were one more or one fewer than the hour of the clock.
  const hour = parisParts(start).hour;
  return hour === 0 ? start : hour === 23 ? start + HOUR_MS : start - HOUR_MS;
}

/** The instant the next Paris day begins. */
export function parisNextDay(ms: number): number {
  // 25 hours after midnight is always within the next day (a day has 23 to 25 hours).
  return parisDayStart(parisDayStart(ms) + 25 * HOUR_MS);
}

/** The instant Paris's month holding `ms` begins. */
export function parisMonthStart(ms: number): number {
  let day = parisDayStart(ms);
  // Back one day at a time: at most 30 steps, and only for a month a rollup touched.
  while (parisParts(day).day > 1) day = parisDayStart(day - HOUR_MS);
  return day;
}

/** The instant the next Paris month begins. */
export function parisNextMonth(ms: number): number {
  return parisMonthStart(parisMonthStart(ms) + 32 * 24 * HOUR_MS);
}
