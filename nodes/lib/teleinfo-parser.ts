import { decodeEcoDevicesPayload, looksLikeEcoDevices } from './ecodevices/decode';
import { EmissionFilter, type EmitPolicy } from './emission';
import { describePayload, isReading, readingFromTicFrame, ReadingError, type Reading } from './reading';
import { newCounters, TicStreamDecoder, type TicCounters } from './tic/decoder';
import type { TicMode } from './tic/labels';

/**
 * Everything the teleinfo-parse node does, without Node-RED: turn any accepted input into normalized
 * readings, apply the emission policy and the label filter, and say what was wrong with bad input.
 */

export type { EmitPolicy } from './emission';

export interface ParserOptions {
  readonly mode: TicMode | 'auto';
  readonly emit: EmitPolicy;
  /** With `interval`: at most one reading per meter per this many seconds (of reading time). */
  readonly intervalSeconds: number;
  /** Keep only these labels in `values`; empty keeps all. */
  readonly labels: readonly string[];
  /** Eco-Devices payloads without an ADCO name their meters after this device id. */
  readonly device: string;
}

export interface ParseOutcome {
  readonly readings: Reading[];
  readonly errors: string[];
  /** TIC groups of this input that passed their checksum (what tells a serial line's baud is right). */
  readonly validGroups: number;
}

export interface ParserCounters extends TicCounters {
  readings: number;
  suppressed: number;
  invalidInputs: number;
}

/** Distinct serial streams (msg.port / msg.topic) decoded side by side; the oldest is forgotten past this. */
const MAX_STREAMS = 16;
// eslint-disable-next-line no-control-regex -- STX, ETX and EOT are what this looks for
const CONTROL = /[\x02\x03\x04\n\r]/;

export class TeleinfoParser {
  private readonly streams = new Map<string, TicStreamDecoder>();
  private readonly emission: EmissionFilter;
  private readonly retiredCounters = newCounters();
  private readonly own = { readings: 0, suppressed: 0, invalidInputs: 0 };
  private readonly labelSet: ReadonlySet<string> | null;
  lastMode: TicMode | 'ecodevices' | null = null;
  lastMeter: string | null = null;

  constructor(private readonly options: ParserOptions) {
    this.labelSet = options.labels.length > 0 ? new Set(options.labels) : null;
    this.emission = new EmissionFilter(options.emit, options.intervalSeconds);
  }

  get counters(): ParserCounters {
    const total = { ...this.retiredCounters, ...this.own };
    for (const decoder of this.streams.values()) {
      for (const [k, v] of Object.entries(decoder.counters)) total[k as keyof TicCounters] += v;
    }
    return total;
  }

  parse(payload: unknown, stream: string, now: Date): ParseOutcome {
    const readings: Reading[] = [];
    const errors: string[] = [];
    let validGroups = 0;
    try {
      validGroups = this.dispatch(payload, stream, now, readings, errors);
    } catch (e) {
      this.own.invalidInputs++;
      errors.push((e as Error).message);
    }
    const emitted = readings.map((r) => this.filterLabels(r)).filter((r) => this.emission.admit(r));
    this.own.readings += emitted.length;
    this.own.suppressed += readings.length - emitted.length;
    const last = emitted[emitted.length - 1];
    if (last) this.lastMeter = last.meter;
    return { readings: emitted, errors, validGroups };
  }

  /** The serial line was lost or reopened: every frame in progress is dropped (counted as interrupted). */
  lineLost(): string[] {
    const errors: string[] = [];
    for (const decoder of this.streams.values()) {
      decoder.lineLost();
      for (const e of decoder.takeErrors()) errors.push(`TIC ${e.kind} error: ${e.message}`);
    }
    return errors;
  }

  /** Decode one input into `readings` and `errors`; returns how many TIC groups passed their checksum. */
  private dispatch(input: unknown, stream: string, now: Date, readings: Reading[], errors: string[]): number {
    let payload = input;
    if (typeof payload === 'string' && /^\s*[[{]/.test(payload)) {
      try {
        payload = JSON.parse(payload);
      } catch (e) {
        throw new Error(`malformed JSON: ${(e as Error).message}`);
      }
    }
    if (Array.isArray(payload) && payload.length > 0 && payload.every(isReading)) {
      readings.push(...payload);
      return 0;
    }
    if (isReading(payload)) {
      readings.push(payload);
      return 0;
    }
    if (looksLikeEcoDevices(payload)) {
      const snapshot = decodeEcoDevicesPayload(payload, { device: this.options.device, time: now });
      if (snapshot.readings.length > 0) this.lastMode = 'ecodevices';
      readings.push(...snapshot.readings);
      return 0;
    }
    if (typeof payload === 'string' || payload instanceof Uint8Array) {
      return this.decodeTic(payload, stream, now, readings, errors);
    }
    throw new Error(
      `teleinfo-parse expects raw TIC (Buffer or string), Eco-Devices JSON or XML, or a normalized reading; got ${describePayload(payload)}`,
    );
  }

  private decodeTic(
    chunk: string | Uint8Array,
    stream: string,
    now: Date,
    readings: Reading[],
    errors: string[],
  ): number {
    // A line without any TIC control byte is one group, as a line-splitting reader delivers it.
    const bytes = typeof chunk === 'string' && !CONTROL.test(chunk) ? `\n${chunk}\r` : chunk;
    const decoder = this.decoder(stream);
    // Groups that passed their checksum end up counted in one of these two, whatever their frame became.
    const before = decoder.counters.groups + decoder.counters.partialGroups;
    const { frames, errors: ticErrors } = decoder.push(bytes);
    for (const e of ticErrors) errors.push(`TIC ${e.kind} error: ${e.message}`);
    for (const frame of frames) {
      this.lastMode = frame.mode;
      try {
        readings.push(readingFromTicFrame(frame, now));
      } catch (e) {
        if (!(e instanceof ReadingError)) throw e;
        this.own.invalidInputs++;
        errors.push(e.message);
      }
    }
    return decoder.counters.groups + decoder.counters.partialGroups - before;
  }

  private decoder(stream: string): TicStreamDecoder {
    let decoder = this.streams.get(stream);
    if (!decoder) {
      if (this.streams.size >= MAX_STREAMS) {
        const [oldest, retired] = this.streams.entries().next().value as [string, TicStreamDecoder];
        for (const [k, v] of Object.entries(retired.counters))
          this.retiredCounters[k as keyof TicCounters] += v;
        this.streams.delete(oldest);
      }
      decoder = new TicStreamDecoder({ mode: this.options.mode });
      this.streams.set(stream, decoder);
    }
    return decoder;
  }

  private filterLabels(reading: Reading): Reading {
    if (!this.labelSet) return reading;
    const values: Record<string, number | string> = {};
    for (const [k, v] of Object.entries(reading.values)) if (this.labelSet.has(k)) values[k] = v;
    return { ...reading, values };
  }
}

/** `teleinfo/{meter}` → `teleinfo/021030167535`; MQTT wildcards and levels in ids are replaced. */
export function renderTopic(pattern: string, reading: Reading): string {
  const safe = (s: string) => s.replace(/[+#/\s]/g, '_');
  return pattern.replace(/\{meter\}/g, safe(reading.meter)).replace(/\{source\}/g, reading.source);
}
