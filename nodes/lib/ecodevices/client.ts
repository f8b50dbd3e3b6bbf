import { Client } from 'undici';

/**
 * HTTP client for one Eco-Devices box. The box is a small embedded web server that users report becomes
 * unstable when polled too fast, so every request to it goes through one queue, one at a time, over one
 * keep-alive connection, whatever the number of nodes polling it.
 */

export interface EcoDevicesClientOptions {
  readonly host: string;
  readonly port?: number;
  readonly https?: boolean;
  readonly timeoutMs?: number;
  readonly user?: string;
  readonly password?: string;
  /** https only: PEM CA, and whether to accept a self-signed certificate. */
  readonly ca?: string;
  readonly rejectUnauthorized?: boolean;
}

export type EcoDevicesErrorKind = 'timeout' | 'unreachable' | 'auth' | 'server' | 'http' | 'format' | 'busy';

export class EcoDevicesRequestError extends Error {
  constructor(
    readonly kind: EcoDevicesErrorKind,
    message: string,
    readonly status?: number,
  ) {
    super(message);
  }
}

export interface EcoDevicesResponse {
  readonly path: string;
  readonly body: Buffer;
}

/** Requests waiting for the box beyond this are refused rather than queued without bound. */
const MAX_QUEUED = 32;

export class EcoDevicesClient {
  readonly origin: string;
  private readonly client: Client;
  private readonly timeoutMs: number;
  private readonly authorization: string | null;
  private tail: Promise<unknown> = Promise.resolve();
  private queued = 0;
  /** Requests sent so far, and the most that were ever in flight at once (1 by construction). */
  readonly stats = { requests: 0, inFlight: 0, maxInFlight: 0 };

  constructor(options: EcoDevicesClientOptions) {
    const scheme = options.https ? 'https' : 'http';
    const port = options.port ?? (options.https ? 443 : 80);
    this.origin = `${scheme}://${options.host}:${port}`;
    this.timeoutMs = options.timeoutMs ?? 5000;
    this.authorization =
      options.user || options.password
        ? `Basic ${Buffer.from(`${options.user ?? ''}:${options.password ?? ''}`).toString('base64')}`
        : null;
    this.client = new Client(this.origin, {
      pipelining: 1,
      keepAliveTimeout: 30_000,
      headersTimeout: this.timeoutMs,
      bodyTimeout: this.timeoutMs,
      connect: {
        timeout: this.timeoutMs,
        ...(options.https
          ? { ca: options.ca || undefined, rejectUnauthorized: options.rejectUnauthorized !== false }
          : {}),
      },
    });
  }

  /** GET `path` once it is this request's turn; rejects with an EcoDevicesRequestError. */
  get(path: string, signal?: AbortSignal): Promise<EcoDevicesResponse> {
    if (this.queued >= MAX_QUEUED) {
      return Promise.reject(
        new EcoDevicesRequestError('busy', `${MAX_QUEUED} requests already wait for ${this.origin}`),
      );
    }
    this.queued++;
    const run = this.tail.then(() => this.send(path, signal));
    this.tail = run.catch(() => undefined).finally(() => this.queued--);
    return run;
  }

  private async send(path: string, signal?: AbortSignal): Promise<EcoDevicesResponse> {
    signal?.throwIfAborted();
    const controller = new AbortController();
    const timer = setTimeout(() => controller.abort(new Error('timeout')), this.timeoutMs);
    const onAbort = () => controller.abort(signal?.reason);
    signal?.addEventListener('abort', onAbort, { once: true });
    this.stats.requests++;
    this.stats.maxInFlight = Math.max(this.stats.maxInFlight, ++this.stats.inFlight);
    try {
      const res = await this.client.request({
        path,
        method: 'GET',
        headers: this.authorization ? { authorization: this.authorization } : {},
        signal: controller.signal,
      });
      const body = Buffer.from(await res.body.arrayBuffer());
      if (res.statusCode === 401 || res.statusCode === 403) {
        throw new EcoDevicesRequestError(
          'auth',
          this.authorization
            ? `${this.origin}${path}: HTTP ${res.statusCode}, the box refused the user name or password`
            : `${this.origin}${path}: HTTP ${res.statusCode}, the box asks for a user name and password`,
          res.statusCode,
        );
      }
      if (res.statusCode >= 500)
        throw new EcoDevicesRequestError(
          'server',
          `${this.origin}${path}: HTTP ${res.statusCode}`,
          res.statusCode,
        );
      if (res.statusCode !== 200)
        throw new EcoDevicesRequestError(
          'http',
          `${this.origin}${path}: HTTP ${res.statusCode}`,
          res.statusCode,
        );
      return { path, body };
    } catch (e) {
      throw this.classify(e, path, controller.signal, signal);
    } finally {
      clearTimeout(timer);
      signal?.removeEventListener('abort', onAbort);
      this.stats.inFlight--;
    }
  }

  private classify(e: unknown, path: string, own: AbortSignal, caller?: AbortSignal): Error {
    if (e instanceof EcoDevicesRequestError) return e;
    if (caller?.aborted) return caller.reason instanceof Error ? caller.reason : new Error('aborted');
    const err = e as Error & { code?: string };
    if (own.aborted || /TIMEOUT/i.test(err.code ?? '') || err.name === 'TimeoutError') {
      return new EcoDevicesRequestError(
        'timeout',
        `${this.origin}${path}: no answer within ${this.timeoutMs} ms`,
      );
    }
    const code = err.code ?? (err.cause as { code?: string } | undefined)?.code;
    return new EcoDevicesRequestError(
      'unreachable',
      `${this.origin}${path}: ${code ? `${code} ` : ''}${err.message}`.trim(),
    );
  }

  async close(): Promise<void> {
    await this.client.destroy();
  }
}
