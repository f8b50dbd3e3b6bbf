import fs from 'node:fs';

/** CPU seconds (user + system) and resident memory of a process, read from /proc (Linux). */
export function cpuSeconds(pid: number): number {
  const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  // utime and stime are fields 14 and 15 of stat, 12 and 13 after the command name.
  return (Number(fields[11]) + Number(fields[12])) / 100;
}

export function rssMiB(pid: number): number {
  const m = /VmRSS:\s+(\d+) kB/.exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m ? Number(m[1]) / 1024 : NaN;
}

/**
 * Sample a process every 250 ms for `seconds`, or until `until` settles: CPU seconds used, the peak and last RSS,
 * and how long it was watched.
 */
export async function observe(
  pid: number,
  seconds: number,
  until?: Promise<unknown>,
): Promise<{ cpu: number; peakRss: number; lastRss: number; seconds: number }> {
  const cpu0 = cpuSeconds(pid);
  const start = Date.now();
  let peakRss = rssMiB(pid);
  let done = false;
  void until?.then(
    () => (done = true),
    () => (done = true),
  );
  while (!done && Date.now() - start < seconds * 1000) {
    await new Promise((r) => setTimeout(r, 250));
    peakRss = Math.max(peakRss, rssMiB(pid));
  }
  return { cpu: cpuSeconds(pid) - cpu0, peakRss, lastRss: rssMiB(pid), seconds: (Date.now() - start) / 1000 };
}
