import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';

export interface Certificates {
  /** The CA that signed the broker's certificate. */
  readonly ca: string;
  readonly cert: string;
  readonly key: string;
  /** Another CA, which did not sign it: a client trusting only this one must refuse the broker. */
  readonly otherCa: string;
}

const EC_KEY = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes'];

function openssl(dir: string, args: string[]): void {
  execFileSync('openssl', args, { cwd: dir, stdio: 'pipe' });
}

/** A test CA and a broker certificate for 127.0.0.1 (an IP subject alternative name), made with openssl. */
export function makeCertificates(dir: string): Certificates {
  for (const ca of ['ca', 'other-ca'])
    openssl(dir, [
      'req',
      '-x509',
      ...EC_KEY,
      '-keyout',
      `${ca}.key`,
      '-out',
      `${ca}.crt`,
      '-days',
      '2',
      '-subj',
      `/CN=teleinfo test ${ca}`,
    ]);
  openssl(dir, ['req', ...EC_KEY, '-keyout', 'broker.key', '-out', 'broker.csr', '-subj', '/CN=127.0.0.1']);
  fs.writeFileSync(path.join(dir, 'san.ext'), 'subjectAltName=IP:127.0.0.1\n');
  openssl(dir, [
    'x509',
    '-req',
    '-in',
    'broker.csr',
    '-CA',
    'ca.crt',
    '-CAkey',
    'ca.key',
    '-CAcreateserial',
    '-days',
    '2',
    '-extfile',
    'san.ext',
    '-out',
    'broker.crt',
  ]);
  return {
    ca: path.join(dir, 'ca.crt'),
    cert: path.join(dir, 'broker.crt'),
    key: path.join(dir, 'broker.key'),
    otherCa: path.join(dir, 'other-ca.crt'),
  };
}

/** A mosquitto password file with one account. */
export function passwordFile(dir: string, user: string, password: string): string {
  const file = path.join(dir, 'passwd');
  execFileSync('mosquitto_passwd', ['-b', '-c', file, user, password], { stdio: 'pipe' });
  return file;
}
