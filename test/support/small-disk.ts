import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { tempDir } from './services';

/**
 * A real, size-limited filesystem (tmpfs) for full-disk tests. Mounting needs root: where it is refused the test is
 * skipped with the reason printed, and under CI=true it fails.
 */
export interface SmallDisk {
  readonly dir: string;
  /** Fill every free byte with a filler file, until the kernel answers ENOSPC. */
  fill(): void;
  /** Remove the filler: space is back. */
  free(): void;
  unmount(): void;
}

export function smallDiskSkip(): string | false {
  const probe = tempDir('tmpfs-probe');
  const mounted = spawnSync('mount', ['-t', 'tmpfs', '-o', 'size=64k', 'tmpfs', probe]);
  if (mounted.status === 0) {
    spawnSync('umount', [probe]);
    fs.rmSync(probe, { recursive: true, force: true });
    return false;
  }
  fs.rmSync(probe, { recursive: true, force: true });
  const reason = `mounting a tmpfs was refused (${String(mounted.stderr).trim() || `exit ${mounted.status}`}): run as root`;
  if (process.env.CI === 'true') throw new Error(`CI=true and ${reason}`);
  console.log(`# skipped: ${reason}`);
  return reason;
}

export function mountSmallDisk(sizeKiB: number): SmallDisk {
  const dir = tempDir('small-disk');
  const r = spawnSync('mount', ['-t', 'tmpfs', '-o', `size=${sizeKiB}k`, 'tmpfs', dir]);
  if (r.status !== 0) throw new Error(`mount tmpfs: ${String(r.stderr)}`);
  const filler = path.join(dir, 'filler');
  return {
    dir,
    fill() {
      const fd = fs.openSync(filler, 'a');
      try {
        for (let chunk = 64 * 1024; chunk >= 1;) {
          try {
            fs.writeSync(fd, Buffer.alloc(chunk));
          } catch (e) {
            if ((e as NodeJS.ErrnoException).code !== 'ENOSPC') throw e;
            chunk >>= 1;
          }
        }
      } finally {
        fs.closeSync(fd);
      }
    },
    free: () => fs.rmSync(filler, { force: true }),
    unmount() {
      spawnSync('umount', ['-l', dir]);
      fs.rmSync(dir, { recursive: true, force: true });
    },
  };
}
