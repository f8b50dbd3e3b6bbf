import { HttpError, InfluxDB } from '@influxdata/influxdb-client';
import { gzipSync } from 'node:zlib';
import { Pool } from 'undici';
import { retryAfterMs } from '../retry';
import type { InfluxDatabase, QuerySeries } from './database';

/**
 * How a batch of line protocol reaches InfluxDB, and what its answer means for the batch: written,
 * worth retrying (network, 408, 429, 5xx), a configuration problem that will not fix itself but must not
 * lose the data (401, 403, 404: kept and retried slowly), too large (413: split), or rejected (other 4xx:
 * dead letter).
 */

export type WriteVerdict = 'written' | 'retry' | 'misconfigured' | 'too-large' | 'rejected';

export interface WriteResult {
  readonly verdict: WriteVerdict;
  readonly status?: number;
  readonly message: string;
  readonly retryAfterMs?: number | null;
}

/** Line-protocol records as stored in the spool: the bytes for a raw body, the strings for a client. */
export interface LineBatch {
  /** Each record followed by a newline. */
  readonly data: Buffer;
  readonly lines: readonly string[];
}

export interface InfluxTransport {
  write(batch: LineBatch, signal: AbortSignal): Promise<WriteResult>;
  close(): Promise<void>;
}

export interface TlsOptions {
  readonly ca?: string;
  readonly cert?: string;
  readonly key?: string;
  /** false only when the user switched on "accept self-signed certificates". */
  readonly rejectUnauthorized: boolean;
}

export interface V1Options {
  readonly url: string;
  readonly database: string;
  readonly retentionPolicy?: string;
  readonly user?: string;
  readonly password?: string;
  readonly tls: TlsOptions;
  readonly timeoutMs: number;
  /** Connections kept to InfluxDB: one per write the pipeline has in flight. */
  readonly connections: number;
}

export interface V2Options {
  readonly url: string;
  readonly org: string;
  readonly bucket: string;
  readonly token?: string;
  readonly tls: TlsOptions;
  readonly timeoutMs: number;
}

/**
 * Bodies above this are gzipped, unless InfluxDB is on this machine: there, compressing costs both processes CPU
 * and saves nothing.
 */
export const GZIP_THRESHOLD = 64 * 1024;

function gzipThreshold(url: URL): number {
  const host = url.hostname.replace(/^\[|\]$/g, '');
  return host === 'localhost' || host === '::1' || host.startsWith('127.') ? Infinity : GZIP_THRESHOLD;
}

export function verdictOf(status: number): WriteVerdict {
  if (status >= 200 && status < 300) return 'written';
  if (status === 408 || status === 429 || status >= 500) return 'retry';
  if (status === 401 || status === 403 || status === 404) return 'misconfigured';
  if (status === 413) return 'too-large';
  return 'rejected';
}

function networkFailure(e: unknown, signal: AbortSignal): WriteResult {
  const err = e as Error & { code?: string; cause?: { code?: string } };
  const code = err.code ?? err.cause?.code;
  return {
    verdict: 'retry',
    message: signal.aborted ? 'aborted' : `${code ? `${code} ` : ''}${err.message}`.trim(),
  };
}

/** InfluxDB 1.x `POST /write` (also 1.8+ and 2.x through their v1 compatibility API). */
export class V1Transport implements InfluxTransport {
  private readonly client: Pool;
  private readonly path: string;
  private readonly headers: Record<string, string>;
  private readonly gzipAbove: number;
  private readonly base: string;
  private readonly databaseName: string;

  constructor(options: V1Options) {
    const url = new URL(options.url);
    this.gzipAbove = gzipThreshold(url);
    this.base = url.pathname.replace(/\/+$/, '');
    this.databaseName = options.database;
    const query = new URLSearchParams({ db: options.database, precision: 'ms' });
    if (options.retentionPolicy) query.set('rp', options.retentionPolicy);
    this.path = `${this.base}/write?${query.toString()}`;
    this.headers = { 'content-type': 'text/plain; charset=utf-8' };
    if (options.user || options.password) {
      this.headers.authorization = `Basic ${Buffer.from(`${options.user ?? ''}:${options.password ?? ''}`).toString('base64')}`;
    }
    this.client = new Pool(url.origin, {
      connections: options.connections,
      headersTimeout: options.timeoutMs,
      bodyTimeout: options.timeoutMs,
      keepAliveTimeout: 30_000,
      connect: { timeout: options.timeoutMs, ...options.tls },
    });
  }

  async write(batch: LineBatch, signal: AbortSignal): Promise<WriteResult> {
    let body = batch.data;
    const headers = { ...this.headers };
    if (body.length > this.gzipAbove) {
      body = gzipSync(body, { level: 1 });
      headers['content-encoding'] = 'gzip';
    }
    try {
      const res = await this.client.request({ path: this.path, method: 'POST', headers, body, signal });
      const text = await res.body.text();
      const verdict = verdictOf(res.statusCode);
      if (verdict === 'written') return { verdict, status: res.statusCode, message: 'written' };
      const retryAfter = res.headers['retry-after'];
      return {
        verdict,
        status: res.statusCode,
        message: `HTTP ${res.statusCode}: ${serverMessage(text)}`,
        retryAfterMs: retryAfterMs(Array.isArray(retryAfter) ? retryAfter[0] : retryAfter),
      };
    } catch (e) {
      return networkFailure(e, signal);
    }
  }

  /** InfluxQL statements and writes into any retention policy (rollups, Pi health), over the same connections. */
  readonly database: InfluxDatabase = {
    query: async (statement, signal) => {
      const res = await this.client.request({
        path: `${this.base}/query?${new URLSearchParams({ db: this.databaseName, epoch: 'ms' }).toString()}`,
        method: 'POST',
        headers: { ...this.headers, 'content-type': 'application/x-www-form-urlencoded' },
        body: new URLSearchParams({ q: statement }).toString(),
        signal,
      });
      const text = await res.body.text();
      if (res.statusCode !== 200)
        throw new Error(`InfluxDB query: HTTP ${res.statusCode}: ${serverMessage(text)}`);
      const answer = JSON.parse(text) as { results?: { error?: string; series?: QuerySeries[] }[] };
      const result = answer.results?.[0];
      if (result?.error) throw new Error(`InfluxDB query: ${result.error}`);
      return result?.series ?? [];
    },
    write: async (retentionPolicy, lines, signal) => {
      const query = new URLSearchParams({ db: this.databaseName, precision: 'ms' });
      // '' is the database's default policy.
      if (retentionPolicy) query.set('rp', retentionPolicy);
      const res = await this.client.request({
        path: `${this.base}/write?${query.toString()}`,
        method: 'POST',
        headers: this.headers,
        body: lines.join('\n'),
        signal,
      });
      const text = await res.body.text();
      if (verdictOf(res.statusCode) !== 'written')
        throw new Error(`InfluxDB write: HTTP ${res.statusCode}: ${serverMessage(text)}`);
    },
  };

  async close(): Promise<void> {
    await this.client.destroy();
  }
}

/** InfluxDB 2.x / 3.x (and 1.8+ with token `user:password`, bucket `db/rp`) through @influxdata/influxdb-client. */
export class V2Transport implements InfluxTransport {
  private readonly influx: InfluxDB;
  private readonly gzipAbove: number;
  private readonly path: string;

  constructor(options: V2Options) {
    this.gzipAbove = gzipThreshold(new URL(options.url));
    const query = new URLSearchParams({ org: options.org, bucket: options.bucket, precision: 'ms' });
    this.path = `/api/v2/write?${query.toString()}`;
    this.influx = new InfluxDB({
      url: options.url,
      token: options.token,
      timeout: options.timeoutMs,
      transportOptions: { ...options.tls },
    });
  }

  async write(batch: LineBatch, signal: AbortSignal): Promise<WriteResult> {
    // The transport's request, not the client's WriteApi: the WriteApi buffers, retries by itself and cannot be
    // aborted mid-request, while the spool and our retry policy own all of that.
    try {
      // A string: the transport sends anything else as JSON.
      await this.influx.transport.request(this.path, batch.data.toString('utf8'), {
        method: 'POST',
        headers: { 'content-type': 'text/plain; charset=utf-8' },
        gzipThreshold: this.gzipAbove,
        signal,
      });
      return { verdict: 'written', message: 'written' };
    } catch (e) {
      if (e instanceof HttpError) {
        const header = e.headers?.['retry-after'];
        return {
          verdict: verdictOf(e.statusCode),
          status: e.statusCode,
          message: `HTTP ${e.statusCode}: ${serverMessage(e.body ?? e.message)}`,
          retryAfterMs: retryAfterMs(Array.isArray(header) ? header[0] : header),
        };
      }
      return networkFailure(e, signal);
    }
  }

  async close(): Promise<void> {
    // Nothing pooled beyond Node's agent, which closes idle sockets by itself.
  }
}

/** The `error` / `message` of an InfluxDB JSON error body, or the text itself, shortened. */
function serverMessage(text: string): string {
  try {
    const json = JSON.parse(text) as { error?: string; message?: string };
    const m = json.message ?? json.error;
    if (m) return m.slice(0, 300);
  } catch {
    // not JSON
  }
  return text.trim().slice(0, 300) || 'no message';
}
