'use strict';
// npm run certs -- [--out DIR] [--host NAME ...] [--client NAME ...] [--days N]
// The TLS material of a deployment, made with openssl: a CA (kept if DIR already has one, so adding a host or a
// client does not invalidate the certificates out there), the broker's certificate for every --host (DNS names
// and IP addresses: the names the Pis reach it by; default localhost and 127.0.0.1) and for mosquitto, its name on
// the compose network, which the server Node-RED connects to; and a client certificate per --client. Private keys
// are written readable by their owner only.
const { execFileSync } = require('node:child_process');
const fs = require('node:fs');
const net = require('node:net');
const path = require('node:path');

/** The broker's name on the compose network (docker-compose.yml's service), in every broker certificate. */
const COMPOSE_NAME = 'mosquitto';
const EC_KEY = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes'];

function parse(argv) {
  const options = {
    out: path.resolve(__dirname, '..', 'docker', 'certs'),
    hosts: [],
    clients: [],
    days: 825,
  };
  for (let i = 0; i < argv.length; i++) {
    const value = argv[i + 1];
    switch (argv[i]) {
      case '--out':
        options.out = path.resolve(value);
        break;
      case '--host':
        options.hosts.push(value);
        break;
      case '--client':
        options.clients.push(value);
        break;
      case '--days':
        options.days = Number(value);
        break;
      default:
        throw new Error(`unknown option ${argv[i]} (use --out, --host, --client, --days)`);
    }
    if (value === undefined) throw new Error(`${argv[i]} needs a value`);
    i++;
  }
  if (options.hosts.length === 0) options.hosts.push('localhost', '127.0.0.1');
  return options;
}

/** Make the CA if missing, then the broker's and the clients' certificates. Returns the files. */
function makeCertificates({ out, hosts, clients = [], days = 825 }) {
  fs.mkdirSync(out, { recursive: true });
  const openssl = (args) => execFileSync('openssl', args, { cwd: out, stdio: 'pipe' });
  const ca = path.join(out, 'ca.crt');
  if (!fs.existsSync(ca)) {
    openssl([
      'req',
      '-x509',
      ...EC_KEY,
      '-keyout',
      'ca.key',
      '-out',
      'ca.crt',
      '-days',
      String(days),
      '-subj',
      '/CN=teleinfo CA',
    ]);
  }
  const sign = (name, ext) => {
    openssl(['req', ...EC_KEY, '-keyout', `${name}.key`, '-out', `${name}.csr`, '-subj', `/CN=${ext.cn}`]);
    fs.writeFileSync(path.join(out, `${name}.ext`), ext.lines.join('\n') + '\n');
    openssl([
      'x509',
      '-req',
      '-in',
      `${name}.csr`,
      '-CA',
      'ca.crt',
      '-CAkey',
      'ca.key',
      '-CAcreateserial',
      '-days',
      String(days),
      '-extfile',
      `${name}.ext`,
      '-out',
      `${name}.crt`,
    ]);
    fs.rmSync(path.join(out, `${name}.csr`));
    fs.rmSync(path.join(out, `${name}.ext`));
    fs.chmodSync(path.join(out, `${name}.key`), 0o600);
  };
  const names = hosts.includes(COMPOSE_NAME) ? hosts : [...hosts, COMPOSE_NAME];
  const san = names.map((h) => (net.isIP(h) ? `IP:${h}` : `DNS:${h}`)).join(',');
  sign('broker', { cn: hosts[0], lines: [`subjectAltName=${san}`, 'extendedKeyUsage=serverAuth'] });
  for (const client of clients) sign(client, { cn: client, lines: ['extendedKeyUsage=clientAuth'] });
  fs.chmodSync(path.join(out, 'ca.key'), 0o600);
  return {
    ca,
    cert: path.join(out, 'broker.crt'),
    key: path.join(out, 'broker.key'),
    clients: Object.fromEntries(
      clients.map((c) => [c, { cert: path.join(out, `${c}.crt`), key: path.join(out, `${c}.key`) }]),
    ),
  };
}

module.exports = { makeCertificates };

if (require.main === module) {
  try {
    const options = parse(process.argv.slice(2));
    const made = makeCertificates(options);
    console.log(`CA ${made.ca} (give it to every Pi: MQTT_CA_FILE)`);
    console.log(`broker ${made.cert} for ${[...new Set([...options.hosts, COMPOSE_NAME])].join(', ')}`);
    for (const [name, c] of Object.entries(made.clients)) console.log(`client ${name}: ${c.cert}`);
  } catch (e) {
    console.error(`certs: ${e.message}`);
    process.exit(2);
  }
}
