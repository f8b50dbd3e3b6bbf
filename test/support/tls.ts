import path from 'node:path';

export interface Certificates {
  /** The CA that signed the broker's certificate. */
  readonly ca: string;
  readonly cert: string;
  readonly key: string;
  /** Another CA, which did not sign it: a client trusting only this one must refuse the broker. */
  readonly otherCa: string;
}

// The project's own certificate script (npm run certs), as a user runs it.
// eslint-disable-next-line @typescript-eslint/no-require-imports
const certs = require('../../../scripts/certs.js') as {
  makeCertificates(o: { out: string; hosts: string[]; days?: number }): {
    ca: string;
    cert: string;
    key: string;
  };
};

/** A test CA and a broker certificate for 127.0.0.1, from `npm run certs`; and a CA that signed nothing of it. */
export function makeCertificates(dir: string): Certificates {
  const made = certs.makeCertificates({ out: dir, hosts: ['127.0.0.1', 'localhost'], days: 2 });
  const other = certs.makeCertificates({ out: path.join(dir, 'other'), hosts: ['127.0.0.1'], days: 2 });
  return { ...made, otherCa: other.ca };
}
