import { spawn, spawnSync, type ChildProcess, type ChildProcessWithoutNullStreams } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import type { Readable, Writable } from 'node:stream';
import { tempDir } from './services';

/**
 * A service run the way its container runs it, with no Docker engine: in a mount namespace of its own whose root is
 * a folder made for it (the host's /usr and /etc seen through an overlay that holds the image's own files there,
 * the image's other folders, the compose file's bind mounts and volumes at their container paths), as the image's
 * user, with only the environment Docker gives it, in a network namespace of its own on a bridge (compose's network)
 * or on the host's network. A Debian package stands for the image's program (mosquitto, influxd, node): where the
 * two differ, the image's description (test/support/images.ts) says so.
 */

export interface ImageUser {
  readonly uid: number;
  readonly gid: number;
  readonly home: string;
}

/** What an image puts in its containers. */
export interface Image {
  readonly name: string;
  readonly user: ImageUser;
  readonly workdir: string;
  readonly entrypoint: string[];
  readonly cmd: string[];
  readonly env: Record<string, string>;
  /** The image's own files and folders, made in a new container's root. */
  layer(root: ContainerRoot): void;
  /** Folders of the image that are a host's folder here (a program's installed modules), mounted read-only. */
  readonly mounts?: Mount[];
  /** What Docker copies into a new named volume mounted at `target`: the image's content there. */
  volumeContent?(target: string, volume: string): void;
}

export interface Mount {
  readonly source: string;
  readonly target: string;
  readonly readonly?: boolean;
}

export interface ContainerSpec {
  readonly name: string;
  readonly image: Image;
  /** Compose's entrypoint and command, where it sets them: an entrypoint clears the image's command. */
  readonly entrypoint?: string[];
  readonly command?: string[];
  readonly environment?: Record<string, string>;
  readonly mounts?: Mount[];
  /** Host devices, as `host:container`. */
  readonly devices?: string[];
  /** Extra groups (compose's group_add), by gid. */
  readonly groups?: number[];
  /** Its place on a bridge; the host's network without one. */
  readonly network?: { netns: string; hosts: string };
  /** Where what it prints goes (appended): container.log in its folder by default. */
  readonly log?: string;
  /** Its stdin, stdout and stderr are pipes to the caller (`docker run -i`), not a log. */
  readonly attached?: boolean;
}

/** Where a container's files go: the path it has in the container, made in its root or its overlays. */
export class ContainerRoot {
  readonly root: string;
  constructor(readonly dir: string) {
    this.root = path.join(dir, 'root');
    for (const d of ['usr-upper', 'usr-work', 'etc-upper', 'etc-work']) fs.mkdirSync(path.join(dir, d));
    for (const d of ['usr', 'etc', 'proc', 'dev', 'run', 'var', 'root', 'tmp'])
      fs.mkdirSync(path.join(this.root, d), { recursive: true });
    fs.chmodSync(this.root, 0o755);
    fs.chmodSync(path.join(this.root, 'tmp'), 0o1777);
    fs.chmodSync(path.join(this.root, 'root'), 0o700);
    // Debian's merged /usr, as most images have it.
    for (const l of ['bin', 'sbin', 'lib', 'lib64']) fs.symlinkSync(`usr/${l}`, path.join(this.root, l));
  }

  /** The host path of a container path: /usr and /etc in their overlay's upper layer. */
  hostPath(containerPath: string): string {
    const [, top, ...rest] = containerPath.split('/');
    if (top === 'usr' || top === 'etc') return path.join(this.dir, `${top}-upper`, ...rest);
    return path.join(this.root, top, ...rest);
  }

  folder(containerPath: string, owner?: { uid: number; gid: number }, mode = 0o755): void {
    const at = this.hostPath(containerPath);
    fs.mkdirSync(at, { recursive: true });
    fs.chmodSync(at, mode);
    if (owner) fs.chownSync(at, owner.uid, owner.gid);
  }

  file(containerPath: string, content: string, owner?: { uid: number; gid: number }, mode = 0o644): void {
    const at = this.hostPath(containerPath);
    fs.mkdirSync(path.dirname(at), { recursive: true });
    fs.writeFileSync(at, content, { mode });
    fs.chmodSync(at, mode);
    if (owner) fs.chownSync(at, owner.uid, owner.gid);
  }

  /** A file of the image that the host has elsewhere (a plugin at another path). */
  link(containerPath: string, hostTarget: string): void {
    const at = this.hostPath(containerPath);
    fs.mkdirSync(path.dirname(at), { recursive: true });
    fs.symlinkSync(hostTarget, at);
  }
}

/** Single quotes for sh. */
export const shQuote = (s: string) => `'${s.replace(/'/g, `'\\''`)}'`;

export interface Container {
  readonly name: string;
  readonly pid: number;
  readonly dir: string;
  /** What it printed, stdout and stderr. */
  logs(): string;
  /** Whether it still runs. */
  running(): boolean;
  /** Its exit, with the entry point's status. */
  wait(): Promise<number | null>;
  /** Its stdin, stdout and stderr, when it was started attached. */
  readonly stdio?: { stdin: Writable; stdout: Readable; stderr: Readable };
  /** A command in the running container, as `docker exec` runs it (its namespaces, root and user). */
  exec(command: string[], options?: { input?: string; timeoutMs?: number }): Promise<ExecResult>;
  /** The same, with its stdin, stdout and stderr as streams (`docker exec -i`, byte for byte). */
  spawn(command: string[]): ChildProcessWithoutNullStreams;
  /** `docker stop`: the signal, then SIGKILL after 10 s. */
  stop(signal?: NodeJS.Signals): Promise<void>;
}

export interface ExecResult {
  readonly status: number | null;
  readonly stdout: string;
  readonly stderr: string;
}

export function startContainer(spec: ContainerSpec): Container {
  const { image } = spec;
  const dir = tempDir(`container-${spec.name}`);
  const root = new ContainerRoot(dir);
  image.layer(root);
  if (spec.network) root.file('/etc/hosts', spec.network.hosts);
  const R = root.root;
  const overlay = (top: string) =>
    `mount -t overlay overlay -o lowerdir=/${top},upperdir=${shQuote(path.join(dir, `${top}-upper`))},workdir=${shQuote(path.join(dir, `${top}-work`))} ${shQuote(`${R}/${top}`)}`;
  const script: string[] = [
    'set -e',
    overlay('usr'),
    overlay('etc'),
    `mount --rbind /proc ${shQuote(`${R}/proc`)}`,
    `mount -t tmpfs -o mode=755 tmpfs ${shQuote(`${R}/dev`)}`,
    ...['null', 'zero', 'full', 'random', 'urandom', 'tty'].map(
      (d) => `touch ${shQuote(`${R}/dev/${d}`)} && mount --bind /dev/${d} ${shQuote(`${R}/dev/${d}`)}`,
    ),
    `ln -s /proc/self/fd ${shQuote(`${R}/dev/fd`)}`,
    ...['stdin', 'stdout', 'stderr'].map((s, i) => `ln -s /proc/self/fd/${i} ${shQuote(`${R}/dev/${s}`)}`),
  ];
  const bind = (source: string, target: string, readonly: boolean) => {
    const at = shQuote(`${R}${target}`);
    const isDir = fs.statSync(source).isDirectory();
    script.push(
      isDir ? `mkdir -p ${at}` : `mkdir -p "$(dirname ${at})" && { [ -e ${at} ] || touch ${at}; }`,
      `mount --bind ${shQuote(source)} ${at}`,
      ...(readonly ? [`mount -o remount,bind,ro ${at}`] : []),
    );
  };
  for (const m of [...(image.mounts ?? []), ...(spec.mounts ?? [])]) {
    // Docker makes a missing bind source a folder.
    if (!fs.existsSync(m.source)) fs.mkdirSync(m.source, { recursive: true });
    bind(m.source, m.target, m.readonly ?? false);
  }
  for (const d of spec.devices ?? []) {
    const [source, target = source] = d.split(':');
    bind(source, target, false);
  }
  const command = [
    ...(spec.entrypoint ?? image.entrypoint),
    ...(spec.command ?? (spec.entrypoint ? [] : image.cmd)),
  ];
  if (command.length === 0) throw new Error(`${spec.name}: no command`);
  const user = userArgs(image.user, spec.groups);
  script.push(
    `exec chroot ${shQuote(R)} ${user.map(shQuote).join(' ')} /usr/bin/env -C ${shQuote(image.workdir)} -- ${command.map(shQuote).join(' ')}`,
  );
  const env = {
    PATH: '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin',
    HOSTNAME: spec.name,
    HOME: image.user.home,
    ...image.env,
    ...spec.environment,
  };
  const logFile = spec.log ?? path.join(dir, 'container.log');
  const log = fs.openSync(logFile, 'a');
  const logStart = fs.fstatSync(log).size;
  const stdio = spec.attached ? (['pipe', 'pipe', 'pipe'] as const) : (['ignore', log, log] as const);
  const namespaces = [
    '/usr/bin/unshare',
    '--mount',
    '--propagation',
    'private',
    '/bin/sh',
    '-c',
    script.join('\n'),
  ];
  const child: ChildProcess = spawn(
    spec.network ? '/usr/sbin/ip' : namespaces[0],
    spec.network ? ['netns', 'exec', spec.network.netns, ...namespaces] : namespaces.slice(1),
    { stdio: [...stdio], env },
  );
  fs.closeSync(log);
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  const running = () => child.exitCode === null && child.signalCode === null;
  const spawnIn = (cmd: string[]) =>
    spawn('/usr/bin/nsenter', ['-t', String(child.pid), '-m', '-n', '-r', '-w', ...user, ...cmd], {
      env,
      stdio: ['pipe', 'pipe', 'pipe'],
    });
  return {
    name: spec.name,
    pid: child.pid as number,
    dir,
    logs: () => fs.readFileSync(logFile, 'utf8').slice(logStart),
    running,
    wait: () => exited,
    stdio: spec.attached
      ? { stdin: child.stdin as Writable, stdout: child.stdout as Readable, stderr: child.stderr as Readable }
      : undefined,
    spawn: spawnIn,
    exec(cmd, options = {}) {
      return new Promise<ExecResult>((resolve) => {
        const p = spawnIn(cmd);
        let stdout = '';
        let stderr = '';
        p.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
        p.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
        const timer = setTimeout(() => p.kill('SIGKILL'), options.timeoutMs ?? 30_000);
        p.on('close', (status) => {
          clearTimeout(timer);
          resolve({ status, stdout, stderr });
        });
        p.stdin.end(options.input ?? '');
      });
    },
    async stop(signal = 'SIGTERM') {
      if (running()) {
        process.kill(child.pid as number, signal);
        const timer = setTimeout(() => running() && child.kill('SIGKILL'), 10_000);
        await exited;
        clearTimeout(timer);
      }
    },
  };
}

/** setpriv's arguments for the image's user, with compose's extra groups. */
function userArgs(user: ImageUser, groups: number[] = []): string[] {
  return [
    '/usr/bin/setpriv',
    `--reuid=${user.uid}`,
    `--regid=${user.gid}`,
    groups.length > 0 ? `--groups=${groups.join(',')}` : '--clear-groups',
  ];
}

/** A bridge with a network namespace per container: compose's network, the containers' names in their hosts. */
export class Bridge {
  private readonly id = crypto.randomBytes(2).toString('hex');
  private readonly subnet = `10.${100 + crypto.randomInt(100)}.${crypto.randomInt(250)}`;
  private readonly bridge = `tbr${this.id}`;
  private readonly members = new Map<string, { netns: string; ip: string }>();
  readonly hostIp = `${this.subnet}.1`;

  constructor() {
    run('ip', ['link', 'add', this.bridge, 'type', 'bridge']);
    run('ip', ['addr', 'add', `${this.hostIp}/24`, 'dev', this.bridge]);
    run('ip', ['link', 'set', this.bridge, 'up']);
  }

  /** A network namespace on the bridge for `name` (the same one again for a container that restarts). */
  attach(name: string): { netns: string; ip: string } {
    const known = this.members.get(name);
    if (known) return known;
    const n = this.members.size + 2;
    const netns = `teleinfo-${this.id}-${name}`;
    const veth = `tv${this.id}${n}`;
    run('ip', ['netns', 'add', netns]);
    run('ip', ['link', 'add', veth, 'type', 'veth', 'peer', 'name', 'eth0', 'netns', netns]);
    run('ip', ['link', 'set', veth, 'master', this.bridge, 'up']);
    const ip = `${this.subnet}.${n}`;
    run('ip', ['netns', 'exec', netns, 'ip', 'addr', 'add', `${ip}/24`, 'dev', 'eth0']);
    run('ip', ['netns', 'exec', netns, 'ip', 'link', 'set', 'eth0', 'up']);
    run('ip', ['netns', 'exec', netns, 'ip', 'link', 'set', 'lo', 'up']);
    const member = { netns, ip };
    this.members.set(name, member);
    return member;
  }

  ip(name: string): string {
    const member = this.members.get(name);
    if (!member) throw new Error(`${name} is not on the bridge`);
    return member.ip;
  }

  /** /etc/hosts for a container: localhost, and every name given with its address. */
  hosts(names: Record<string, string>): string {
    return [
      '127.0.0.1\tlocalhost',
      '::1\tlocalhost ip6-localhost ip6-loopback',
      ...Object.entries(names).map(([name, ip]) => `${ip}\t${name}`),
      '',
    ].join('\n');
  }

  remove(): void {
    for (const { netns } of this.members.values()) spawnSync('ip', ['netns', 'del', netns]);
    spawnSync('ip', ['link', 'del', this.bridge]);
  }
}

function run(cmd: string, args: string[]): void {
  const r = spawnSync(cmd, args, { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')}: ${r.stderr}`);
}

/** Whether this machine can run containers so: root, mount and network namespaces, overlayfs. */
export function containersSkip(): string | false {
  let reason: string | false = false;
  if (process.getuid?.() !== 0) reason = 'running a container needs root (mount and network namespaces)';
  else {
    const probe = spawnSync('/usr/bin/unshare', ['--mount', '--net', 'true'], { encoding: 'utf8' });
    if (probe.status !== 0) reason = `unshare --mount --net fails here: ${probe.stderr || probe.error}`;
    else if (spawnSync('sh', ['-c', 'command -v ip nsenter setpriv']).status !== 0)
      reason = 'ip (iproute2), nsenter and setpriv (util-linux) are needed';
  }
  if (!reason) return false;
  if (process.env.CI === 'true') throw new Error(`CI=true and ${reason}`);
  console.log(`# skipped: ${reason}`);
  return reason;
}
