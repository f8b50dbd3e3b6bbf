import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { PassThrough, type Readable, Writable } from 'node:stream';
import { finished } from 'node:stream/promises';
import { shQuote, type Container } from './container';
import { EXIT, frame, SOCKET, STDERR, STDOUT } from './docker-cli-client';
import type { ComposeProject, DockerHost } from './docker-host';
import { tempDir } from './services';

/**
 * A stand-in for the docker CLI, for the scripts a user runs on a Docker host (docker/backup.sh, restore.sh), with
 * no Docker engine here. `docker` on the PATH runs docker-cli-client.ts, which hands its arguments, working
 * directory and COMPOSE_FILE to the test serving it (serveDockerCli) over a unix socket, streams its stdin there,
 * and writes what comes back to its stdout and stderr, byte for byte, then exits with the status the test gives.
 * The test runs `docker compose ...` on a DockerHost (composeCommand).
 */

export interface DockerCall {
  readonly argv: string[];
  readonly cwd: string;
  readonly composeFile?: string;
  readonly stdin: Readable;
  readonly stdout: Writable;
  readonly stderr: Writable;
}

/** Serves the stand-in: `env` puts it first on the PATH of the scripts given it. */
export async function serveDockerCli(
  handle: (call: DockerCall) => Promise<number>,
): Promise<{ env: Record<string, string>; close(): Promise<void> }> {
  const dir = tempDir('docker-cli');
  const socketPath = path.join(dir, 'docker.sock');
  const bin = path.join(dir, 'bin');
  fs.mkdirSync(bin);
  fs.writeFileSync(
    path.join(bin, 'docker'),
    `#!/bin/sh\nexec ${shQuote(process.execPath)} ${shQuote(path.join(__dirname, 'docker-cli-client.js'))} "$@"\n`,
    { mode: 0o755 },
  );
  const server = net.createServer({ allowHalfOpen: true }, (socket) => {
    const stdin = new PassThrough();
    let header: Buffer | undefined = Buffer.alloc(0);
    socket.on('end', () => stdin.end());
    socket.on('error', () => stdin.destroy());
    socket.on('data', (data: Buffer) => {
      if (!header) {
        stdin.write(data);
        return;
      }
      header = Buffer.concat([header, data]);
      const end = header.indexOf(10);
      if (end < 0) return;
      const call = JSON.parse(header.subarray(0, end).toString()) as Pick<
        DockerCall,
        'argv' | 'cwd' | 'composeFile'
      >;
      if (end + 1 < header.length) stdin.write(header.subarray(end + 1));
      header = undefined;
      const channel = (n: number) =>
        new Writable({ write: (chunk: Buffer, _encoding, done) => void socket.write(frame(n, chunk), done) });
      const stdout = channel(STDOUT);
      const stderr = channel(STDERR);
      void handle({ ...call, stdin, stdout, stderr })
        .catch((err: Error) => {
          stderr.write(`docker (stand-in): ${err.stack}\n`);
          return 125;
        })
        .then(async (status) => {
          for (const w of [stdout, stderr]) {
            if (!w.writableEnded) w.end();
            await finished(w);
          }
          const code = Buffer.alloc(4);
          code.writeInt32BE(status);
          socket.end(frame(EXIT, code));
        });
    });
  });
  await new Promise<void>((resolve) => server.listen(socketPath, resolve));
  return {
    env: { PATH: `${bin}:${process.env.PATH}`, [SOCKET]: socketPath },
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}

/** Streams a container's or an exec's stdio to a call's, until it exits and its output is all written. */
async function attach(
  call: DockerCall,
  stdio: { stdin: Writable; stdout: Readable; stderr: Readable },
  exited: Promise<number | null>,
): Promise<number> {
  stdio.stdin.on('error', () => undefined); // a command that does not read its input
  call.stdin.pipe(stdio.stdin);
  stdio.stdout.pipe(call.stdout, { end: false });
  stdio.stderr.pipe(call.stderr, { end: false });
  const [status] = await Promise.all([exited, finished(stdio.stdout), finished(stdio.stderr)]);
  call.stdin.unpipe(stdio.stdin);
  return status ?? 128;
}

/**
 * `docker compose` as the scripts use it, on a DockerHost, the project read again at every call (compose's files in
 * the call's directory, or its COMPOSE_FILE, with the .env there): config --services, ps --services --status running,
 * stop, start, up -d [--force-recreate], exec -T, run --rm --no-deps -T [--entrypoint X]. `runnable` says which
 * services `up` may start (one with no server here is left out, as the deployment test leaves it out).
 */
export function composeCommand(
  host: DockerHost,
  projectOf: (files: string[], envFile: string) => ComposeProject,
  runnable: (service: string) => boolean = () => true,
): (call: DockerCall) => Promise<number> {
  return async (call) => {
    const [compose, sub, ...rest] = call.argv;
    const fail = (message: string) => {
      call.stderr.write(`docker (stand-in): ${message}\n`);
      return 125;
    };
    if (compose !== 'compose') return fail(`only docker compose here, not ${call.argv.join(' ')}`);
    const files = (call.composeFile ?? 'docker-compose.yml').split(':').map((f) => path.resolve(call.cwd, f));
    const project = projectOf(files, path.join(call.cwd, '.env'));
    host.configure(project);
    const flags = new Set<string>();
    let entrypoint: string[] | undefined;
    while (rest[0]?.startsWith('-')) {
      const flag = rest.shift()!;
      if (flag === '--entrypoint') entrypoint = [rest.shift()!];
      else if (flag === '--status') flags.add(`--status=${rest.shift()}`);
      else flags.add(flag);
    }
    const known = (allowed: string[]) => [...flags].every((f) => allowed.includes(f));
    const services = Object.keys(project.services);
    for (const s of sub === 'exec' || sub === 'run' ? rest.slice(0, 1) : rest)
      if (!services.includes(s)) return fail(`no such service: ${s}`);
    switch (sub) {
      case 'config':
        if (!known(['--services'])) break;
        call.stdout.write(services.map((s) => `${s}\n`).join(''));
        return 0;
      case 'ps':
        if (!known(['--services', '--status=running'])) break;
        call.stdout.write(
          host
            .runningServices()
            .map((s) => `${s}\n`)
            .join(''),
        );
        return 0;
      case 'stop':
        if (!known([])) break;
        for (const s of rest.length > 0 ? rest : services) await host.stop(s);
        return 0;
      case 'start':
        if (!known([])) break;
        for (const s of rest.length > 0 ? rest : services) host.start(s);
        return 0;
      case 'up':
        if (!flags.has('-d') || !known(['-d', '--force-recreate'])) break;
        await host.up(project, (rest.length > 0 ? rest : services).filter(runnable), {
          forceRecreate: flags.has('--force-recreate'),
        });
        return 0;
      case 'exec': {
        if (!known(['-T'])) break;
        const [service, ...command] = rest;
        let container: Container;
        try {
          container = host.container(service);
        } catch {
          return fail(`service "${service}" is not running`);
        }
        if (!container.running()) return fail(`service "${service}" is not running`);
        const p = container.spawn(command);
        const exited = new Promise<number | null>((resolve) => p.once('exit', resolve));
        return attach(call, p, exited);
      }
      case 'run': {
        if (!known(['--rm', '--no-deps', '-T'])) break;
        const [service, ...command] = rest;
        const container = host.run(service, command, entrypoint);
        return attach(call, container.stdio!, container.wait());
      }
    }
    return fail(`not here: docker ${call.argv.join(' ')}`);
  };
}
