import { backoffDelay, type BackoffPolicy } from '../retry';
import type { EcoDevicesResponse } from './client';
import { EcoDevicesRequestError } from './client';
import {
  decodeEcoDevicesRecord,
  EcoDevicesFormatError,
  jsonRecord,
  parseEcoDevicesXml,
  type EcoDevicesRecord,
  type EcoDevicesSnapshot,
} from './decode';

/**
 * Polling of one Eco-Devices box, without Node-RED: the pages each read mode fetches, a fixed-rate schedule
 * that never overlaps two polls, backoff after failures, and the unreachable / back alerts (one of each per
 * outage, never one per failed poll).
 */

export type ReadMode = 'summary' | 'full';

export const PAGES: Record<ReadMode, readonly string[]> = {
  summary: ['/api/xdevices.json?cmd=10', '/api/xdevices.json?cmd=20'],
  full: ['/status.xml', '/protect/settings/teleinfo1.xml', '/protect/settings/teleinfo2.xml'],
};

export interface PollResult {
  readonly snapshot: EcoDevicesSnapshot;
  /** Each page as received, by path. */
  readonly raw: Record<string, string>;
  /** Instant of the last response. */
  readonly time: Date;
}

type Get = (path: string, signal?: AbortSignal) => Promise<EcoDevicesResponse>;

/** Fetch the pages of a mode one after the other, merge them and decode. */
export async function readEcoDevices(
  get: Get,
  mode: ReadMode,
  device: string,
  signal?: AbortSignal,
): Promise<PollResult> {
  const record: EcoDevicesRecord = {};
  const raw: Record<string, string> = {};
  for (const path of PAGES[mode]) {
    const { body } = await get(path, signal);
    const text = body.toString(mode === 'full' ? 'latin1' : 'utf8');
    raw[path] = text;
    Object.assign(record, mode === 'full' ? xmlPage(text, path) : jsonPage(text, path));
  }
  const time = new Date();
  return { snapshot: decodeEcoDevicesRecord(record, { device, time }), raw, time };
}

function jsonPage(text: string, path: string): EcoDevicesRecord {
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (e) {
    throw new EcoDevicesFormatError(
      `${path}: malformed JSON (${(e as Error).message}): "${text.slice(0, 60)}"`,
    );
  }
  try {
    return jsonRecord(parsed);
  } catch (e) {
    throw new EcoDevicesFormatError(`${path}: ${(e as Error).message}`);
  }
}

function xmlPage(text: string, path: string): EcoDevicesRecord {
  // A page cut short still holds elements; without its closing tag part of the labels would be missing.
  if (!/<\/response>\s*$/.test(text)) {
    throw new EcoDevicesFormatError(`${path}: truncated XML (no closing </response>, ${text.length} bytes)`);
  }
  try {
    return parseEcoDevicesXml(text);
  } catch (e) {
    throw new EcoDevicesFormatError(`${path}: ${(e as Error).message}`);
  }
}

export interface PollerOptions {
  readonly get: Get;
  readonly mode: ReadMode;
  /** Device id: names the alerts, and the meters whose payload carries no ADCO. */
  readonly device: string;
  readonly intervalMs: number;
  /** Consecutive failed polls before one "unreachable" alert. */
  readonly alertAfter: number;
  readonly backoff: BackoffPolicy;
  readonly random?: () => number;
}

export interface UnreachableAlert {
  readonly event: 'unreachable';
  readonly device: string;
  /** First failed poll of the outage (ISO). */
  readonly since: string;
  readonly attempts: number;
  readonly lastError: string;
}

export interface BackAlert {
  readonly event: 'back';
  readonly device: string;
  readonly since: string;
  readonly downtimeMs: number;
  readonly attempts: number;
}

export interface PollerListener {
  result(result: PollResult): void;
  failure(error: Error, consecutive: number, retryInMs: number): void;
  alert(alert: UnreachableAlert | BackAlert): void;
}

export class EcoDevicesPoller {
  private timer: NodeJS.Timeout | null = null;
  private inFlight: AbortController | null = null;
  private running = false;
  private nextDue = 0;
  private failures = 0;
  private outageSince: Date | null = null;
  private alerted = false;
  /** Polls and failures so far; `skipped` counts ticks that found the previous poll still running. */
  readonly counters = { polls: 0, failures: 0, skipped: 0, alerts: 0 };

  constructor(
    private readonly options: PollerOptions,
    private readonly listener: PollerListener,
  ) {}

  get paused(): boolean {
    return !this.running;
  }

  get consecutiveFailures(): number {
    return this.failures;
  }

  start(): void {
    if (this.running) return;
    this.running = true;
    this.nextDue = Date.now();
    this.schedule(0);
  }

  stop(): void {
    this.running = false;
    this.clearTimer();
  }

  /** Poll now (an input message), unless a poll is already running. */
  pollNow(): void {
    if (this.inFlight) {
      this.counters.skipped++;
      return;
    }
    this.clearTimer();
    this.nextDue = Date.now();
    void this.poll();
  }

  /** Abort the request in flight and clear every timer. */
  close(): void {
    this.stop();
    this.inFlight?.abort(new Error('closed'));
    this.inFlight = null;
  }

  private schedule(delayMs: number): void {
    this.clearTimer();
    if (!this.running) return;
    this.timer = setTimeout(() => {
      this.timer = null;
      if (this.inFlight) {
        this.counters.skipped++;
        this.schedule(this.options.intervalMs);
      } else void this.poll();
    }, delayMs);
  }

  private clearTimer(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
  }

  private async poll(): Promise<void> {
    const controller = new AbortController();
    this.inFlight = controller;
    this.counters.polls++;
    try {
      const result = await readEcoDevices(
        this.options.get,
        this.options.mode,
        this.options.device,
        controller.signal,
      );
      if (controller.signal.aborted) return;
      this.inFlight = null;
      this.succeeded(result);
    } catch (e) {
      if (controller.signal.aborted) return;
      this.inFlight = null;
      this.failed(e as Error);
    }
  }

  private succeeded(result: PollResult): void {
    if (this.alerted && this.outageSince) {
      this.counters.alerts++;
      this.listener.alert({
        event: 'back',
        device: this.options.device,
        since: this.outageSince.toISOString(),
        downtimeMs: result.time.getTime() - this.outageSince.getTime(),
        attempts: this.failures,
      });
    }
    this.failures = 0;
    this.outageSince = null;
    this.alerted = false;
    // Fixed rate: the next poll is due one interval after this one was due, not after it ended.
    this.nextDue += this.options.intervalMs;
    const now = Date.now();
    if (this.nextDue < now) this.nextDue = now + this.options.intervalMs;
    this.schedule(this.nextDue - now);
    this.listener.result(result);
  }

  private failed(error: Error): void {
    this.counters.failures++;
    this.failures++;
    this.outageSince ??= new Date();
    // Bad credentials will not fix themselves quickly: wait a full interval at least.
    const floor =
      error instanceof EcoDevicesRequestError && error.kind === 'auth' ? this.options.intervalMs : 0;
    const retryIn = Math.max(floor, backoffDelay(this.failures, this.options.backoff, this.options.random));
    this.nextDue = Date.now() + retryIn;
    this.schedule(retryIn);
    this.listener.failure(error, this.failures, retryIn);
    if (!this.alerted && this.failures >= this.options.alertAfter) {
      this.alerted = true;
      this.counters.alerts++;
      this.listener.alert({
        event: 'unreachable',
        device: this.options.device,
        since: this.outageSince.toISOString(),
        attempts: this.failures,
        lastError: error.message,
      });
    }
  }
}
