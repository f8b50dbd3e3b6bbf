import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import yaml from 'js-yaml';
import { startContainer, type Bridge, type Container, type ExecResult, type Image } from './container';
import { groupId } from './images';

/**
 * A Docker host without a Docker engine: the services of a compose project as `docker-compose config` prints them
 * (interpolated from the .env given, `$$` still escaped), each run by startContainer as its image says, on a bridge
 * where each has its service name, with compose's named volumes, health checks and start order. Published ports
 * are not reproduced: a client reaches a service at its address on the bridge.
 */

export interface ComposeService {
  readonly image?: string;
  readonly build?: unknown;
  readonly entrypoint?: string[] | string;
  readonly command?: string[] | string;
  readonly environment?: Record<string, string>;
  readonly volumes?: string[];
  readonly devices?: string[];
  readonly group_add?: (string | number)[];
  readonly depends_on?: Record<string, { condition: string }>;
  readonly ports?: unknown[];
  readonly profiles?: string[];
  readonly healthcheck?: {
    readonly test: string[];
    readonly interval?: string;
    readonly timeout?: string;
    readonly retries?: number;
    readonly start_period?: string;
  };
}

export interface ComposeProject {
  readonly services: Record<string, ComposeService>;
  readonly volumes?: Record<string, unknown>;
}

/** `docker-compose config` of these files with this .env, parsed. Throws what compose says if it refuses. */
export function composeConfig(files: string[], envFile: string, env: NodeJS.ProcessEnv = {}): ComposeProject {
  const out = execFileSync(
    'docker-compose',
    [...files.flatMap((f) => ['-f', f]), '--env-file', envFile, 'config'],
    {
      cwd: path.dirname(files[0]),
      encoding: 'utf8',
      stdio: 'pipe',
      // Only what the shell gives any user: nothing of this test's own environment leaks into interpolation.
      env: { PATH: process.env.PATH, HOME: process.env.HOME, ...env },
    },
  );
  return yaml.load(out) as ComposeProject;
}

/** A string of the config as compose hands it to the container: `$$` is `$`. */
const unescape = (s: string) => s.replace(/\$\$/g, '$');
const list = (v: string[] | string | undefined) =>
  v === undefined ? undefined : (typeof v === 'string' ? ['/bin/sh', '-c', v] : v).map(unescape);

/** Compose's durations: 15s, 1m30s, 500ms. */
export function duration(text: string | undefined, fallback: number): number {
  if (!text) return fallback;
  let ms = 0;
  const units: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 };
  for (const [, n, unit] of text.matchAll(/(\d+(?:\.\d+)?)(ms|s|m|h)/g)) ms += Number(n) * units[unit];
  return ms;
}

export class DockerHost {
  private readonly containers = new Map<string, { container: Container; config: string }>();
  private project: ComposeProject = { services: {} };

  constructor(
    readonly name: string,
    private readonly bridge: Bridge,
    /** The image of a service: by its `image`, built or pulled. */
    private readonly imageOf: (service: string, s: ComposeService) => Image,
    private readonly volumesDir: string,
    /** Names the containers resolve beyond the services' own (another host's published broker). */
    private readonly extraHosts: Record<string, string> = {},
  ) {}

  /**
   * `docker compose up -d` of a config: every service given (all by default) that is not running, or whose
   * configuration changed, is (re)created, in the order of depends_on, each waiting for the health of those it
   * depends on.
   */
  async up(
    project: ComposeProject,
    only?: string[],
    options: { forceRecreate?: boolean } = {},
  ): Promise<void> {
    this.project = project;
    const started = new Set<string>();
    const start = async (name: string): Promise<void> => {
      if (started.has(name)) return;
      started.add(name);
      const service = project.services[name];
      for (const [dependency, { condition }] of Object.entries(service.depends_on ?? {})) {
        await start(dependency);
        if (condition === 'service_healthy') await this.healthy(dependency);
      }
      const config = JSON.stringify(service);
      const current = this.containers.get(name);
      if (current && current.config === config && current.container.running() && !options.forceRecreate)
        return;
      if (current) await current.container.stop();
      this.containers.set(name, { container: this.create(name, service), config });
    };
    for (const name of only ?? Object.keys(project.services)) await start(name);
  }

  private create(
    name: string,
    service: ComposeService,
    run?: { entrypoint?: string[]; command: string[] },
  ): Container {
    const image = this.imageOf(name, service);
    const container = run ? `${this.name}-${name}-run` : `${this.name}-${name}`;
    const member = this.bridge.attach(container);
    const names: Record<string, string> = { ...this.extraHosts };
    for (const other of Object.keys(this.project.services))
      names[other] = this.bridge.attach(`${this.name}-${other}`).ip;
    return startContainer({
      name: container,
      image,
      entrypoint: run?.entrypoint ?? list(service.entrypoint),
      command: run ? run.command : list(service.command),
      attached: run !== undefined,
      environment: Object.fromEntries(
        Object.entries(service.environment ?? {}).map(([k, v]) => [k, unescape(String(v))]),
      ),
      mounts: (service.volumes ?? []).map((v) => {
        const [source, target, mode] = v.split(':');
        return {
          source: source.startsWith('/') ? source : this.volume(source, target, image),
          target,
          readonly: mode === 'ro',
        };
      }),
      devices: service.devices,
      groups: service.group_add?.map((g) => groupId(String(g))),
      network: { netns: member.netns, hosts: this.bridge.hosts(names) },
    });
  }

  /** A named volume: made on first use, with what the image has at its mount point. */
  private volume(name: string, target: string, image: Image): string {
    const dir = path.join(this.volumesDir, name);
    if (!fs.existsSync(dir)) {
      fs.mkdirSync(dir, { recursive: true });
      image.volumeContent?.(target, dir);
    }
    return dir;
  }

  container(name: string): Container {
    const c = this.containers.get(name);
    if (!c) throw new Error(`${name} was not started`);
    return c.container;
  }

  ip(name: string): string {
    return this.bridge.ip(`${this.name}-${name}`);
  }

  /** The service's health check once, as Docker runs it: in the container, as its user, CMD-SHELL through sh -c. */
  async health(name: string): Promise<ExecResult> {
    const check = this.project.services[name].healthcheck;
    if (!check) throw new Error(`${name} has no health check`);
    const [kind, ...rest] = check.test.map(unescape);
    const command = kind === 'CMD-SHELL' ? ['/bin/sh', '-c', rest.join(' ')] : rest;
    return this.container(name).exec(command, { timeoutMs: duration(check.timeout, 30_000) });
  }

  /**
   * Wait until the health check passes, for as long as Docker would before it calls the service unhealthy
   * (start period, then `retries` failures an interval apart); checking more often than Docker does.
   */
  async healthy(name: string): Promise<void> {
    const check = this.project.services[name].healthcheck;
    if (!check) return;
    const deadline =
      Date.now() +
      duration(check.start_period, 0) +
      (check.retries ?? 3) * (duration(check.interval, 30_000) + duration(check.timeout, 30_000));
    let last: ExecResult | undefined;
    while (Date.now() < deadline) {
      if (!this.container(name).running())
        throw new Error(`${name} exited:\n${this.container(name).logs().slice(-3000)}`);
      last = await this.health(name);
      if (last.status === 0) return;
      await new Promise((r) => setTimeout(r, 500));
    }
    throw new Error(
      `${name} stays unhealthy: ${JSON.stringify(last)}\n${this.container(name).logs().slice(-3000)}`,
    );
  }

  /**
   * `docker compose run --rm --no-deps -T [--entrypoint X] <service> [command]`: a new container of the service (its
   * image, environment, volumes, network) running the command given, attached; `entrypoint` replaces the image's
   * and compose's, as `--entrypoint` does.
   */
  run(name: string, command: string[], entrypoint?: string[]): Container {
    const service = this.project.services[name];
    if (!service) throw new Error(`no service ${name}`);
    return this.create(name, service, {
      entrypoint,
      command: command.length > 0 ? command : (list(service.command) ?? []),
    });
  }

  /** The project as compose reads it again for a command (the containers stay as they are). */
  configure(project: ComposeProject): void {
    this.project = project;
  }

  /** The services whose container runs (`docker compose ps --services --status running`). */
  runningServices(): string[] {
    return [...this.containers].filter(([, c]) => c.container.running()).map(([name]) => name);
  }

  /**
   * `docker compose start` of a service stopped: its container again, with the configuration it had (here a new
   * process on the same volumes; what the container wrote outside them is not kept).
   */
  start(name: string): void {
    const current = this.containers.get(name);
    if (!current || current.container.running()) return;
    const service = JSON.parse(current.config) as ComposeService;
    this.containers.set(name, { container: this.create(name, service), config: current.config });
  }

  /** `docker compose stop` of a service (its container is kept for a start with the same configuration). */
  async stop(name: string, signal: NodeJS.Signals = 'SIGTERM'): Promise<void> {
    await this.containers.get(name)?.container.stop(signal);
  }

  /** `docker compose down`, volumes kept. */
  async down(): Promise<void> {
    for (const { container } of [...this.containers.values()].reverse()) await container.stop();
    this.containers.clear();
  }
}
