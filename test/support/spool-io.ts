import fs from 'node:fs';
import path from 'node:path';
import { nodeIo, type SpoolIo } from '../../nodes/lib/spool';

/** A write a spool made, as a power cut could leave it half done. */
export type SpoolOp =
  | { kind: 'write'; file: string; data: Buffer }
  | { kind: 'writeFile'; file: string; data: Buffer }
  | { kind: 'rename'; from: string; to: string }
  | { kind: 'unlink'; file: string }
  | { kind: 'truncate'; file: string; length: number };

/** node:fs, recording every change a spool makes to its folder (file names only), in order. */
export function recordingIo(log: SpoolOp[]): SpoolIo {
  const files = new Map<number, string>();
  return {
    ...nodeIo,
    openAppend(file) {
      const fd = nodeIo.openAppend(file);
      files.set(fd, path.basename(file));
      return fd;
    },
    write(fd, data, offset) {
      const n = nodeIo.write(fd, data, offset);
      log.push({ kind: 'write', file: files.get(fd)!, data: Buffer.from(data.subarray(offset, offset + n)) });
      return n;
    },
    writeFile(file, data, durable) {
      nodeIo.writeFile(file, data, durable);
      log.push({ kind: 'writeFile', file: path.basename(file), data: Buffer.from(data) });
    },
    rename(from, to) {
      nodeIo.rename(from, to);
      log.push({ kind: 'rename', from: path.basename(from), to: path.basename(to) });
    },
    unlink(file) {
      nodeIo.unlink(file);
      log.push({ kind: 'unlink', file: path.basename(file) });
    },
    truncate(file, length) {
      nodeIo.truncate(file, length);
      log.push({ kind: 'truncate', file: path.basename(file), length });
    },
  };
}

/** How the operation at the cut is left: not done, or its first `bytes` written and the rest NUL, garbage or absent. */
export interface Cut {
  readonly at: number;
  readonly bytes?: number;
  readonly tail?: 'absent' | 'nul' | 'garbage';
}

/** The folder as a power cut would leave it: every operation before `cut.at` done, that one partly. */
export function rebuild(log: readonly SpoolOp[], cut: Cut, dir: string, seed = 1): void {
  const files = new Map<string, Buffer>();
  let random = seed;
  const garbage = (n: number) =>
    Buffer.from(
      Array.from({ length: n }, () => (random = (random * 1103515245 + 12345) & 0x7fffffff) & 0xff),
    );
  const torn = (data: Buffer): Buffer => {
    const kept = data.subarray(0, cut.bytes ?? 0);
    const rest = data.length - kept.length;
    if (cut.tail === 'nul') return Buffer.concat([kept, Buffer.alloc(rest)]);
    if (cut.tail === 'garbage') return Buffer.concat([kept, garbage(rest)]);
    return kept;
  };
  for (let i = 0; i <= cut.at && i < log.length; i++) {
    const op = log[i];
    const partial = i === cut.at;
    if (partial && cut.bytes === undefined) break;
    switch (op.kind) {
      case 'write':
        files.set(
          op.file,
          Buffer.concat([files.get(op.file) ?? Buffer.alloc(0), partial ? torn(op.data) : op.data]),
        );
        break;
      case 'writeFile':
        files.set(op.file, partial ? torn(op.data) : op.data);
        break;
      case 'rename':
        if (partial) break; // a rename is atomic
        files.set(op.to, files.get(op.from)!);
        files.delete(op.from);
        break;
      case 'unlink':
        if (!partial) files.delete(op.file);
        break;
      case 'truncate':
        if (!partial) files.set(op.file, (files.get(op.file) ?? Buffer.alloc(0)).subarray(0, op.length));
        break;
    }
  }
  fs.mkdirSync(dir, { recursive: true });
  for (const [name, data] of files) fs.writeFileSync(path.join(dir, name), data);
}

/** node:fs with chosen operations failing as a full disk does. */
export function failingIo(failing: Set<'write' | 'writeFile' | 'rename' | 'unlink' | 'datasync'>): SpoolIo {
  const enospc = () => Object.assign(new Error('ENOSPC: no space left on device, write'), { code: 'ENOSPC' });
  return {
    ...nodeIo,
    write(fd, data, offset) {
      if (failing.has('write')) throw enospc();
      return nodeIo.write(fd, data, offset);
    },
    writeFile(file, data, durable) {
      if (failing.has('writeFile')) throw enospc();
      nodeIo.writeFile(file, data, durable);
    },
    rename(from, to) {
      if (failing.has('rename')) throw enospc();
      nodeIo.rename(from, to);
    },
    unlink(file) {
      if (failing.has('unlink')) throw Object.assign(new Error('EIO: i/o error, unlink'), { code: 'EIO' });
      nodeIo.unlink(file);
    },
    datasync(fd, done) {
      if (failing.has('datasync'))
        return done(Object.assign(new Error('EIO: i/o error, fdatasync'), { code: 'EIO' }));
      nodeIo.datasync(fd, done);
    },
  };
}
