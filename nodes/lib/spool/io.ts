import fs from 'node:fs';
import path from 'node:path';

/**
 * The file operations a spool makes, in one place: node:fs here; the crash-consistency test records them to
 * rebuild the files as a power cut at any moment would leave them.
 */
export interface SpoolIo {
  mkdir(dir: string): void;
  readdir(dir: string): string[];
  /** The whole file, or null if it does not exist. */
  readFile(file: string): Buffer | null;
  readAt(file: string, buf: Buffer, position: number): number;
  /** A file's size in bytes, 0 if it does not exist. */
  size(file: string): number;
  openAppend(file: string): number;
  /** Bytes written; fewer than asked is a short write (the caller writes the rest). */
  write(fd: number, data: Buffer, offset: number): number;
  /** Flush a file's data to the device, off the event loop. */
  datasync(fd: number, done: (err: Error | null) => void): void;
  /** The same, blocking: at close, when the process may be about to exit. */
  datasyncNow(fd: number): void;
  close(fd: number): void;
  truncate(file: string, length: number): void;
  /** Write a whole small file; `durable` also flushes it to the device before returning. */
  writeFile(file: string, data: Buffer | string, durable: boolean): void;
  rename(from: string, to: string): void;
  unlink(file: string): void;
  /** Make created, renamed and removed names of a directory survive a power cut. */
  syncDir(dir: string): void;
}

export const nodeIo: SpoolIo = {
  mkdir: (dir) => void fs.mkdirSync(dir, { recursive: true }),
  readdir: (dir) => fs.readdirSync(dir),
  readFile(file) {
    try {
      return fs.readFileSync(file);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') return null;
      throw e;
    }
  },
  readAt(file, buf, position) {
    const fd = fs.openSync(file, 'r');
    try {
      return fs.readSync(fd, buf, 0, buf.length, position);
    } finally {
      fs.closeSync(fd);
    }
  },
  size(file) {
    try {
      return fs.statSync(file).size;
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') return 0;
      throw e;
    }
  },
  openAppend: (file) => fs.openSync(file, 'a'),
  write: (fd, data, offset) => fs.writeSync(fd, data, offset, data.length - offset),
  datasync: (fd, done) => fs.fdatasync(fd, (err) => done(err)),
  datasyncNow: (fd) => fs.fdatasyncSync(fd),
  close: (fd) => fs.closeSync(fd),
  truncate: (file, length) => fs.truncateSync(file, length),
  writeFile(file, data, durable) {
    const fd = fs.openSync(file, 'w');
    try {
      const bytes = typeof data === 'string' ? Buffer.from(data) : data;
      for (let at = 0; at < bytes.length;) at += fs.writeSync(fd, bytes, at, bytes.length - at);
      if (durable) fs.fsyncSync(fd);
    } finally {
      fs.closeSync(fd);
    }
  },
  rename: (from, to) => fs.renameSync(from, to),
  unlink: (file) => fs.rmSync(file, { force: true }),
  syncDir(dir) {
    const fd = fs.openSync(dir, 'r');
    try {
      fs.fsyncSync(fd);
    } finally {
      fs.closeSync(fd);
    }
  },
};

/** A spool's folder for a node id: ids are not trusted to be file names (`.`, `..`, slashes). */
export function spoolDir(root: string, id: string): string {
  const name = id.replace(/[^\w.-]/g, '_');
  return path.join(root, /^\.*$/.test(name) ? `_${name.replace(/\./g, '_')}` : name);
}
