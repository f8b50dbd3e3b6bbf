import http from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { HISTORIC_INDEX_LABELS } from '../tic/labels';
import { hash01, SimulatedMeter, type MeterConfig, type MeterState } from './meter';

/**
 * A simulated GCE Eco-Devices (v1) box: the endpoints, encodings and quirks that
 * reference/teleinfo-domain.md documents (JSON cmd=10/20 with dotted PTEC, ISO-8859-1 XML pages with undotted
 * PTEC, `----` for an input without a meter, float counters, Basic auth when protection is on), plus faults
 * on demand and an admin API under `/__sim/` for tests.
 */

/** The simulation clock: an instant that runs at `speed` simulated seconds per real second (0 = frozen). */
export class SimClock {
  private base: number;
  private realBase = Date.now();

  constructor(
    start: number = Date.now(),
    private speed = 1,
  ) {
    this.base = start;
  }

  now(): number {
    return this.base + (Date.now() - this.realBase) * this.speed;
  }

  set(options: { time?: number; speed?: number; advanceMs?: number }): void {
    this.base = options.time ?? this.now();
    this.realBase = Date.now();
    if (options.advanceMs) this.base += options.advanceMs;
    if (options.speed !== undefined) this.speed = options.speed;
  }
}

/** A pulse counter (water in litres, gas in m³ with 3 decimals as some boxes send it). */
export class SimulatedCounter {
  private slot: number;
  private total: number;
  private mark: { time: number; index: number } | null = null;

  constructor(
    private readonly seed: number,
    private readonly origin: number,
    private readonly peakPerHour: number,
    private readonly decimals: number,
  ) {
    this.slot = Math.floor(origin / 60_000);
    this.total = this.initial();
  }

  private initial(): number {
    return hash01(this.seed, 17) * (this.decimals > 0 ? 5000 : 500_000);
  }

  private rate(slot: number): number {
    const hour = (slot / 60 + 1) % 24;
    const active = hour >= 6.5 && hour < 23 ? 1 : 0.05;
    return this.peakPerHour * active * hash01(this.seed, 19, slot);
  }

  /** Total at `time` (monotone); an earlier time than already asked restarts from the origin. */
  indexAt(time: number): number {
    const slot = Math.floor(Math.max(time, this.origin) / 60_000);
    if (slot < this.slot) {
      this.slot = Math.floor(this.origin / 60_000);
      this.total = this.initial();
    }
    for (; this.slot < slot; this.slot++) this.total += this.rate(this.slot) / 60;
    const f = 10 ** this.decimals;
    return Math.floor(this.total * f) / f;
  }

  /** Consumption from `from` to `to`. The total at `from` is remembered, so asking again for the same day
   * does not replay the counter from its origin. */
  since(from: number, to: number): number {
    if (this.mark?.time !== from) this.mark = { time: from, index: this.indexAt(from) };
    return Math.round((this.indexAt(to) - this.mark.index) * 1000) / 1000;
  }

  flowAt(time: number): number {
    return Math.round(this.rate(Math.floor(time / 60_000)));
  }
}

export interface BoxConfig {
  readonly hostname: string;
  /** Téléinfo inputs T1 and T2; null when nothing is connected. */
  readonly inputs: readonly [MeterConfig | null, MeterConfig | null];
  readonly seed: number;
  readonly origin: number;
  readonly user?: string;
  readonly password?: string;
}

export interface Faults {
  /** Delay before each answer. */
  latencyMs?: number;
  /** Accept the request and never answer. */
  timeout?: boolean;
  /** Answer with this HTTP status (500, 401, 503…) instead of the page. */
  status?: number;
  /** Junk with a newline in T1_DEMAIN, as boxes send on non-Tempo contracts. */
  garbageDemain?: boolean;
  /** Cut XML pages short. */
  truncatedXml?: boolean;
  /** Send JSON that does not parse. */
  malformedJson?: boolean;
  /** Stop listening for this long (connection refused), then listen again on the same port. */
  offlineMs?: number;
  /** Apply the faults to this many requests only, then clear them. */
  times?: number;
}

/**
 * What a test or a demo makes a meter do (POST /__sim/events, or the CLI's --spike, --overrun, --tomorrow-red,
 * --ejp, --index-back): durations in seconds of the simulated clock, from the moment they are set.
 */
export interface SimEvents {
  /** Which meter: 1 (T1, default) or 2 (T2). */
  input?: 1 | 2;
  /** Apparent power forced to this VA for `spikeSeconds`. */
  spikeVa?: number;
  spikeSeconds?: number;
  /** ADPS (the current) sent for this long: the subscribed power is exceeded. */
  overrunSeconds?: number;
  /** Tomorrow announced red (a Tempo meter's DEMAIN), until set false. */
  tomorrowRed?: boolean;
  /** An EJP notice (PEJP 30) for this long. */
  ejpSeconds?: number;
  /** Every index this many Wh lower from now on: a bad read or a meter swap. */
  indexBackWh?: number;
}

/** The events of one input, as instants of the simulated clock. */
interface ActiveEvents {
  spike?: { va: number; until: number };
  overrunUntil?: number;
  tomorrowRed?: boolean;
  ejpUntil?: number;
  indexBackWh?: number;
}

export interface RequestLogEntry {
  readonly path: string;
  /** Real time (ms since epoch) the request arrived. */
  readonly at: number;
}

const LOG_LIMIT = 10_000;

export class EcoDevicesSimulator {
  readonly meters: readonly (SimulatedMeter | null)[];
  readonly counters: readonly [SimulatedCounter, SimulatedCounter];
  private server: http.Server | null = null;
  private readonly sockets = new Set<Socket>();
  private faults: Faults = {};
  private readonly events: [ActiveEvents, ActiveEvents] = [{}, {}];
  private inFlight = 0;
  private offlineTimer: NodeJS.Timeout | null = null;
  readonly stats = { requests: 0, maxConcurrent: 0, log: [] as RequestLogEntry[] };
  port = 0;

  constructor(
    readonly config: BoxConfig,
    readonly clock: SimClock,
  ) {
    this.meters = config.inputs.map((m) => (m ? new SimulatedMeter(m) : null));
    this.counters = [
      new SimulatedCounter(config.seed * 31 + 1, config.origin, 600, 0),
      new SimulatedCounter(config.seed * 31 + 2, config.origin, 1.2, 3),
    ];
  }

  async listen(port = 0, host = '127.0.0.1'): Promise<number> {
    const server = http.createServer((req, res) => void this.handle(req, res));
    server.keepAliveTimeout = 60_000;
    server.on('connection', (s) => {
      this.sockets.add(s);
      s.on('close', () => this.sockets.delete(s));
    });
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(port, host, () => resolve());
    });
    this.server = server;
    this.port = (server.address() as AddressInfo).port;
    return this.port;
  }

  /** Open client connections (keep-alive sockets included). */
  get connections(): number {
    return this.sockets.size;
  }

  /** Make a meter spike, overrun, announce a red day, send an EJP notice or go back on its indexes. */
  setEvents(e: SimEvents): ActiveEvents {
    const now = this.clock.now();
    const ev = this.events[(e.input ?? 1) - 1];
    if (e.spikeVa !== undefined) ev.spike = { va: e.spikeVa, until: now + (e.spikeSeconds ?? 60) * 1000 };
    if (e.overrunSeconds !== undefined) ev.overrunUntil = now + e.overrunSeconds * 1000;
    if (e.tomorrowRed !== undefined) ev.tomorrowRed = e.tomorrowRed;
    if (e.ejpSeconds !== undefined) ev.ejpUntil = now + e.ejpSeconds * 1000;
    if (e.indexBackWh !== undefined) ev.indexBackWh = (ev.indexBackWh ?? 0) + e.indexBackWh;
    return { ...ev };
  }

  /** A meter's state at `now`, with the events set on it. */
  stateOf(input: number, now: number): MeterState | null {
    const meter = this.meters[input];
    if (!meter) return null;
    const s = meter.state(now);
    const ev = this.events[input];
    const back = ev.indexBackWh ?? 0;
    const spiking = ev.spike && now < ev.spike.until;
    return {
      ...s,
      papp: spiking ? ev.spike!.va : s.papp,
      currents: spiking
        ? s.currents.map(() => Math.ceil(ev.spike!.va / 230 / s.currents.length))
        : s.currents,
      indexes: back
        ? Object.fromEntries(Object.entries(s.indexes).map(([l, v]) => [l, Math.max(1, v - back)]))
        : s.indexes,
      tomorrow: ev.tomorrowRed ? 'ROUGE' : s.tomorrow,
    };
  }

  private overrunning(input: number, now: number): boolean {
    return (this.events[input].overrunUntil ?? 0) > now;
  }

  private ejpNotice(input: number, now: number): boolean {
    return (this.events[input].ejpUntil ?? 0) > now;
  }

  setFaults(faults: Faults): void {
    this.faults = { ...faults };
    if (faults.offlineMs) void this.goOffline(faults.offlineMs);
  }

  /** Back online now, on the same port, after `offlineMs`. */
  async online(): Promise<void> {
    this.faults = {};
    if (!this.offlineTimer) return;
    clearTimeout(this.offlineTimer);
    this.offlineTimer = null;
    await this.listen(this.port);
  }

  async close(): Promise<void> {
    if (this.offlineTimer) clearTimeout(this.offlineTimer);
    this.offlineTimer = null;
    await this.stopListening();
  }

  private async stopListening(): Promise<void> {
    const server = this.server;
    this.server = null;
    if (!server) return;
    const closed = new Promise<void>((r) => server.close(() => r()));
    for (const s of this.sockets) s.destroy();
    await closed;
  }

  private async goOffline(ms: number): Promise<void> {
    const port = this.port;
    await this.stopListening();
    this.offlineTimer = setTimeout(() => {
      this.offlineTimer = null;
      this.faults = { ...this.faults, offlineMs: 0 };
      void this.listen(port);
    }, ms);
  }

  /** Whether the request has the box's Basic credentials, when protection is on; answered 401 if not. */
  private authorized(req: http.IncomingMessage, res: http.ServerResponse): boolean {
    if (this.config.user === undefined && this.config.password === undefined) return true;
    const expected = `Basic ${Buffer.from(`${this.config.user ?? ''}:${this.config.password ?? ''}`).toString('base64')}`;
    if (req.headers.authorization === expected) return true;
    res.writeHead(401, { 'www-authenticate': 'Basic realm="Protected"', 'content-type': 'text/html' });
    res.end('<html><body>401 Unauthorized: Password required</body></html>');
    return false;
  }

  private async handle(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', 'http://sim');
    // The admin API is behind the box's own password when it has one.
    if (url.pathname.startsWith('/__sim/'))
      return this.authorized(req, res) ? this.admin(url, req, res) : undefined;
    this.stats.requests++;
    if (this.stats.log.length >= LOG_LIMIT) this.stats.log.shift();
    this.stats.log.push({ path: url.pathname + url.search, at: Date.now() });
    this.stats.maxConcurrent = Math.max(this.stats.maxConcurrent, ++this.inFlight);
    res.on('close', () => this.inFlight--);
    const faults = this.faults;
    if (faults.times !== undefined && --faults.times <= 0) this.faults = {};
    if (faults.latencyMs) await new Promise((r) => setTimeout(r, faults.latencyMs));
    if (faults.timeout) return; // the socket stays open until the client gives up
    if (!this.authorized(req, res)) return;
    if (faults.status) {
      res.writeHead(faults.status, { 'content-type': 'text/html' });
      return void res.end(`<html><body>${faults.status}</body></html>`);
    }
    const now = this.clock.now();
    const page = this.page(url, now, faults);
    if (!page) {
      res.writeHead(404, { 'content-type': 'text/html' });
      return void res.end('<html><body>404: File not found</body></html>');
    }
    res.writeHead(200, { 'content-type': page.type, connection: 'keep-alive' });
    res.end(page.body);
  }

  private page(url: URL, now: number, faults: Faults): { type: string; body: Buffer } | null {
    const xml = (text: string) => {
      const full = `<?xml version="1.0" encoding="ISO-8859-1"?>\n<response>\n<!-- GCE ELectronics - XML - XDEVICES - ECO-DEVICES - Copyright 2013 -->\n<!-- Télé-information (simulateur) -->\n${text}</response>\n`;
      const body = Buffer.from(full, 'latin1');
      return {
        type: 'text/xml',
        body: faults.truncatedXml ? body.subarray(0, Math.floor(body.length / 2)) : body,
      };
    };
    switch (url.pathname) {
      case '/api/xdevices.json': {
        const cmd = url.searchParams.get('cmd');
        const json = cmd === '10' ? this.cmd10(now) : cmd === '20' ? this.cmd20(now) : null;
        if (!json) return null;
        const text = JSON.stringify(json);
        return {
          type: 'application/json',
          body: Buffer.from(faults.malformedJson ? text.slice(0, -7) : text),
        };
      }
      case '/status.xml':
        return xml(this.statusXml(now));
      case '/protect/settings/teleinfo1.xml':
        return xml(this.teleinfoXml(0, now, faults));
      case '/protect/settings/teleinfo2.xml':
        return xml(this.teleinfoXml(1, now, faults));
      default:
        return null;
    }
  }

  cmd10(now: number): Record<string, string | number> {
    const out: Record<string, string | number> = { product: 'Eco-devices' };
    this.meters.forEach((meter, i) => {
      const p = `T${i + 1}_`;
      if (!meter) {
        Object.assign(out, { [`${p}PTEC`]: '----', [`${p}PAPP`]: 0, [`${p}BASE`]: 0 });
        return;
      }
      const s = this.stateOf(i, now)!;
      out[`${p}PTEC`] = s.ptec;
      out[`${p}PAPP`] = s.papp;
      out[`${p}BASE`] = s.indexes.BASE ?? 0;
      // Assumed from old Domoticz code: the indexes of other contracts appear under their labels.
      for (const label of meter.indexLabels) if (label !== 'BASE') out[`${p}${label}`] = s.indexes[label]!;
    });
    out.INDEX_C1 = this.counters[0].indexAt(now);
    out.INDEX_C2 = this.counters[1].indexAt(now);
    return out;
  }

  private midnight(now: number): number {
    const local = now + 3_600_000;
    return now - (local % 86_400_000);
  }

  cmd20(now: number): Record<string, string | number> {
    const start = Math.max(this.midnight(now), this.config.origin);
    return {
      product: 'Eco-devices',
      Day_C1: this.counters[0].since(start, now),
      Day_C2: this.counters[1].since(start, now),
    };
  }

  private statusXml(now: number): string {
    const d = new Date(now + 3_600_000);
    const lines: string[] = [
      `<date>${Math.floor(now / 86_400_000) - 10_957}</date>`,
      `<time0>${String(d.getUTCHours()).padStart(2, '0')}:${String(d.getUTCMinutes()).padStart(2, '0')}</time0>`,
      `<config_hostname>${this.config.hostname.padEnd(15, ' ')}</config_hostname>`,
      `<config_mac>00:04:A3:00:00:${(this.config.seed & 0xff).toString(16).toUpperCase().padStart(2, '0')}</config_mac>`,
      `<http_port>${this.port}</http_port>`,
    ];
    const states = this.meters.map((_, i) => this.stateOf(i, now));
    for (const label of ['PPAP', 'PAPP'])
      states.forEach((s, i) => lines.push(el(`T${i + 1}_${label}`, s ? s.papp : 0)));
    states.forEach((s, i) => lines.push(el(`T${i + 1}_PTEC`, s ? undotted(s.ptec) : '----')));
    this.meters.forEach((m, i) => lines.push(el(`T${i + 1}_ISOUSC`, m ? m.config.isousc : 0)));
    states.forEach((s, i) => {
      const p = `T${i + 1}_`;
      lines.push(el(`${p}IMAX`, s ? (s.currents.length === 1 ? 90 : 60) : 0));
      for (const n of [1, 2, 3])
        lines.push(el(`${p}IMAX${n}`, s ? (s.currents.length === 1 ? (n === 1 ? 90 : 0) : 60) : 0));
    });
    const [c1, c2] = this.counters;
    lines.push(
      el('meter0', 0),
      el('meter1', 0),
      el('meter2', c1.flowAt(now)),
      el('meter3', c2.flowAt(now)),
      el('count0', c1.indexAt(now)),
      el('count1', c2.indexAt(now)),
    );
    const day = this.cmd20(now);
    lines.push(el('c0day', day.Day_C1), el('c1day', day.Day_C2), el('c0_fuel', ''), el('c1_fuel', ''));
    lines.push(el('dnsstatus', 0), el('version', '1.06.00'), el('salr', '140:12:13'));
    return lines.join('\n') + '\n';
  }

  private teleinfoXml(input: 0 | 1, now: number, faults: Faults): string {
    const p = `T${input + 1}_`;
    const meter = this.meters[input];
    const s = this.stateOf(input, now);
    const c = meter?.config;
    const three = c?.phases === 3;
    const labels = meter?.indexLabels ?? [];
    const idx = (l: string) => (s ? (s.indexes[l] ?? 0) : 0);
    const optarif = { BASE: 'BASE', HC: 'HC..', EJP: 'EJP.', TEMPO: 'BBR(' };
    const demain =
      faults.garbageDemain && input === 0
        ? '\nADC'
        : s?.tomorrow
          ? { BLEU: 'BLEU', BLANC: 'BLAN', ROUGE: 'ROUG' }[s.tomorrow]
          : '----';
    const cur = (n: number) => (s ? (three ? (s.currents[n - 1] ?? 0) : n === 1 ? s.currents[0] : 0) : 0);
    const values: [string, string | number][] = [
      ['ADCO', c?.adco ?? '----'],
      ['OPTARIF', c ? optarif[c.contract] : '----'],
      ['ISOUSC', c?.isousc ?? 0],
      // The box's template lists every index of every contract, in the order of the TIC spec.
      ...HISTORIC_INDEX_LABELS.map((l): [string, number] => [l, labels.includes(l) ? idx(l) : 0]),
      ['PEJP', s && this.ejpNotice(input, now) ? 30 : 0],
      ['PTEC', s ? undotted(s.ptec) : '----'],
      ['DEMAIN', s ? demain : '----'],
      ['IINST', s ? s.currents.reduce((a, b) => Math.max(a, b), 0) : 0],
      ['IINST1', cur(1)],
      ['IINST2', cur(2)],
      ['IINST3', cur(3)],
      ['ADPS', s && this.overrunning(input, now) ? s.currents.reduce((a, b) => Math.max(a, b), 0) + 1 : 0],
      ['IMAX', s ? (three ? 60 : 90) : 0],
      ['IMAX1', s ? (three ? 60 : 90) : 0],
      ['IMAX2', three ? 60 : 0],
      ['IMAX3', three ? 60 : 0],
      ['PPAP', s?.papp ?? 0],
      ['PAPP', s?.papp ?? 0],
      ['HHPHC', s ? 'A' : '-'],
      ['MOTDETAT', s ? '000000' : '----'],
      ['PPOT', s ? (three ? '00' : '-') : '-'],
    ];
    return `<!--  TELEINFO ${input + 1}  -->\n${values.map(([l, v]) => el(p + l, v)).join('\n')}\n<!-- FIN TELEINFO ${input + 1} -->\n`;
  }

  private admin(url: URL, req: http.IncomingMessage, res: http.ServerResponse): void {
    const reply = (body: unknown) => {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON.stringify(body));
    };
    const withBody = (fn: (body: Record<string, unknown>) => unknown) => {
      let text = '';
      req.on('data', (c: Buffer) => (text += c.toString()));
      req.on('end', () => {
        try {
          reply(fn(text ? (JSON.parse(text) as Record<string, unknown>) : {}));
        } catch (e) {
          res.writeHead(400, { 'content-type': 'text/plain' });
          res.end((e as Error).message);
        }
      });
    };
    switch (url.pathname) {
      case '/__sim/stats':
        return reply({ ...this.stats, connections: this.connections, inFlight: this.inFlight });
      case '/__sim/faults':
        if (req.method === 'POST') return withBody((b) => (this.setFaults(b), this.faults));
        return reply(this.faults);
      case '/__sim/events':
        return withBody((b) => this.setEvents(b));
      case '/__sim/clock':
        return withBody((b) => {
          this.clock.set({
            time: typeof b.time === 'string' ? Date.parse(b.time) : undefined,
            speed: typeof b.speed === 'number' ? b.speed : undefined,
            advanceMs: typeof b.advanceMs === 'number' ? b.advanceMs : undefined,
          });
          return { time: new Date(this.clock.now()).toISOString() };
        });
      case '/__sim/state': {
        const now = this.clock.now();
        return reply({
          time: new Date(now).toISOString(),
          inputs: this.meters.map((m, i) => (m ? { adco: m.config.adco, ...this.stateOf(i, now) } : null)),
          counters: this.counters.map((c) => ({ index: c.indexAt(now), flow: c.flowAt(now) })),
        });
      }
      default:
        res.writeHead(404);
        res.end();
    }
  }
}

const undotted = (ptec: string) => ptec.replace(/\.+$/, '');

function el(name: string, value: string | number): string {
  const text = String(value).replace(/&/g, '&amp;').replace(/</g, '&lt;');
  return `<${name}>${text}</${name}>`;
}
