import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { ROOT } from './fixtures';
import { freePort, launch, stopper, tcpOpen, waitFor, type Mosquitto } from './services';

/** Accounts by name and password: the servers', and the Pis' (a Pi's name is its Pi id). */
export interface BrokerAccounts {
  readonly servers: Record<string, string>;
  readonly pis: Record<string, string>;
  /** Home Assistant's accounts (MQTT_HA_ACCOUNTS), if any. */
  readonly ha?: Record<string, string>;
}

export interface ShippedBroker extends Mosquitto {
  /** The loopback port in clear (the container's health check). */
  readonly plainPort: number;
}

/**
 * docker/mosquitto as the mosquitto container runs it: init.sh writes the password file and the ACL from the
 * accounts, then mosquitto runs docker/mosquitto/mosquitto.conf with only its paths and ports made local (TLS on
 * `port`, the certificates of `certsDir`). The same `dir` and ports again are a restart.
 */
export async function startShippedBroker(
  dir: string,
  certsDir: string,
  accounts: BrokerAccounts,
  ports?: { port: number; plainPort: number },
): Promise<ShippedBroker> {
  const port = ports?.port ?? (await freePort());
  const plainPort = ports?.plainPort ?? (await freePort());
  const list = (a: Record<string, string>) =>
    Object.entries(a)
      .map(([name, password]) => `${name}:${password}`)
      .join(' ');
  const init = spawnSync('sh', [path.join(ROOT, 'docker', 'mosquitto', 'init.sh')], {
    env: {
      ...process.env,
      MQTT_STATE_DIR: dir,
      MQTT_SERVER_ACCOUNTS: list(accounts.servers),
      MQTT_PI_ACCOUNTS: list(accounts.pis),
      MQTT_HA_ACCOUNTS: list(accounts.ha ?? {}),
    },
    encoding: 'utf8',
  });
  if (init.status !== 0) throw new Error(`init.sh: ${init.stderr}`);
  let conf = fs.readFileSync(path.join(ROOT, 'docker', 'mosquitto', 'mosquitto.conf'), 'utf8');
  for (const [from, to] of [
    ['/mosquitto/data/', `${dir}/`],
    ['/mosquitto/certs/', `${certsDir}/`],
    ['\nlistener 8883\n', `\nlistener ${port} 127.0.0.1\n`],
    ['\nlistener 1883 127.0.0.1\n', `\nlistener ${plainPort} 127.0.0.1\n`],
  ]) {
    if (!conf.includes(from)) throw new Error(`docker/mosquitto/mosquitto.conf has no "${from.trim()}"`);
    conf = conf.split(from).join(to);
  }
  const file = path.join(dir, 'mosquitto.conf');
  // As root, mosquitto would drop to a user that cannot write here.
  fs.writeFileSync(file, `user root\npid_file ${path.join(dir, 'mosquitto.pid')}\n${conf}`);
  const child = launch('mosquitto', ['-c', file], dir);
  await waitFor(`mosquitto on ${port}`, () => tcpOpen(port));
  return {
    pid: child.pid as number,
    port,
    plainPort,
    dir,
    url: `mqtts://127.0.0.1:${port}`,
    stop: stopper(child, null),
  };
}
