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

/** Sample a process over `seconds`: CPU seconds used and the peak RSS seen (sampled every 250 ms). */
export async function observe(pid: number, seconds: number): Promise<{ cpu: number; peakRss: number }> {
  const cpu0 = cpuSeconds(pid);
  let peakRss = rssMiB(pid);
  const end = Date.now() + seconds * 1000;
  while (Date.now() < end) {
    await new Promise((r) => setTimeout(r, 250));
    peakRss = Math.max(peakRss, rssMiB(pid));
  }
  return { cpu: cpuSeconds(pid) - cpu0, peakRss };
}
