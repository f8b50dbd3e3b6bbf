import fs from 'node:fs';
import path from 'node:path';
import yaml from 'js-yaml';
import { startContainer, type Container } from './container';
import { ROOT } from './fixtures';
import { mosquittoImage } from './images';
import { freePort, tcpOpen, waitFor, type Mosquitto } from './services';

/** Accounts by name and password: the servers', and the Pis' (a Pi's name is its Pi id). */
export interface BrokerAccounts {
  readonly servers: Record<string, string>;
  readonly pis: Record<string, string>;
  /** Home Assistant's accounts (MQTT_HA_ACCOUNTS), if any. */
  readonly ha?: Record<string, string>;
}

/** The client id an account must connect with (docker/mosquitto/init.sh binds each account to it). */
export const clientId = (account: string) => `teleinfo-${account}`;

export interface ShippedBroker extends Mosquitto {
  /** The loopback port in clear (the container's health check). */
  readonly plainPort: number;
  readonly container: Container;
}

interface ComposeFile {
  services: Record<string, { image: string; entrypoint: string[]; volumes: string[] }>;
}

/**
 * The mosquitto service of docker-compose.yml as its container runs it (startContainer: init.sh as root, the broker
 * dropping to its own user, the shipped mosquitto.conf at its container paths), on the host's network with only
 * its two ports changed: TLS on `port` (loopback), the health check's on `plainPort`. The certificates are those of
 * `certsDir` (npm run certs), the accounts those given. The same `dir` and ports again are a restart.
 */
export async function startShippedBroker(
  dir: string,
  certsDir: string,
  accounts: BrokerAccounts,
  ports?: { port: number; plainPort: number },
): Promise<ShippedBroker> {
  const port = ports?.port ?? (await freePort());
  const plainPort = ports?.plainPort ?? (await freePort());
  const service = (yaml.load(fs.readFileSync(path.join(ROOT, 'docker-compose.yml'), 'utf8')) as ComposeFile)
    .services.mosquitto;
  let conf = fs.readFileSync(path.join(ROOT, 'docker', 'mosquitto', 'mosquitto.conf'), 'utf8');
  for (const [from, to] of [
    ['\nlistener 8883\n', `\nlistener ${port} 127.0.0.1\n`],
    ['\nlistener 1883 127.0.0.1\n', `\nlistener ${plainPort} 127.0.0.1\n`],
  ]) {
    if (!conf.includes(from)) throw new Error(`docker/mosquitto/mosquitto.conf has no "${from.trim()}"`);
    conf = conf.split(from).join(to);
  }
  const confFile = path.join(dir, 'mosquitto.conf');
  fs.writeFileSync(confFile, conf);
  const image = mosquittoImage(service.image.split(':')[1]);
  const data = path.join(dir, 'data');
  const mounts = service.volumes.map((v) => {
    const [source, target, mode] = v.split(':');
    let from: string;
    if (source === './docker/mosquitto/mosquitto.conf') from = confFile;
    else if (source.startsWith('./docker/certs/')) from = path.join(certsDir, path.basename(source));
    else if (source.startsWith('./')) from = path.join(ROOT, source);
    else {
      // The named volume: made once, as Docker does from the image.
      if (!fs.existsSync(data)) {
        fs.mkdirSync(data);
        image.volumeContent?.(target, data);
      }
      from = data;
    }
    return { source: from, target, readonly: mode === 'ro' };
  });
  const list = (a: Record<string, string>) =>
    Object.entries(a)
      .map(([name, password]) => `${name}:${password}`)
      .join(' ');
  const container = startContainer({
    name: 'mosquitto',
    image,
    entrypoint: service.entrypoint,
    environment: {
      MQTT_SERVER_ACCOUNTS: list(accounts.servers),
      MQTT_PI_ACCOUNTS: list(accounts.pis),
      MQTT_HA_ACCOUNTS: list(accounts.ha ?? {}),
    },
    mounts,
    log: path.join(dir, 'service.log'),
  });
  await waitFor(`mosquitto on ${port}`, async () => !container.running() || (await tcpOpen(port)));
  if (!container.running()) throw new Error(`mosquitto exited:\n${container.logs()}`);
  return {
    pid: container.pid,
    port,
    plainPort,
    dir,
    url: `mqtts://127.0.0.1:${port}`,
    container,
    stop: (signal?: NodeJS.Signals) => container.stop(signal),
  };
}
