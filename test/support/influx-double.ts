import http from 'node:http';
import type { AddressInfo } from 'node:net';

/**
 * A TEST DOUBLE of an InfluxDB 2.x server: no real 2.x server exists on this machine (influxd is 1.6 and
 * victoria-metrics does not implement 2.x auth or error semantics), so this one answers `/api/v2/write`
 * with the status codes and bodies InfluxDB 2.x documents, from a script of answers, and records what it got.
 */
export interface ScriptedAnswer {
  readonly status: number;
  readonly body?: string;
  readonly headers?: Record<string, string>;
}

export interface InfluxDouble {
  readonly url: string;
  /** Every write received: its time, lines, and the answer given. */
  readonly writes: { at: number; lines: string[]; status: number; token: string | undefined }[];
  /** Answers for the next writes, in order; when empty, 204. */
  readonly script: ScriptedAnswer[];
  close(): Promise<void>;
}

export async function startInfluxDouble(): Promise<InfluxDouble> {
  const writes: InfluxDouble['writes'] = [];
  const script: ScriptedAnswer[] = [];
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const answer = script.shift() ?? { status: 204 };
      const lines = Buffer.concat(chunks).toString().split('\n').filter(Boolean);
      writes.push({ at: Date.now(), lines, status: answer.status, token: req.headers.authorization });
      res.writeHead(answer.status, { 'content-type': 'application/json', ...answer.headers });
      res.end(answer.body ?? '');
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    writes,
    script,
    close: () =>
      new Promise<void>((r) => {
        server.closeAllConnections();
        server.close(() => r());
      }),
  };
}

export const v2Error = (
  status: number,
  code: string,
  message: string,
  headers?: Record<string, string>,
): ScriptedAnswer => ({
  status,
  body: JSON.stringify({ code, message }),
  headers,
});
