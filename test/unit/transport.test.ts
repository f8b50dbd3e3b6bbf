import assert from 'node:assert/strict';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { describe, test } from 'node:test';
import { V1Transport, V2Transport } from '../../nodes/lib/influx/transport';

describe('InfluxDB transports against a server that never answers (a plain HTTP server standing for a hung InfluxDB)', () => {
  for (const [name, make] of [
    [
      '1.x',
      (url: string) =>
        new V1Transport({
          url,
          database: 'db',
          tls: { rejectUnauthorized: true },
          timeoutMs: 60_000,
          connections: 1,
        }),
    ],
    [
      '2.x',
      (url: string) =>
        new V2Transport({
          url,
          org: 'o',
          bucket: 'b',
          tls: { rejectUnauthorized: true },
          timeoutMs: 60_000,
        }),
    ],
  ] as const) {
    test(`${name}: aborting really aborts the request in flight`, async () => {
      let closed!: () => void;
      const connectionClosed = new Promise<void>((r) => (closed = r));
      const server = http.createServer((req) => req.socket.on('close', () => closed()));
      await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
      const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
      const transport = make(url);
      const abort = new AbortController();
      const batch = { data: Buffer.from('m v=1i 1\n'), lines: ['m v=1i 1'] };
      const pending = transport.write(batch, abort.signal);
      await new Promise((r) => setTimeout(r, 100));
      abort.abort();
      const result = await pending;
      assert.equal(result.verdict, 'retry');
      await connectionClosed; // the server saw the request go away
      await transport.close();
      server.closeAllConnections();
      await new Promise((r) => server.close(r));
    });
  }
});
