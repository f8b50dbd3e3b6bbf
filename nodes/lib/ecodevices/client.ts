import http from 'node:http';
import https from 'node:https';

/**
 * HTTP client for one Eco-Devices box. The box is a small embedded web server that users report becomes
 * unstable when polled too fast, so every request to it goes through one queue, one at a time, over one
 * keep-alive connection, whatever the number of nodes polling it.
 *
 * It runs on the Pi, so it uses Node's own HTTP client: undici (the InfluxDB writer's, on the server) costs a Pi
 * 12 to 20 MiB of resident memory on its own, for one request every few seconds (see README, "The Pi's footprint").
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
/** A page of the box is a few KiB: anything far larger is not the box. */
const MAX_BODY_BYTES = 1024 * 1024;

export class EcoDevicesClient {
  readonly origin: string;
  private readonly agent: http.Agent;
  private readonly transport: typeof http | typeof https;
  private readonly host: string;
  private readonly port: number;
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
    this.host = options.host;
    this.port = port;
    this.transport = options.https ? https : http;
    // One socket, kept open between polls; closed after 30 s idle, before a box that forgets it would.
    const agentOptions = { keepAlive: true, maxSockets: 1, maxFreeSockets: 1, timeout: 30_000 };
    this.agent = options.https
      ? new https.Agent({
          ...agentOptions,
          ca: options.ca || undefined,
          rejectUnauthorized: options.rejectUnauthorized !== false,
        })
      : new http.Agent(agentOptions);
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
      const res = await this.request(path, controller.signal);
      const body = res.body;
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

  /**
   * One GET over the agent's socket: the status and the whole body (bounded), or the error that ended it. A kept
   * socket the box closed just as it was reused fails at once with ECONNRESET: that GET is sent again, once, on a
   * new connection (what Node's documentation advises for `request.reusedSocket`).
   */
  private request(
    path: string,
    signal: AbortSignal,
    retried = false,
  ): Promise<{ statusCode: number; body: Buffer }> {
    return new Promise((resolve, reject) => {
      const req = this.transport.request(
        {
          host: this.host,
          port: this.port,
          path,
          method: 'GET',
          agent: this.agent,
          headers: this.authorization ? { authorization: this.authorization } : {},
          signal,
        },
        (res) => {
          const chunks: Buffer[] = [];
          let bytes = 0;
          res.on('data', (chunk: Buffer) => {
            bytes += chunk.length;
            if (bytes > MAX_BODY_BYTES)
              req.destroy(new EcoDevicesRequestError('format', `${this.origin}${path}: more than 1 MiB`));
            else chunks.push(chunk);
          });
          res.on('end', () => resolve({ statusCode: res.statusCode ?? 0, body: Buffer.concat(chunks) }));
          res.on('error', reject);
        },
      );
      req.on('error', (e: Error & { code?: string }) => {
        if (!retried && req.reusedSocket && e.code === 'ECONNRESET' && !signal.aborted)
          resolve(this.request(path, signal, true));
        else reject(e);
      });
      req.end();
    });
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

  close(): Promise<void> {
    this.agent.destroy();
    return Promise.resolve();
  }
}
