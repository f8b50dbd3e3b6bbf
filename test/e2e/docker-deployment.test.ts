import assert from 'node:assert/strict';
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import bcrypt from 'bcryptjs';
import yaml from 'js-yaml';
import { simulatedBox } from '../../nodes/lib/simulator/cli';
import { SimClock, type EcoDevicesSimulator } from '../../nodes/lib/simulator/ecodevices-server';
import mqtt from 'mqtt';
import { SimulatedMeter } from '../../nodes/lib/simulator/meter';
import { SerialLine } from '../../nodes/lib/simulator/serial-line';
import { encodeTicFrame } from '../../nodes/lib/tic/encoder';
import { Bridge, containersSkip, startContainer } from '../support/container';
import { composeCommand, serveDockerCli } from '../support/docker-cli';
import { composeConfig, DockerHost, type ComposeProject, type ComposeService } from '../support/docker-host';
import { dashboard, expand } from '../support/dashboard';
import { ROOT } from '../support/fixtures';
import {
  buildContext,
  buildNodeRedImage,
  grafanaImage,
  groupId,
  influxdbImage,
  mosquittoImage,
} from '../support/images';
import { editorToken } from '../support/node-red-process';
import { serviceSkip, tempDir, waitFor } from '../support/services';

/**
 * The README's "Deploy with Docker" as a user runs it, on a Docker host this machine imitates (no Docker engine
 * here): its commands, from a clean checkout, in order; every service of the compose files run the way its image
 * runs it (test/support/container.ts, images.ts): the image's user (mosquitto dropping root to its own, Node-RED as
 * uid 1000 on a volume holding the image's root-owned placeholder flow), the compose entry points and the
 * environment compose interpolates from the .env, container paths, a network namespace per service with the
 * service names, and every health check through sh -c. The Pi is a second host, from docker-compose.pi.yml, that
 * reaches the server's broker by the name in its certificate.
 */

const skip =
  serviceSkip('mosquitto') ||
  serviceSkip('influxd') ||
  serviceSkip('docker-compose') ||
  serviceSkip('openssl') ||
  serviceSkip('socat') ||
  containersSkip();

const EDITOR_PASSWORD = 'editor-pass';

/** What a user types into each .env: passwords with quotes, globs, spaces and dollars, quoted as .env.example says. */
const SERVER_SECRETS = {
  MQTT_SERVER_PASSWORD: `"srv'pass*"`,
  MQTT_PI_ACCOUNTS: `'pi-1:pi$pass pi-tic:tic*pass'`,
  INFLUX_ADMIN_PASSWORD: `"adm in*'x"`,
  INFLUX_PASSWORD: `'wr$te"pw'`,
  INFLUX_READ_PASSWORD: `"rd'pw"`,
  NODE_RED_ADMIN_HASH: `'${bcrypt.hashSync(EDITOR_PASSWORD, 8)}'`,
  NODE_RED_CREDENTIAL_SECRET: crypto.randomBytes(32).toString('hex'),
  GRAFANA_ADMIN_PASSWORD: `'gr$fana'`,
};

/** The image the compose files build from docker/node-red/Dockerfile. */
const nodeRedImageName = 'node-red-contrib-teleinfo:local';
const BOX_LOGIN = { user: 'box-user', password: "b0x'p*ss" };

/** Set KEY=value lines of a .env file (a commented `# KEY=` line too), appending those it lacks. */
function setEnv(file: string, values: Record<string, string>): void {
  let text = fs.readFileSync(file, 'utf8');
  for (const [key, value] of Object.entries(values)) {
    const line = new RegExp(`^(# )?${key}=.*$`, 'm');
    text = line.test(text) ? text.replace(line, () => `${key}=${value}`) : `${text}${key}=${value}\n`;
  }
  fs.writeFileSync(file, text);
}

/** The shell commands of the README's "Deploy with Docker" section, one list per code block. */
function readmeDeploySteps(): string[][] {
  const readme = fs.readFileSync(path.join(ROOT, 'README.md'), 'utf8');
  const section = readme.slice(readme.indexOf('## Deploy with Docker'));
  const body = section.slice(0, section.indexOf('\n## ', 3));
  return [...body.matchAll(/```sh\n([\s\S]*?)```/g)].map((m) => m[1].trim().split('\n'));
}

/** The compose files a `docker compose [-f F]... up -d` command names. */
function composeFiles(command: string, checkout: string): string[] {
  const files = [...command.matchAll(/-f (\S+)/g)].map((m) => path.join(checkout, m[1]));
  return files.length > 0 ? files : [path.join(checkout, 'docker-compose.yml')];
}

/** A clean clone: the repository's files (tracked, and new ones not ignored), nothing built or installed. */
function cleanCheckout(dir: string): string {
  fs.mkdirSync(dir);
  const files = execFileSync('git', ['ls-files', '-co', '--exclude-standard', '-z'], {
    cwd: ROOT,
    encoding: 'utf8',
  })
    .split('\0')
    .filter((f) => f && fs.existsSync(path.join(ROOT, f)));
  for (const f of files) fs.cpSync(path.join(ROOT, f), path.join(dir, f));
  return dir;
}

interface Influx {
  query(
    q: string,
    auth: string,
  ): Promise<{
    status: number;
    body: { results?: { series?: unknown[]; error?: string }[]; error?: string };
  }>;
  write(line: string, auth: string): Promise<number>;
}

describe(
  'the Docker deployment as the README deploys it, run the way the official images run it',
  { skip },
  () => {
    const work = tempDir('deploy');
    const checkout = cleanCheckout(path.join(work, 'server'));
    const piCheckout = cleanCheckout(path.join(work, 'pi'));
    const [serverSteps, piSteps] = readmeDeploySteps();
    let bridge: Bridge;
    let server: DockerHost;
    let pi: DockerHost;
    let box: EcoDevicesSimulator;
    let serverProject: ComposeProject;
    let nodeRedImage: Awaited<ReturnType<typeof buildNodeRedImage>>;
    let influx: Influx;
    let ticPi: DockerHost;
    let line: SerialLine | undefined;
    const brokerName = () => /--host (\S+)/.exec(serverSteps.find((c) => c.startsWith('npm run certs'))!)![1];
    const admin = () => {
      const env = environment(serverProject.services.influxdb);
      return `${env.INFLUXDB_ADMIN_USER}:${env.INFLUXDB_ADMIN_PASSWORD}`;
    };
    /** Points of the teleinfo measurement that match a condition, counted as the admin. */
    const count = async (where: string) => {
      const r = await influx.query(`SELECT count("phases") FROM "teleinfo" WHERE ${where}`, admin());
      return Number(
        (r.body.results?.[0].series?.[0] as { values: number[][] } | undefined)?.values[0][1] ?? 0,
      );
    };
    /** docker compose up -d of the server's README command with its .env as it is now (Grafana has no server here). */
    const upServer = async () => {
      serverProject = composeConfig(composeFiles(serverSteps[serverSteps.length - 1], checkout), serverEnv);
      const services = Object.keys(serverProject.services).filter((s) => s !== 'grafana');
      await server.up(serverProject, services);
      for (const name of services) await server.healthy(name);
    };
    const serverEnv = path.join(checkout, '.env');
    const piEnv = path.join(piCheckout, '.env');
    /** The environment compose gives a service, as its container sees it. */
    const environment = (s: ComposeService) =>
      Object.fromEntries(
        Object.entries(s.environment ?? {}).map(([k, v]) => [k, String(v).replace(/\$\$/g, '$')]),
      );

    const imageOf = (_name: string, s: ComposeService) => {
      const [name, tag] = (s.image ?? '').split(':');
      if (name === 'eclipse-mosquitto') return mosquittoImage(tag);
      if (name === 'influxdb') return influxdbImage(tag);
      if (name === 'grafana/grafana-oss') return grafanaImage(tag);
      if (s.image === nodeRedImage.name) return nodeRedImage;
      throw new Error(`no image ${s.image} here`);
    };

    /** Run one README command of a block in a checkout, as a user would; `docker compose ... up -d` on the host. */
    async function runStep(
      command: string,
      dir: string,
      host: () => DockerHost,
      envFile: string,
    ): Promise<ComposeProject | null> {
      const compose = /^docker compose (.*)up -d$/.exec(command);
      if (compose) {
        const project = composeConfig(composeFiles(command, dir), envFile);
        await host().up(project);
        return project;
      }
      const r = spawnSync('sh', ['-c', command], { cwd: dir, encoding: 'utf8' });
      assert.equal(r.status, 0, `${command}: ${r.stdout}${r.stderr}`);
      return null;
    }

    before(async () => {
      box = simulatedBox(
        {
          boxes: 1,
          contract: 'HC',
          contract2: 'BASE',
          phases: 1,
          isousc: 45,
          seed: 3,
          start: Date.now(),
          // The box's own login: the Pi's credentials come from its .env too.
          ...BOX_LOGIN,
        },
        0,
        new SimClock(Date.now(), 1),
      );
      bridge = new Bridge();
      await box.listen(0, bridge.hostIp);
      nodeRedImage = await buildNodeRedImage(checkout);
      server = new DockerHost('server', bridge, imageOf, path.join(work, 'server-volumes'));
      const auth = (account: string) => `Basic ${Buffer.from(account).toString('base64')}`;
      influx = {
        async query(q, account) {
          const res = await fetch(`http://${server.ip('influxdb')}:8086/query?db=teleinfo&epoch=ms`, {
            method: 'POST',
            headers: { authorization: auth(account), 'content-type': 'application/x-www-form-urlencoded' },
            body: new URLSearchParams({ q }),
          });
          return {
            status: res.status,
            body: (await res.json()) as Awaited<ReturnType<Influx['query']>>['body'],
          };
        },
        async write(line, account) {
          const res = await fetch(`http://${server.ip('influxdb')}:8086/write?db=teleinfo`, {
            method: 'POST',
            headers: { authorization: auth(account) },
            body: line,
          });
          await res.arrayBuffer();
          return res.status;
        },
      };
    });

    after(async () => {
      await line?.close();
      await ticPi?.down();
      await pi?.down();
      await server?.down();
      bridge?.remove();
      await box?.close();
    });

    test('the README deploys the server: its certificate command, .env, docker compose up -d; every health check passes through sh -c', async () => {
      assert.ok(serverSteps && piSteps, 'the README has a block of commands for the server and one for a Pi');
      for (const command of serverSteps) {
        if (command.startsWith('docker compose')) {
          setEnv(serverEnv, SERVER_SECRETS);
          // Grafana has no server here: every other service, in compose's order.
          const project = composeConfig(composeFiles(command, checkout), serverEnv);
          serverProject = project;
          await server.up(
            project,
            Object.keys(project.services).filter((s) => s !== 'grafana'),
          );
        } else await runStep(command, checkout, () => server, serverEnv);
      }
      for (const name of ['mosquitto', 'influxdb', 'node-red-server']) {
        await server.healthy(name);
        const check = await server.health(name);
        assert.equal(check.status, 0, `${name}'s health check: ${check.stderr}`);
      }
    });

    test("mosquitto runs as its own user, with TLS files it owns and no CA key; InfluxDB gives each account its privilege; the server Node-RED, uid 1000, replaced the image's placeholder flow with the shipped one", async () => {
      const uid = (container: { pid: number }) =>
        Number(/^Uid:\s+(\d+)/m.exec(fs.readFileSync(`/proc/${container.pid}/status`, 'utf8'))![1]);
      assert.equal(
        uid(server.container('mosquitto')),
        Number(execFileSync('id', ['-u', 'mosquitto'], { encoding: 'utf8' })),
      );
      const certs = await server
        .container('mosquitto')
        .exec(['/bin/sh', '-c', 'ls -ln /mosquitto/certs /teleinfo/certs']);
      assert.match(certs.stdout, /-r-------- +1 +\d+ .*broker\.key/);
      assert.doesNotMatch(certs.stdout, /ca\.key/, 'the CA key stays on the host');

      const env = environment(serverProject.services.influxdb);
      const write = `${env.INFLUXDB_WRITE_USER}:${env.INFLUXDB_WRITE_USER_PASSWORD}`;
      const read = `${env.INFLUXDB_READ_USER}:${env.INFLUXDB_READ_USER_PASSWORD}`;
      const admin = `${env.INFLUXDB_ADMIN_USER}:${env.INFLUXDB_ADMIN_PASSWORD}`;
      assert.equal(env.INFLUXDB_ADMIN_PASSWORD, "adm in*'x", 'the .env value, quotes and all');
      assert.equal((await influx.query('SHOW USERS', admin)).status, 200);
      assert.equal(await influx.write('probe v=1', read), 403, 'Grafana cannot write');
      assert.equal(await influx.write('probe v=1', write), 204);
      assert.equal((await influx.query('SELECT * FROM probe', read)).status, 200);
      // The server reads its database back into rollups, and administers nothing.
      assert.equal((await influx.query('SELECT * FROM probe', write)).status, 200, 'the server reads');
      assert.equal((await influx.query('SHOW USERS', write)).status, 403, 'the server is no admin');
      const policies = (await influx.query('SHOW RETENTION POLICIES', admin)).body as unknown as {
        results: { series: { values: [string, string, string, number, boolean][] }[] }[];
      };
      assert.deepEqual(
        policies.results[0].series[0].values.map(([name, duration, , , isDefault]) => [
          name,
          duration,
          isDefault,
        ]),
        [
          ['autogen', '2160h0m0s', true],
          ['forever', '0s', false],
        ],
        'raw readings kept 90 days by default, rollups forever',
      );
      await influx.query('DROP MEASUREMENT probe', admin);

      const nodeRed = server.container('node-red-server');
      assert.equal(uid(nodeRed), 1000);
      const volume = path.join(work, 'server-volumes', 'node-red-server-data');
      const flows = JSON.parse(fs.readFileSync(path.join(volume, 'flows.json'), 'utf8')) as { id: string }[];
      const shipped = JSON.parse(fs.readFileSync(path.join(ROOT, 'flows', 'server.json'), 'utf8')) as {
        id: string;
      }[];
      assert.deepEqual(
        flows.map((n) => n.id),
        shipped.map((n) => n.id),
      );
      const credentials = fs.readFileSync(path.join(volume, 'flows_cred.json'), 'utf8');
      for (const secret of ["srv'pass*", 'wr$te"pw', SERVER_SECRETS.NODE_RED_CREDENTIAL_SECRET])
        assert.ok(!credentials.includes(secret), 'no secret in the userDir');
      assert.ok(!fs.existsSync(path.join(volume, '.npm')), "no npm cache in the image's /data");
    });

    test("a Pi from docker-compose.pi.yml alone publishes readings that reach InfluxDB, and every dashboard query run as Grafana's provisioned account answers", async () => {
      fs.mkdirSync(path.join(piCheckout, 'docker', 'certs'));
      fs.copyFileSync(
        path.join(checkout, 'docker', 'certs', 'ca.crt'),
        path.join(piCheckout, 'docker', 'certs', 'ca.crt'),
      );
      pi = new DockerHost('pi', bridge, imageOf, path.join(work, 'pi-volumes'), {
        // The server's published 8883, by the name its certificate holds.
        [brokerName()]: server.ip('mosquitto'),
      });
      for (const command of piSteps) {
        if (command.startsWith('docker compose'))
          setEnv(piEnv, {
            PI_MQTT_PASSWORD: `'pi$pass'`,
            MQTT_BROKER: brokerName(),
            NODE_RED_ADMIN_HASH: SERVER_SECRETS.NODE_RED_ADMIN_HASH,
            NODE_RED_CREDENTIAL_SECRET: crypto.randomBytes(32).toString('hex'),
            ECODEVICES_HOST: bridge.hostIp,
            ECODEVICES_PORT: String(box.port),
            ECODEVICES_USER: BOX_LOGIN.user,
            ECODEVICES_PASSWORD: `"${BOX_LOGIN.password}"`,
          });
        await runStep(command, piCheckout, () => pi, piEnv);
      }
      await pi.healthy('node-red-pi');
      const admin = `admin:adm in*'x`;
      await waitFor(
        'readings of both meters, the water and gas counters and the Pi status in InfluxDB',
        async () => {
          const r = await influx.query('SHOW TAG VALUES FROM "teleinfo" WITH KEY = "meter"', admin);
          const online = await influx.query('SELECT last("online") FROM "teleinfo_pi"', admin);
          return (
            (r.body.results?.[0].series?.[0] as { values: unknown[] } | undefined)?.values.length === 4 &&
            online.body.results?.[0].series !== undefined
          );
        },
        120_000,
      );

      // Grafana's datasource as provisioning makes it: its $VARIABLES from the grafana container's environment.
      const grafana = environment(serverProject.services.grafana);
      const datasource = (
        yaml.load(
          fs.readFileSync(
            path.join(checkout, 'docker', 'grafana', 'provisioning', 'datasources', 'influxdb.yaml'),
            'utf8',
          ),
        ) as {
          datasources: { user: string; secureJsonData: { password: string } }[];
        }
      ).datasources[0];
      const expandVars = (v: string) => v.replace(/\$\{?(\w+)\}?/g, (_, k: string) => grafana[k] ?? '');
      const account = `${expandVars(datasource.user)}:${expandVars(datasource.secureJsonData.password)}`;
      const dashboard = JSON.parse(
        fs.readFileSync(path.join(checkout, 'docker', 'grafana', 'dashboards', 'teleinfo.json'), 'utf8'),
      ) as {
        panels: { title: string; timeFrom?: string; targets: { query: string }[] }[];
        templating: { list: { name: string; type: string; query: string }[] };
      };
      const meterVariable = await influx.query(
        dashboard.templating.list.find((v) => v.name === 'meter')!.query,
        account,
      );
      assert.equal(meterVariable.status, 200, JSON.stringify(meterVariable.body));
      const meters = (meterVariable.body.results![0].series![0] as { values: string[][] }).values.map(
        (v) => v[1],
      );
      const textboxes = Object.fromEntries(
        dashboard.templating.list.filter((v) => v.type === 'textbox').map((v) => [v.name, v.query]),
      );
      for (const panel of dashboard.panels)
        for (const target of panel.targets) {
          // The last hour, or the panel's own range (the monthly ones: a year, two).
          const range = panel.timeFrom ? `${Number.parseInt(panel.timeFrom, 10) * 366}d` : '1h';
          const q = target.query
            .replace(/\$timeFilter/g, `time > now() - ${range}`)
            .replace(/\$__interval/g, '10s')
            .replace(/\$meter\b/g, `(${meters.join('|')})`)
            .replace(/\$(\w+)/g, (whole, name: string) => textboxes[name] ?? whole);
          const answer = async () => {
            const r = await influx.query(q, account);
            assert.equal(r.status, 200, `${panel.title}: ${JSON.stringify(r.body)}`);
            assert.equal(r.body.results?.[0].error, undefined, panel.title);
            return r.body.results?.[0].series?.length ?? 0;
          };
          // The rollups are written by the server flow's teleinfo-rollup, every minute.
          if (q.includes('"forever".') && !/GROUP BY time\(1d\)/.test(q))
            await waitFor(`${panel.title} draws data`, async () => (await answer()) > 0, 120_000);
          // A day's difference needs two days of readings: those panels are checked on two days of data by
          // test/integration/grafana-dashboard.test.ts.
          else if (!/GROUP BY time\(1d\)/.test(q)) assert.ok(await answer(), `${panel.title} draws data`);
          else await answer();
        }
    });

    test("serial TIC on a Pi container with one line of its .env (TIC_DEVICE): the adapter is readable through dialout, the Pi's TIC tab is the one seeded, and the meter's readings reach InfluxDB", async () => {
      const ticCheckout = cleanCheckout(path.join(work, 'pi-tic'));
      const ticEnv = path.join(ticCheckout, '.env');
      fs.mkdirSync(path.join(ticCheckout, 'docker', 'certs'));
      fs.copyFileSync(
        path.join(checkout, 'docker', 'certs', 'ca.crt'),
        path.join(ticCheckout, 'docker', 'certs', 'ca.crt'),
      );
      const meter = new SimulatedMeter({
        adco: '021999999999',
        contract: 'BASE',
        phases: 1,
        isousc: 30,
        seed: 9,
        origin: Date.now(),
      });
      const ttyPath = path.join(work, 'ttyUSB0');
      line = await SerialLine.open({
        path: ttyPath,
        baud: 1200,
        frame: () => Buffer.from(encodeTicFrame('historic', meter.historicGroups(Date.now())), 'latin1'),
      });
      // What udev makes of a USB serial adapter: root:dialout, 0660.
      const tty = fs.realpathSync(ttyPath);
      fs.chownSync(tty, 0, groupId('dialout'));
      fs.chmodSync(tty, 0o660);
      ticPi = new DockerHost('pi-tic', bridge, imageOf, path.join(work, 'pi-tic-volumes'), {
        [brokerName()]: server.ip('mosquitto'),
      });
      for (const command of piSteps) {
        if (command.startsWith('docker compose'))
          setEnv(ticEnv, {
            PI_ID: 'pi-tic',
            PI_MQTT_PASSWORD: `'tic*pass'`,
            MQTT_BROKER: brokerName(),
            NODE_RED_ADMIN_HASH: SERVER_SECRETS.NODE_RED_ADMIN_HASH,
            NODE_RED_CREDENTIAL_SECRET: crypto.randomBytes(32).toString('hex'),
            ECODEVICES_HOST: '',
            TIC_DEVICE: ttyPath,
          });
        await runStep(command, ticCheckout, () => ticPi, ticEnv);
      }
      await ticPi.healthy('node-red-pi');
      await waitFor(
        "the TIC meter's readings in InfluxDB",
        async () => (await count(`"meter" = '021999999999'`)) >= 2,
        90_000,
      );
    });

    test('passwords changed in .env, then docker compose up -d: every service works with the new ones, the old ones are refused', async () => {
      const oldAdmin = admin();
      setEnv(serverEnv, {
        MQTT_SERVER_PASSWORD: `"srv'pass*2"`,
        MQTT_PI_ACCOUNTS: `'pi-1:pi$pass2 pi-tic:tic*pass'`,
        INFLUX_ADMIN_PASSWORD: `"adm in*'x2"`,
        INFLUX_PASSWORD: `'wr$te"pw2'`,
        INFLUX_READ_PASSWORD: `"rd'pw2"`,
        NODE_RED_ADMIN_HASH: `'${bcrypt.hashSync('editor-pass-2', 8)}'`,
        GRAFANA_ADMIN_PASSWORD: `'gr$fana2'`,
      });
      await upServer();
      setEnv(piEnv, { PI_MQTT_PASSWORD: `'pi$pass2'` });
      await pi.up(composeConfig(composeFiles(piSteps[piSteps.length - 1], piCheckout), piEnv));
      await pi.healthy('node-red-pi');
      const changed = Date.now();
      await waitFor(
        'a reading of the box read by pi-1 stored after the change',
        async () => (await count(`"source" = 'ecodevices' AND time > ${changed}ms`)) > 0,
        90_000,
      );

      const env = environment(serverProject.services.influxdb);
      assert.equal(env.INFLUXDB_ADMIN_PASSWORD, "adm in*'x2");
      assert.equal((await influx.query('SHOW USERS', oldAdmin)).status, 401, "the admin's old password");
      assert.equal(
        await influx.write('probe v=1', `${env.INFLUXDB_WRITE_USER}:wr$te"pw`),
        401,
        "the server's old password",
      );
      const grafana = environment(serverProject.services.grafana);
      assert.equal(
        (await influx.query('SHOW MEASUREMENTS', `${grafana.INFLUX_READ_USER}:rd'pw`)).status,
        401,
        "Grafana's old password",
      );
      assert.equal(
        (
          await influx.query(
            'SHOW MEASUREMENTS',
            `${grafana.INFLUX_READ_USER}:${grafana.INFLUX_READ_PASSWORD}`,
          )
        ).status,
        200,
      );

      const editor = `http://${server.ip('node-red-server')}:1880`;
      assert.equal(await editorToken(editor, EDITOR_PASSWORD), null, "the editor's old password");
      assert.ok(await editorToken(editor, 'editor-pass-2'));
      await assert.rejects(
        mqtt.connectAsync(`mqtts://${server.ip('mosquitto')}:8883`, {
          ca: fs.readFileSync(path.join(checkout, 'docker', 'certs', 'ca.crt')),
          servername: 'mosquitto',
          username: 'server-1',
          password: "srv'pass*",
          clientId: 'teleinfo-server-1',
          protocolVersion: 5,
          reconnectPeriod: 0,
        }),
        /not authori[sz]ed|bad user/i,
        "the server's old MQTT password",
      );
    });

    test('an upgrade (containers made again on the same volumes) keeps the data and the flow deployed in the editor; TELEINFO_RESEED puts the shipped flow back once', async () => {
      const volume = path.join(work, 'server-volumes', 'node-red-server-data');
      const flowIds = (file = 'flows.json') =>
        (JSON.parse(fs.readFileSync(path.join(volume, file), 'utf8')) as { id: string }[]).map((n) => n.id);
      const shipped = (
        JSON.parse(fs.readFileSync(path.join(ROOT, 'flows', 'server.json'), 'utf8')) as { id: string }[]
      ).map((n) => n.id);
      const editor = () => `http://${server.ip('node-red-server')}:1880`;
      const deployEdit = async () => {
        const bearer = (await editorToken(editor(), 'editor-pass-2'))!;
        const headers = { authorization: `Bearer ${bearer}`, 'content-type': 'application/json' };
        const flows = (await (await fetch(`${editor()}/flows`, { headers })).json()) as object[];
        const res = await fetch(`${editor()}/flows`, {
          method: 'POST',
          headers: { ...headers, 'node-red-deployment-type': 'full' },
          body: JSON.stringify([
            ...flows,
            { id: 'edited', type: 'comment', z: 'srv-tab', name: 'edited in the editor', wires: [] },
          ]),
        });
        assert.equal(res.status, 204);
        assert.ok(flowIds().includes('edited'));
      };
      await deployEdit();
      const points = await count('true');
      assert.ok(points > 0);

      await server.down();
      await upServer();
      assert.ok(flowIds().includes('edited'), 'the deployed flow survives the upgrade');
      assert.ok((await count('true')) >= points, 'and the data');

      setEnv(serverEnv, { TELEINFO_RESEED: '2026-12-06' });
      await upServer();
      assert.deepEqual(flowIds(), shipped, 'the shipped flow, back');
      assert.ok(flowIds('flows.json.before-reseed').includes('edited'), 'the replaced flow kept beside it');
      await deployEdit();
      await server.stop('node-red-server');
      await upServer();
      assert.ok(flowIds().includes('edited'), 'a restart with the same TELEINFO_RESEED seeds no second time');
    });

    test("docker/backup.sh, the stack destroyed with its volumes, docker/restore.sh into an empty one: the same points, rollups, policies, dashboard answers, flows, credentials and spool, the Pis carry on into it, and a second restore is refused (a stand-in docker CLI runs the scripts' docker compose on this host; no Grafana server here: files stand for its database)", async () => {
      const volumes = path.join(work, 'server-volumes');
      // Grafana's database and a plugin, as Grafana would have left them in its volume.
      const grafanaData = path.join(volumes, 'grafana-data');
      fs.mkdirSync(path.join(grafanaData, 'plugins', 'a-panel'), { recursive: true });
      fs.writeFileSync(path.join(grafanaData, 'grafana.db'), crypto.randomBytes(256 * 1024));
      fs.writeFileSync(path.join(grafanaData, 'plugins', 'a-panel', 'plugin.json'), '{}');
      execFileSync('chown', ['-R', '472:0', grafanaData]);

      const adminQuery = async (q: string) => {
        const r = await influx.query(q, admin());
        assert.equal(r.status, 200, `${q}: ${JSON.stringify(r.body)}`);
        return (r.body.results?.[0].series ?? []) as { name: string; values: unknown[][] }[];
      };
      /** Every file of a volume, by its path, with a digest of its content. */
      const files = (dir: string): Record<string, string> => {
        const out: Record<string, string> = {};
        for (const f of fs.readdirSync(dir, { recursive: true, encoding: 'utf8' })) {
          const at = path.join(dir, f);
          if (fs.lstatSync(at).isFile())
            out[f] = crypto.createHash('sha256').update(fs.readFileSync(at)).digest('hex');
        }
        return out;
      };
      const to = Date.now() + 3_600_000;
      const grafanaEnv = environment(serverProject.services.grafana);
      const grafanaAccount = `${grafanaEnv.INFLUX_READ_USER}:${grafanaEnv.INFLUX_READ_PASSWORD}`;
      /** What the backup must carry, read from the stack while nothing writes to it. */
      const snapshot = async () => {
        const measurements = (await adminQuery('SHOW MEASUREMENTS')).flatMap((x) =>
          x.values.map((v) => String(v[0])),
        );
        const points: Record<string, unknown> = {};
        for (const policy of ['autogen', 'forever'])
          for (const m of measurements)
            points[`${policy}.${m}`] = await adminQuery(`SELECT * FROM "${policy}"."${m}" GROUP BY *`);
        const meters = (await adminQuery('SHOW TAG VALUES FROM "teleinfo" WITH KEY = "meter"')).flatMap((x) =>
          x.values.map((v) => String(v[1])),
        );
        // Every panel as Grafana asks it, with its read account, over the last year.
        const answers: unknown[] = [];
        for (const panel of dashboard.panels)
          for (const target of panel.targets) {
            const r = await influx.query(
              expand(target.query, { from: to - 400 * 86_400_000, to, interval: '1m' }, meters),
              grafanaAccount,
            );
            assert.equal(r.status, 200, `${panel.title}: ${JSON.stringify(r.body)}`);
            answers.push(r.body);
          }
        return {
          policies: await adminQuery('SHOW RETENTION POLICIES'),
          points,
          answers,
          nodeRed: files(path.join(volumes, 'node-red-server-data')),
          grafana: files(grafanaData),
        };
      };

      // The scripts' docker compose, on whichever server host stands at the time; a hook before each command.
      let beforeCommand: ((argv: string[]) => void | Promise<void>) | undefined;
      const piDir = fs.realpathSync(piCheckout);
      const cli = await serveDockerCli(async (call) => {
        await beforeCommand?.(call.argv);
        const host = call.cwd === piDir ? pi : server;
        return composeCommand(host, composeConfig, (s) => s !== 'grafana')(call);
      });
      const script = (name: string, dir: string, cwd = checkout, env: Record<string, string> = {}) =>
        new Promise<{ status: number | null; output: string }>((resolve) => {
          const p = spawn('sh', [`docker/${name}`, dir], {
            cwd,
            env: { HOME: process.env.HOME, ...env, ...cli.env },
            stdio: ['ignore', 'pipe', 'pipe'],
          });
          let output = '';
          p.stdout.on('data', (d: Buffer) => (output += d.toString()));
          p.stderr.on('data', (d: Buffer) => (output += d.toString()));
          p.on('close', (status) => resolve({ status, output }));
        });
      try {
        // The backup: the stack as it stands when the script starts what it stopped.
        let backedUp: Awaited<ReturnType<typeof snapshot>> | undefined;
        beforeCommand = async (argv) => {
          if (argv[1] === 'start') backedUp ??= await snapshot();
        };
        let started = Date.now();
        const backup = await script('backup.sh', 'backups/today');
        const backupMs = Date.now() - started;
        assert.equal(backup.status, 0, backup.output);
        assert.ok(backedUp, backup.output);
        assert.ok(
          Object.keys(backedUp.points).some((k) => k.startsWith('forever.')) &&
            Object.keys(backedUp.nodeRed).some((f) => f.includes('spool')),
          'rollups and a spool to carry',
        );
        assert.deepEqual(fs.readdirSync(path.join(checkout, 'backups', 'today')).sort(), [
          'backup.txt',
          'grafana.tar',
          'influxdb.tar',
          'node-red-server.tar',
        ]);
        assert.ok(server.runningServices().includes('node-red-server'), 'the server Node-RED started again');

        // Destroyed: containers and volumes (docker compose down -v); a server host that never ran this stack.
        await server.down();
        fs.rmSync(volumes, { recursive: true, force: true });
        server = new DockerHost('server', bridge, imageOf, volumes);

        let restored: Awaited<ReturnType<typeof snapshot>> | undefined;
        beforeCommand = async (argv) => {
          if (argv[1] === 'up' && argv.length === 3) restored ??= await snapshot();
        };
        started = Date.now();
        const restore = await script('restore.sh', 'backups/today');
        const restoreMs = Date.now() - started;
        assert.equal(restore.status, 0, restore.output);
        assert.ok(restored, restore.output);
        assert.deepEqual(restored.policies, backedUp.policies, 'retention policies');
        assert.deepEqual(restored.points, backedUp.points, 'every point of every measurement and policy');
        assert.deepEqual(
          restored.answers,
          backedUp.answers,
          "every dashboard answer, with Grafana's account",
        );
        assert.deepEqual(restored.nodeRed, backedUp.nodeRed, "the server Node-RED's files");
        assert.deepEqual(restored.grafana, backedUp.grafana, "Grafana's files");
        const series = Object.values(backedUp.points).flat() as { values: unknown[] }[];
        console.log(
          `# backup ${backupMs} ms, restore ${restoreMs} ms: ${series.reduce((n, x) => n + x.values.length, 0)} points in ${series.length} series, ${backedUp.answers.length} dashboard answers, ${Object.keys(backedUp.nodeRed).length} Node-RED files, ${Object.keys(backedUp.grafana).length} of Grafana, identical`,
        );
        beforeCommand = undefined;

        // The restored stack runs: the flow deployed in the editor, credentials decrypted, the Pis' readings stored.
        for (const name of ['mosquitto', 'influxdb', 'node-red-server']) await server.healthy(name);
        const flows = JSON.parse(
          fs.readFileSync(path.join(volumes, 'node-red-server-data', 'flows.json'), 'utf8'),
        ) as { id: string }[];
        assert.ok(flows.some((n) => n.id === 'edited'));
        const back = Date.now();
        await waitFor(
          "pi-1's readings stored in the restored stack",
          async () => (await count(`"source" = 'ecodevices' AND time > ${back}ms`)) > 0,
          90_000,
        );

        const again = await script('restore.sh', 'backups/today');
        assert.equal(again.status, 2, again.output);
        assert.match(again.output, /already holds measurements/);
        assert.ok(server.runningServices().includes('node-red-server'), 'nothing stopped');

        // A Pi's userDir, the same way: its compose file named by COMPOSE_FILE.
        const piVolumes = path.join(work, 'pi-volumes');
        const piData = path.join(piVolumes, 'node-red-pi-data');
        const pis = { COMPOSE_FILE: 'docker-compose.pi.yml' };
        let piBackedUp: Record<string, string> | undefined;
        beforeCommand = (argv) => {
          if (argv[1] === 'start') piBackedUp ??= files(piData);
        };
        const piBackup = await script('backup.sh', 'backups/pi', piCheckout, pis);
        assert.equal(piBackup.status, 0, piBackup.output);
        assert.deepEqual(fs.readdirSync(path.join(piCheckout, 'backups', 'pi')).sort(), [
          'backup.txt',
          'node-red-pi.tar',
        ]);
        assert.ok(
          piBackedUp && Object.keys(piBackedUp).some((f) => f.includes('spool')),
          'the Pi has its spool to carry',
        );
        await pi.down();
        fs.rmSync(piVolumes, { recursive: true, force: true });
        pi = new DockerHost('pi', bridge, imageOf, piVolumes, { [brokerName()]: server.ip('mosquitto') });
        let piRestored: Record<string, string> | undefined;
        beforeCommand = (argv) => {
          if (argv[1] === 'up' && argv.length === 3) piRestored ??= files(piData);
        };
        const piRestore = await script('restore.sh', 'backups/pi', piCheckout, pis);
        assert.equal(piRestore.status, 0, piRestore.output);
        assert.deepEqual(piRestored, piBackedUp, "the Pi's files");
        beforeCommand = undefined;
        await pi.healthy('node-red-pi');
        const piBack = Date.now();
        await waitFor(
          "the restored Pi's readings stored",
          async () => (await count(`"source" = 'ecodevices' AND time > ${piBack}ms`)) > 0,
          90_000,
        );
      } finally {
        await cli.close();
      }
    });

    test('the image build: a context without secrets or built files; npm pack writes its tarball where it was told; no npm cache left in the image (read from the Dockerfile)', () => {
      // The checkout now holds .env and the certificates and keys, as a user's does.
      const context = buildContext(checkout);
      assert.ok(fs.existsSync(serverEnv) && fs.existsSync(path.join(checkout, 'docker', 'certs', 'ca.key')));
      for (const f of context)
        assert.doesNotMatch(
          f,
          /^\.env|^docker\/certs\/|(^|\/)node_modules\/|^dist\//,
          `${f} stays out of the build`,
        );
      for (const f of ['package.json', 'package-lock.json', 'tsconfig.json', 'scripts/instance.sh'])
        assert.ok(context.includes(f), `${f} is in the build context`);
      assert.match(
        nodeRedImage.from,
        /^nodered\/node-red:\d+\.\d+\.\d+-20$/,
        'a tag nodered/node-red publishes for Node 20',
      );
      const dockerfile = fs
        .readFileSync(path.join(checkout, 'docker', 'node-red', 'Dockerfile'), 'utf8')
        .replace(/\\\n/g, ' ');
      const finalStage = dockerfile.slice(dockerfile.lastIndexOf('\nFROM '));
      for (const run of finalStage.split('\n').filter((l) => /^RUN .*\bnpm (install|ci)\b/.test(l))) {
        const caches = [...run.matchAll(/\bnpm (?:install|ci)\b[^&]*?--cache (\S+)/g)].map((m) => m[1]);
        assert.equal(
          caches.length,
          [...run.matchAll(/\bnpm (install|ci)\b/g)].length,
          `every npm of "${run}" names its cache`,
        );
        for (const cache of caches) {
          assert.doesNotMatch(cache, /^\/data/);
          assert.match(run, new RegExp(`rm -rf [^&]*${cache}`), 'and the same step removes it');
        }
      }
    });
  },
);

/** The KEY=value lines of an example .env, uncommented: the empty ones are the secrets. */
function exampleEnv(file: string): [string, string][] {
  return fs
    .readFileSync(file, 'utf8')
    .split('\n')
    .filter((l) => /^[A-Z_]+=/.test(l))
    .map((l) => [l.slice(0, l.indexOf('=')), l.slice(l.indexOf('=') + 1)]);
}

test(
  'each compose file stands alone with its own .env: the server, the Pi, the servers override; each refuses to start without one of its secrets, naming it; only the broker is published beyond loopback; every image is pinned',
  { skip: serviceSkip('docker-compose') },
  () => {
    const dir = tempDir('compose-config');
    const projects: ComposeProject[] = [];
    for (const [files, example] of [
      [['docker-compose.yml'], '.env.example'],
      [['docker-compose.pi.yml'], '.env.pi.example'],
      [['docker-compose.yml', 'docker-compose.servers.yml'], '.env.example'],
    ] as const) {
      const values = exampleEnv(path.join(ROOT, example));
      const secrets = values.filter(([, v]) => v === '').map(([k]) => k);
      assert.ok(secrets.length >= 2, `${example} asks for secrets: ${secrets.join(', ')}`);
      const envFile = path.join(dir, `${files.join('+')}.env`);
      const write = (omit?: string) =>
        fs.writeFileSync(
          envFile,
          values
            .filter(([k]) => k !== omit)
            .map(([k, v]) => `${k}=${v || 'x'}\n`)
            .join(''),
        );
      const paths = files.map((f) => path.join(ROOT, f));
      write();
      projects.push(composeConfig(paths, envFile));
      for (const secret of secrets) {
        write(secret);
        assert.throws(
          () => composeConfig(paths, envFile),
          new RegExp(`set ${secret}`),
          `${files.join(' + ')} without ${secret}`,
        );
      }
    }
    const [serverSide, piSide, servers] = projects;
    // The provisioning folders this stack fills, each on its own: the image's others stay visible.
    assert.ok(
      serverSide.services.grafana.volumes!.every((v) => v.split(':')[1] !== '/etc/grafana/provisioning'),
      "Grafana's provisioning folder is not hidden whole",
    );
    assert.deepEqual(Object.keys(piSide.services), ['node-red-pi'], 'a Pi runs nothing but its Node-RED');
    assert.ok(!('node-red-pi' in serverSide.services));

    // Published beyond the host's loopback: the broker's TLS port, nothing else (compose prints a port either way).
    const published = (p: ComposeProject) =>
      Object.values(p.services).flatMap((s) =>
        (s.ports ?? []).map((port) =>
          typeof port === 'string'
            ? port
            : `${(port as { host_ip?: string }).host_ip ?? ''}:${(port as { published: number }).published}`,
        ),
      );
    for (const p of projects)
      assert.deepEqual(
        published(p).filter((port) => !port.startsWith('127.0.0.1:')),
        p === piSide ? [] : [':8883'],
      );
    const ids = Object.entries(servers.services)
      .filter(([name]) => name.startsWith('node-red-server'))
      .map(([, s]) => [s.environment!.MQTT_USER, s.environment!.MQTT_CLIENT_ID]);
    assert.deepEqual(ids.sort(), [
      ['server-1', 'teleinfo-server-1'],
      ['server-2', 'teleinfo-server-2'],
      ['server-3', 'teleinfo-server-3'],
    ]);
    assert.match(
      servers.services.mosquitto.environment!.MQTT_SERVER_ACCOUNTS,
      /^server-1:x server-2:x server-3:x$/,
    );
    for (const p of projects)
      for (const [name, s] of Object.entries(p.services))
        if (s.image !== nodeRedImageName)
          assert.match(
            s.image!,
            /:\d+\.\d+\.\d+$/,
            `${name}: an image tag its project publishes, pinned to a version`,
          );
  },
);

test(
  "docker/grafana/start.sh, with a stand-in for Grafana's CLI and /run.sh that records how it is called (no Grafana here): the admin's password is set again at every start but the first, on stdin",
  { skip: serviceSkip('docker-compose') || containersSkip() },
  async () => {
    const dir = tempDir('grafana-start');
    const envFile = path.join(dir, '.env');
    fs.writeFileSync(
      envFile,
      exampleEnv(path.join(ROOT, '.env.example'))
        .map(([k, v]) => `${k}=${v || 'x'}\n`)
        .join('')
        .replace('GRAFANA_ADMIN_PASSWORD=x', `GRAFANA_ADMIN_PASSWORD='gr$ f*'`),
    );
    const service = composeConfig([path.join(ROOT, 'docker-compose.yml')], envFile).services.grafana;
    const volume = path.join(dir, 'grafana-data');
    fs.mkdirSync(volume);
    fs.chownSync(volume, 472, 0);
    const calls = path.join(volume, 'calls');
    const recorder = (what: string) =>
      `#!/bin/sh\n{ echo "${what} $*"; [ "${what}" = run ] || sed 's/^/stdin /'; } >> /var/lib/grafana/calls\n`;
    const start = async () => {
      const container = startContainer({
        name: 'grafana',
        image: grafanaImage(service.image!.split(':')[1], (root) => {
          root.file('/run.sh', recorder('run'), undefined, 0o755);
          root.file('/usr/share/grafana/bin/grafana', recorder('grafana'), undefined, 0o755);
        }),
        entrypoint: service.entrypoint as string[],
        environment: Object.fromEntries(
          Object.entries(service.environment ?? {}).map(([k, v]) => [k, String(v).replace(/\$\$/g, '$')]),
        ),
        mounts: (service.volumes ?? [])
          .filter((v) => v.startsWith('/'))
          .map((v) => ({ source: v.split(':')[0], target: v.split(':')[1], readonly: true }))
          .concat([{ source: volume, target: '/var/lib/grafana', readonly: false }]),
      });
      assert.equal(await container.wait(), 0, container.logs());
      return fs.readFileSync(calls, 'utf8');
    };
    assert.equal(
      await start(),
      'run \n',
      'first start: Grafana sets the password when it makes its database',
    );
    fs.writeFileSync(path.join(volume, 'grafana.db'), '');
    fs.rmSync(calls);
    assert.equal(
      await start(),
      'grafana cli --homepath /usr/share/grafana --config /etc/grafana/grafana.ini admin reset-admin-password --password-from-stdin\nstdin gr$ f*\nrun \n',
    );
  },
);
