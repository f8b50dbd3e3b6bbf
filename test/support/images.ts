import { execFileSync, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import dockerignore from '@balena/dockerignore';
import { ROOT } from './fixtures';
import { startContainer, type ContainerRoot, type Image, type Mount } from './container';

/**
 * The images the compose files name, as their own sources build them (../shared/reference/container-images.md and
 * each image's Dockerfile and entry point), with the Debian package that stands for each image's program here:
 * Debian's mosquitto 2.0.11 for eclipse-mosquitto 2.0, its influxd 1.6.7 for influxdb 1.8, this repository's
 * node_modules for the Node-RED image's. Grafana has no server here: no image to run.
 */

const ROOT_USER = { uid: 0, gid: 0, home: '/root' };

function account(name: string): { uid: number; gid: number } {
  const line = execFileSync('getent', ['passwd', name], { encoding: 'utf8' }).split(':');
  return { uid: Number(line[2]), gid: Number(line[3]) };
}

/** A group's id, as the image's /etc/group has it (the same on Debian and Alpine for dialout). */
export function groupId(name: string): number {
  if (/^\d+$/.test(name)) return Number(name);
  return Number(execFileSync('getent', ['group', name], { encoding: 'utf8' }).split(':')[2]);
}

/**
 * eclipse-mosquitto:2.0: no USER (the entry point runs as root), the broker's user `mosquitto` (uid 1883 in the
 * image; Debian's own mosquitto user here, which the broker drops to in the same way), /mosquitto/{config,data,log}
 * owned by it, the dynamic security plugin at /usr/lib. Its entry point chowns /mosquitto, then runs the command.
 */
export function mosquittoImage(tag: string): Image {
  const mosquitto = account('mosquitto');
  const plugin = spawnSync('sh', ['-c', 'ls /usr/lib/*/mosquitto_dynamic_security.so'], { encoding: 'utf8' })
    .stdout.trim()
    .split('\n')[0];
  return {
    name: `eclipse-mosquitto:${tag}`,
    user: ROOT_USER,
    workdir: '/',
    entrypoint: ['/docker-entrypoint.sh'],
    cmd: ['/usr/sbin/mosquitto', '-c', '/mosquitto/config/mosquitto.conf'],
    env: {},
    layer(root: ContainerRoot) {
      for (const d of ['/mosquitto/config', '/mosquitto/data', '/mosquitto/log']) root.folder(d, mosquitto);
      root.link('/usr/lib/mosquitto_dynamic_security.so', plugin);
      root.file(
        '/docker-entrypoint.sh',
        '#!/bin/sh\nset -e\n[ "$(id -u)" = 0 ] && [ -d /mosquitto ] && chown -R mosquitto:mosquitto /mosquitto || true\nexec "$@"\n',
        undefined,
        0o755,
      );
    },
    volumeContent(target: string, volume: string) {
      if (target.startsWith('/mosquitto/')) fs.chownSync(volume, mosquitto.uid, mosquitto.gid);
    },
  };
}

/**
 * influxdb:1.8: no USER (root), /etc/influxdb/influxdb.conf as the image ships it (data under /var/lib/influxdb, the
 * rest influxd's defaults), curl. Its own entry point (init-influxdb.sh, first start only) is not reproduced: the
 * compose file replaces it.
 */
export function influxdbImage(tag: string): Image {
  return {
    name: `influxdb:${tag}`,
    user: ROOT_USER,
    workdir: '/',
    entrypoint: ['/entrypoint.sh'],
    cmd: ['influxd'],
    env: { INFLUXDB_VERSION: tag },
    layer(root: ContainerRoot) {
      root.file(
        '/etc/influxdb/influxdb.conf',
        '[meta]\n  dir = "/var/lib/influxdb/meta"\n\n[data]\n  dir = "/var/lib/influxdb/data"\n  engine = "tsm1"\n  wal-dir = "/var/lib/influxdb/wal"\n',
      );
      root.folder('/var/lib/influxdb');
      root.file(
        '/entrypoint.sh',
        '#!/bin/sh\necho "the image\'s own init-influxdb.sh is not reproduced here" >&2\nexit 1\n',
        undefined,
        0o755,
      );
    },
  };
}

/**
 * grafana/grafana-oss:11: USER 472 (group root), GF_PATHS_* and the image's bin on the PATH, /var/lib/grafana owned
 * by its user; /run.sh starts Grafana. Grafana has no server here: /run.sh says so and fails, and `grafana` is
 * absent, unless `layer` puts stand-ins there. What runs in it otherwise is the host's (sh, tar, find).
 */
export function grafanaImage(tag: string, layer?: (root: ContainerRoot) => void): Image {
  const grafana = { uid: 472, gid: 0 };
  return {
    name: `grafana/grafana-oss:${tag}`,
    user: { ...grafana, home: '/home/grafana' },
    workdir: '/usr/share/grafana',
    entrypoint: ['/run.sh'],
    cmd: [],
    env: {
      GF_PATHS_CONFIG: '/etc/grafana/grafana.ini',
      GF_PATHS_DATA: '/var/lib/grafana',
      GF_PATHS_HOME: '/usr/share/grafana',
      PATH: '/usr/share/grafana/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin',
    },
    layer(root: ContainerRoot) {
      root.folder('/usr/share/grafana/bin');
      root.folder('/var/lib/grafana', grafana);
      root.file('/run.sh', '#!/bin/sh\necho "no Grafana server here" >&2\nexit 1\n', undefined, 0o755);
      layer?.(root);
    },
    volumeContent(target: string, volume: string) {
      if (target === '/var/lib/grafana') fs.chownSync(volume, grafana.uid, grafana.gid);
    },
  };
}

/** The Node-RED image's user and the placeholder flow it ships in /data. */
const NODE_RED_USER = { uid: 1000, gid: 1000, home: '/usr/src/node-red' };
const PLACEHOLDER_FLOWS = JSON.stringify([
  { id: 'f6f2187d.f17ca8', type: 'tab', label: 'Flow 1', disabled: false, info: '' },
  {
    id: '3cc11d24.ff01a2',
    type: 'comment',
    z: 'f6f2187d.f17ca8',
    name: 'WARNING: please check you have started this container with a volume that is mounted to /data\\n otherwise any flow changes are lost when you redeploy or upgrade the container',
    info: '',
    x: 350,
    y: 80,
    wires: [],
  },
]);

interface Dockerfile {
  readonly stages: { from: string; name?: string; lines: { instruction: string; args: string }[] }[];
}

function parseDockerfile(file: string): Dockerfile {
  const stages: Dockerfile['stages'] = [];
  const text = fs.readFileSync(file, 'utf8').replace(/\\\n/g, ' ');
  for (const line of text.split('\n')) {
    const m = /^\s*([A-Z]+)\s+(.*)$/.exec(line);
    if (!m || line.trimStart().startsWith('#')) continue;
    const [, instruction, args] = m;
    if (instruction === 'FROM') {
      const [from, , name] = args.split(/\s+/);
      stages.push({ from, name, lines: [] });
    } else stages[stages.length - 1].lines.push({ instruction, args: args.trim() });
  }
  return { stages };
}

const jsonArray = (args: string) => JSON.parse(args) as string[];

/**
 * The image docker/node-red/Dockerfile builds, from a checkout: its build context as .dockerignore leaves it, the
 * pack stage's own commands run in a container of that context (`npm ci` stands as this repository's node_modules,
 * already installed), then the final stage on nodered/node-red as its Dockerfile and this one say: the tarball
 * extracted in /teleinfo (its production dependencies, and the serial node in the image's Node-RED, from this
 * repository's node_modules), the scripts it copies, its ENV, USER, ENTRYPOINT and CMD.
 */
export async function buildNodeRedImage(
  checkout: string,
): Promise<Image & { context: string[]; from: string }> {
  const dockerfile = parseDockerfile(path.join(checkout, 'docker', 'node-red', 'Dockerfile'));
  const context = buildContext(checkout);
  const [pack, final] = dockerfile.stages;
  if (!pack || !final || dockerfile.stages.length !== 2)
    throw new Error('the Dockerfile has a pack stage and a final one');

  const contextDir = fs.mkdtempSync(path.join(path.dirname(checkout), 'context-'));
  for (const f of context) fs.cpSync(path.join(checkout, f), path.join(contextDir, f));
  const workdir = pack.lines.find((l) => l.instruction === 'WORKDIR')!.args;
  const runs = pack.lines.filter((l) => l.instruction === 'RUN').map((l) => l.args);
  if (!/^npm ci\b/.test(runs[0])) throw new Error(`the pack stage installs with npm ci first: ${runs[0]}`);
  const stage = startContainer({
    name: 'build-pack',
    image: {
      name: pack.from,
      user: ROOT_USER,
      workdir,
      entrypoint: [],
      cmd: [],
      env: {},
      layer: () => undefined,
    },
    entrypoint: ['/bin/sh', '-c', runs.slice(1).join(' && ')],
    mounts: [
      { source: contextDir, target: workdir },
      { source: path.join(ROOT, 'node_modules'), target: `${workdir}/node_modules`, readonly: true },
    ],
  });
  await stage.wait();
  const out = path.join(stage.dir, 'root', 'out');
  const tarballs = fs.existsSync(out) ? fs.readdirSync(out).filter((f) => f.endsWith('.tgz')) : [];
  if (tarballs.length !== 1) throw new Error(`the pack stage made no tarball in /out:\n${stage.logs()}`);

  const from = final.from;
  const teleinfo = fs.mkdtempSync(path.join(path.dirname(checkout), 'teleinfo-'));
  fs.chmodSync(teleinfo, 0o755);
  execFileSync('tar', ['-xzf', path.join(out, tarballs[0]), '-C', teleinfo, '--strip-components=1']);
  for (const copy of final.lines.filter((l) => l.instruction === 'COPY' && !l.args.startsWith('--from'))) {
    const parts = copy.args.split(/\s+/);
    const to = parts.pop()!;
    if (!to.startsWith('/teleinfo/')) throw new Error(`COPY into ${to} is not reproduced`);
    for (const f of parts)
      fs.cpSync(
        path.join(contextDir, f),
        path.join(teleinfo, to.slice('/teleinfo/'.length), path.basename(f)),
      );
  }
  const env: Record<string, string> = {
    NODE_PATH: '/usr/src/node-red/node_modules:/data/node_modules',
    PATH: '/usr/src/node-red/node_modules/.bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin',
    FLOWS: 'flows.json',
  };
  let user = NODE_RED_USER;
  let entrypoint = ['./entrypoint.sh'];
  let cmd: string[] = [];
  for (const { instruction, args } of final.lines) {
    if (instruction === 'ENV') {
      const [k, ...v] = args.split('=');
      env[k] = v.join('=');
    } else if (instruction === 'USER') user = args === 'root' ? ROOT_USER : NODE_RED_USER;
    else if (instruction === 'ENTRYPOINT') entrypoint = jsonArray(args);
    else if (instruction === 'CMD') cmd = jsonArray(args);
  }
  fs.mkdirSync(path.join(teleinfo, 'node_modules'));
  const mounts: Mount[] = [
    { source: path.join(ROOT, 'node_modules'), target: '/usr/src/node-red/node_modules', readonly: true },
    { source: teleinfo, target: '/teleinfo', readonly: true },
    { source: path.join(ROOT, 'node_modules'), target: '/teleinfo/node_modules', readonly: true },
  ];
  return {
    name: 'node-red-contrib-teleinfo:local',
    from,
    context,
    user,
    workdir: '/usr/src/node-red',
    entrypoint,
    cmd,
    env,
    mounts,
    layer(root: ContainerRoot) {
      root.folder('/usr/src/node-red', NODE_RED_USER);
      root.folder('/data', { uid: NODE_RED_USER.uid, gid: 0 }, 0o775);
      root.file('/data/flows.json', PLACEHOLDER_FLOWS, { uid: 0, gid: 0 });
    },
    volumeContent(target: string, volume: string) {
      if (target !== '/data') return;
      fs.chownSync(volume, NODE_RED_USER.uid, 0);
      fs.chmodSync(volume, 0o775);
      fs.writeFileSync(path.join(volume, 'flows.json'), PLACEHOLDER_FLOWS, { mode: 0o644 });
      fs.chownSync(path.join(volume, 'flows.json'), 0, 0);
    },
  };
}

/** The files of a checkout that `docker build` sends, as .dockerignore leaves them. */
export function buildContext(checkout: string): string[] {
  const ignore = dockerignore().add(fs.readFileSync(path.join(checkout, '.dockerignore'), 'utf8'));
  const files: string[] = [];
  const walk = (dir: string) => {
    for (const entry of fs.readdirSync(path.join(checkout, dir), { withFileTypes: true })) {
      const rel = dir ? `${dir}/${entry.name}` : entry.name;
      if (ignore.ignores(rel)) continue;
      if (entry.isDirectory()) walk(rel);
      else files.push(rel);
    }
  };
  walk('');
  return files;
}
