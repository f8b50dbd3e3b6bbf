import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { ROOT } from './fixtures';
import { freePort, httpStatus, stopper, tempDir, waitFor, type Service } from './services';

/** A real Node-RED process loading this package from the working tree, on a free port, stopped by PID. */
export interface NodeRedProcess extends Service {
  readonly url: string;
  /** Deploy a flow set through the admin API: in full, or only the modified flows as the editor can. */
  deploy(flows: unknown[], type?: 'full' | 'flows'): Promise<void>;
  log(): string;
}

export async function startNodeRed(
  options: {
    flows?: unknown[];
    env?: Record<string, string>;
    dir?: string;
    port?: number;
    /** Extra node arguments, e.g. --cpu-prof for a benchmark. */
    nodeArgs?: string[];
    /** Load this package only as installed in the userDir (a palette install), not from the working tree. */
    installed?: boolean;
    /** Another Node-RED install's red.js (a Pi's: nothing from this repository's node_modules); with `installed`. */
    redJs?: string;
    /** The settings of that role (a Pi's leaves out some core nodes); a server's by default. */
    role?: 'pi' | 'server';
  } = {},
): Promise<NodeRedProcess> {
  // A given userDir outlives the process (to restart on it); a temporary one is removed on stop.
  const dir = options.dir ?? tempDir('node-red');
  const port = options.port ?? (await freePort());
  const settings = path.join(dir, 'settings.js');
  fs.writeFileSync(
    settings,
    `const settings = require(${JSON.stringify(path.join(ROOT, 'scripts', 'node-red-settings.js'))})({ port: ${port}, role: '${options.role ?? 'server'}', userDir: __dirname });\n` +
      (options.installed ? 'delete settings.nodesDir;\n' : '') +
      'module.exports = settings;\n',
  );
  if (options.flows) fs.writeFileSync(path.join(dir, 'flows.json'), JSON.stringify(options.flows));
  return launch(
    dir,
    port,
    [
      ...(options.nodeArgs ?? []),
      options.redJs ?? require.resolve('node-red/red.js'),
      '--userDir',
      dir,
      '--settings',
      settings,
    ],
    { ...process.env, ...options.env },
    !options.dir,
  );
}

/**
 * One of the shipped instances (flows/pi.json, flows/server.json) as `npm start` runs it: flows and credentials
 * from the environment (scripts/instance.js). The userDir is kept on stop, to restart on it.
 */
export async function startInstance(
  role: 'pi' | 'server',
  options: {
    env: Record<string, string>;
    dir: string;
    port?: number;
    flows?: unknown[];
    /** Write the flows and credentials again even if the userDir has them (what each test means to run). */
    reseed?: boolean;
    /** Node arguments before the instance's own, e.g. --cpu-prof for a benchmark. */
    nodeArgs?: string[];
  },
): Promise<NodeRedProcess> {
  const port = options.port ?? (await freePort());
  // eslint-disable-next-line @typescript-eslint/no-require-imports -- the launcher is plain JS shared with npm start
  const { prepareInstance } = require(path.join(ROOT, 'scripts', 'instance.js')) as {
    prepareInstance: (o: object) => { args: string[]; env: Record<string, string> };
  };
  const prepared = prepareInstance({
    role,
    userDir: options.dir,
    port,
    env: { ...process.env, ...options.env },
    flows: options.flows,
    reseed: options.reseed ?? true,
  });
  return launch(options.dir, port, [...(options.nodeArgs ?? []), ...prepared.args], prepared.env, false);
}

async function launch(
  dir: string,
  port: number,
  args: string[],
  env: NodeJS.ProcessEnv,
  removeDir: boolean,
): Promise<NodeRedProcess> {
  const logFile = path.join(dir, 'node-red.log');
  const log = fs.openSync(logFile, 'a');
  // A restart on the same userDir appends to the log of the runs before it.
  const logStart = fs.fstatSync(log).size;
  const child = spawn(process.execPath, args, { stdio: ['ignore', log, log], env });
  fs.closeSync(log);
  const url = `http://127.0.0.1:${port}`;
  await waitFor(`Node-RED on ${port}`, async () => (await httpStatus(`${url}/settings`)) === 200, 60_000);
  // Node-RED answers /settings before it starts the flows it loaded (none on a new userDir): a deploy that counted
  // 'Started flows' before that start would take it for its own, and post to routes not there yet (a 404 in CI).
  await waitFor(
    `Node-RED on ${port} to start its flows`,
    () => /Started flows|Waiting for missing types/.test(fs.readFileSync(logFile, 'utf8').slice(logStart)),
    60_000,
  );
  return {
    pid: child.pid as number,
    port,
    dir,
    url,
    stop: stopper(child, removeDir ? dir : null),
    log: () => fs.readFileSync(logFile, 'utf8'),
    async deploy(flows: unknown[], type: 'full' | 'flows' = 'full') {
      // The admin API answers once the flows are saved; they start a moment later, which the log says.
      const started = () => fs.readFileSync(logFile, 'utf8').split('Started flows').length;
      const before = started();
      const res = await fetch(`${url}/flows`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', 'node-red-deployment-type': type },
        body: JSON.stringify(flows),
      });
      if (res.status !== 204) throw new Error(`deploy failed: ${res.status} ${await res.text()}`);
      await waitFor('the deployed flows to start', () => started() > before, 30_000);
    },
  };
}

/** An admin API token for the editor's login, or null if refused. */
export async function editorToken(editor: string, password: string): Promise<string | null> {
  const res = await fetch(`${editor}/auth/token`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({
      client_id: 'node-red-admin',
      grant_type: 'password',
      scope: '*',
      username: 'admin',
      password,
    }),
  });
  return res.ok ? ((await res.json()) as { access_token: string }).access_token : null;
}

/** What the editor shows under a node: its last status, as Node-RED's comms websocket gives it to the editor. */
export async function editorStatus(url: string, id: string): Promise<{ text?: string; fill?: string }> {
  type Socket = {
    on(event: string, listener: (data: unknown) => void): void;
    send(data: string): void;
    close(): void;
  };
  const WebSocket = module.require('ws') as new (url: string) => Socket;
  const ws = new WebSocket(`${url.replace(/^http/, 'ws')}/comms`);
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      ws.close();
      reject(new Error(`no status of ${id}`));
    }, 10_000);
    ws.on('open', () => ws.send(JSON.stringify({ subscribe: 'status/#' })));
    ws.on('error', reject);
    ws.on('message', (data) => {
      const messages = [JSON.parse(String(data))].flat() as { topic: string; data: { text?: string } }[];
      const mine = messages.find((m) => m.topic === `status/${id}`);
      if (!mine) return;
      clearTimeout(timer);
      ws.close();
      resolve(mine.data);
    });
  });
}
