import fs from 'node:fs';
import net from 'node:net';
import { parseArgs } from 'node:util';
import { encodeTicFrame } from '../tic/encoder';
import type { TicMode } from '../tic/labels';
import { EcoDevicesSimulator, SimClock, type Faults, type SimEvents } from './ecodevices-server';
import { hash01, type Contract, type MeterConfig } from './meter';
import { SerialLine } from './serial-line';
import { BAUD_OF_MODE } from '../tic/baud-hunt';

/** `teleinfo-sim`: simulated Eco-Devices boxes over HTTP, and a raw TIC stream for serial flows. */

const HELP = `teleinfo-sim: a simulated GCE Eco-Devices box (HTTP API) and Linky/CBE meter (raw TIC stream)

Usage: teleinfo-sim [options]

Eco-Devices boxes (HTTP)
  --port N            first port (default 8080; 0 = any free port)
  --host H            address to listen on (default 127.0.0.1)
  --boxes N           number of boxes, on consecutive ports (default 1)
  --contract C        meter on input T1: BASE, HC, EJP or TEMPO (default HC)
  --contract2 C       meter on input T2, or none (default none: T2 reads ---- as on a real box)
  --phases 1|3        single or three phase (default 1)
  --isousc A          subscribed current in A (default 45)
  --user U --password P
                      protection on: every page asks for HTTP Basic auth
  --no-http           do not start any box (TIC stream only)

Time and values
  --seed N            seed of every simulated value (default 1): same seed, same values
  --start ISO         simulated instant at start (default now)
  --speed X           simulated seconds per real second (default 1; 0 freezes the clock)

Faults (also settable at run time: POST /__sim/faults with the same names in JSON)
  --latency MS        delay every answer
  --timeout           accept requests and never answer
  --error STATUS      answer every request with this HTTP status (500, 401, 503…)
  --garbage-demain    junk with a newline in T1_DEMAIN
  --truncated-xml     cut XML pages in half
  --malformed-json    send JSON that does not parse
  --offline-after S --offline-for S
                      stop listening (connection refused) after S seconds, for S seconds

Meter events on T1 (also settable at run time: POST /__sim/events {input, spikeVa, spikeSeconds, overrunSeconds,
tomorrowRed, ejpSeconds, indexBackWh})
  --spike VA:S        apparent power forced to VA for S seconds (a high consumption)
  --overrun S         ADPS for S seconds (the subscribed power exceeded)
  --tomorrow-red      a Tempo meter announces a red day for tomorrow
  --ejp S             an EJP notice (PEJP) for S seconds
  --index-back WH     every index WH lower from the start (a bad read, a meter swap)

Raw TIC stream
  --tic MODE          also emit the T1 meter as a raw TIC stream: historic or standard
  --tic-out OUT       stdout (default), file:PATH, tcp:PORT (a server each client receives the stream from)
                      or serial:PATH (a serial line on a socat pseudo-terminal pair: open PATH as the meter's
                      serial port, 7E1 at 1200 Bd historic or 9600 Bd standard; frames go at the line's pace)
  --tic-interval MS   time between frames (default: the meter's pace, 1500 historic, 1000 standard; 0 = as fast as possible)
  --tic-frames N      stop after N frames
  --tic-corrupt P     probability that a frame gets one corrupted byte (default 0)

Admin API (for tests): GET /__sim/stats, GET|POST /__sim/faults, POST /__sim/clock {time, speed, advanceMs},
POST /__sim/events (above), GET /__sim/state (exact current values). Logs go to stderr; stdout carries only the TIC stream.
`;

export interface SimulatorOptions {
  readonly boxes: number;
  readonly contract: Contract;
  readonly contract2: Contract | null;
  readonly phases: 1 | 3;
  readonly isousc: number;
  readonly seed: number;
  readonly start: number;
  readonly user?: string;
  readonly password?: string;
}

const CONTRACTS: readonly string[] = ['BASE', 'HC', 'EJP', 'TEMPO'];

/** ADCO of the meter on `input` of box `box` (12 digits, stable for a seed). */
export function simulatedAdco(seed: number, box: number, input: number): string {
  return `0${String(21_000_000_000 + Math.floor(hash01(seed, box, input) * 899_999_999)).padStart(11, '0')}`;
}

export function meterConfig(options: SimulatorOptions, box: number, input: 0 | 1): MeterConfig | null {
  const contract = input === 0 ? options.contract : options.contract2;
  if (!contract) return null;
  return {
    adco: simulatedAdco(options.seed, box, input),
    contract,
    phases: options.phases,
    isousc: options.isousc,
    seed: options.seed * 1000 + box * 2 + input,
    origin: options.start,
  };
}

export function simulatedBox(options: SimulatorOptions, box: number, clock: SimClock): EcoDevicesSimulator {
  return new EcoDevicesSimulator(
    {
      hostname: `ECODEV-${box + 1}`,
      inputs: [meterConfig(options, box, 0), meterConfig(options, box, 1)],
      seed: options.seed * 1000 + box,
      origin: options.start,
      user: options.user,
      password: options.password,
    },
    clock,
  );
}

function fail(message: string): never {
  process.stderr.write(`teleinfo-sim: ${message}\n(see teleinfo-sim --help)\n`);
  process.exit(2);
}

export async function main(argv: string[]): Promise<void> {
  const { values: a } = parseArgs({
    args: argv,
    options: {
      help: { type: 'boolean' },
      port: { type: 'string', default: '8080' },
      host: { type: 'string', default: '127.0.0.1' },
      boxes: { type: 'string', default: '1' },
      contract: { type: 'string', default: 'HC' },
      contract2: { type: 'string', default: 'none' },
      phases: { type: 'string', default: '1' },
      isousc: { type: 'string', default: '45' },
      user: { type: 'string' },
      password: { type: 'string' },
      'no-http': { type: 'boolean' },
      seed: { type: 'string', default: '1' },
      start: { type: 'string' },
      speed: { type: 'string', default: '1' },
      latency: { type: 'string' },
      timeout: { type: 'boolean' },
      error: { type: 'string' },
      'garbage-demain': { type: 'boolean' },
      'truncated-xml': { type: 'boolean' },
      'malformed-json': { type: 'boolean' },
      'offline-after': { type: 'string' },
      'offline-for': { type: 'string' },
      spike: { type: 'string' },
      overrun: { type: 'string' },
      'tomorrow-red': { type: 'boolean' },
      ejp: { type: 'string' },
      'index-back': { type: 'string' },
      tic: { type: 'string' },
      'tic-out': { type: 'string', default: 'stdout' },
      'tic-interval': { type: 'string' },
      'tic-frames': { type: 'string' },
      'tic-corrupt': { type: 'string', default: '0' },
    },
  });
  if (a.help) {
    process.stdout.write(HELP);
    return;
  }
  const int = (name: string, v: string, min: number) => {
    const n = Number(v);
    if (!Number.isInteger(n) || n < min) fail(`--${name} must be an integer ≥ ${min}, got "${v}"`);
    return n;
  };
  const contract = (v: string, name: string): Contract => {
    const c = v.toUpperCase();
    if (!CONTRACTS.includes(c)) fail(`--${name} must be BASE, HC, EJP or TEMPO, got "${v}"`);
    return c as Contract;
  };
  const start = a.start ? Date.parse(a.start) : Date.now();
  if (Number.isNaN(start)) fail(`--start must be an ISO instant, got "${a.start}"`);
  const phases = int('phases', a.phases, 1);
  if (phases !== 1 && phases !== 3) fail('--phases must be 1 or 3');
  const options: SimulatorOptions = {
    boxes: int('boxes', a.boxes, 1),
    contract: contract(a.contract, 'contract'),
    contract2: a.contract2.toLowerCase() === 'none' ? null : contract(a.contract2, 'contract2'),
    phases,
    isousc: int('isousc', a.isousc, 1),
    seed: int('seed', a.seed, 0),
    start,
    user: a.user,
    password: a.password,
  };
  const speed = Number(a.speed);
  if (!Number.isFinite(speed) || speed < 0) fail(`--speed must be a number ≥ 0, got "${a.speed}"`);
  const clock = new SimClock(start, speed);
  const faults: Faults = {
    latencyMs: a.latency ? int('latency', a.latency, 0) : undefined,
    timeout: a.timeout,
    status: a.error ? int('error', a.error, 100) : undefined,
    garbageDemain: a['garbage-demain'],
    truncatedXml: a['truncated-xml'],
    malformedJson: a['malformed-json'],
  };

  const spike = a.spike ? /^(\d+):(\d+)$/.exec(a.spike) : null;
  if (a.spike && !spike) fail(`--spike must be VA:SECONDS, got "${a.spike}"`);
  const events: SimEvents = {
    ...(spike ? { spikeVa: Number(spike[1]), spikeSeconds: Number(spike[2]) } : {}),
    ...(a.overrun ? { overrunSeconds: int('overrun', a.overrun, 1) } : {}),
    ...(a['tomorrow-red'] ? { tomorrowRed: true } : {}),
    ...(a.ejp ? { ejpSeconds: int('ejp', a.ejp, 1) } : {}),
    ...(a['index-back'] ? { indexBackWh: int('index-back', a['index-back'], 1) } : {}),
  };

  const boxes: EcoDevicesSimulator[] = [];
  if (!a['no-http']) {
    const first = int('port', a.port, 0);
    for (let i = 0; i < options.boxes; i++) {
      const box = simulatedBox(options, i, clock);
      box.setFaults(faults);
      box.setEvents(events);
      const port = await box.listen(first === 0 ? 0 : first + i, a.host);
      const [t1, t2] = box.config.inputs;
      const describe = (m: MeterConfig | null) =>
        m ? `${m.contract} ${m.phases}-phase ADCO ${m.adco}` : 'no meter';
      process.stderr.write(
        `teleinfo-sim: Eco-Devices box ${box.config.hostname} listening on http://${a.host}:${port} (T1 ${describe(t1)}; T2 ${describe(t2)})\n`,
      );
      boxes.push(box);
    }
    if (a['offline-after'] && a['offline-for']) {
      const after = int('offline-after', a['offline-after'], 0) * 1000;
      const forMs = int('offline-for', a['offline-for'], 1) * 1000;
      setTimeout(() => boxes.forEach((b) => b.setFaults({ ...faults, offlineMs: forMs })), after).unref();
    }
  }

  let stopTic = () => {};
  if (a.tic) {
    if (a.tic !== 'historic' && a.tic !== 'standard')
      fail(`--tic must be historic or standard, got "${a.tic}"`);
    const meter = simulatedBox(options, 0, clock).meters[0]!;
    const interval =
      a['tic-interval'] !== undefined
        ? int('tic-interval', a['tic-interval'], 0)
        : a.tic === 'historic'
          ? 1500
          : 1000;
    const corrupt = Number(a['tic-corrupt']);
    stopTic = await ticStream({
      mode: a.tic,
      out: a['tic-out'],
      intervalMs: interval,
      frames: a['tic-frames'] ? int('tic-frames', a['tic-frames'], 1) : Infinity,
      corrupt: Number.isFinite(corrupt) ? corrupt : 0,
      seed: options.seed,
      frame: (mode) => {
        const now = clock.now();
        return encodeTicFrame(
          mode,
          mode === 'historic' ? meter.historicGroups(now) : meter.standardGroups(now),
        );
      },
      onEnd: () => {
        if (boxes.length === 0) process.exit(0);
      },
    });
  }

  const shutdown = () => {
    stopTic();
    void Promise.all(boxes.map((b) => b.close())).then(() => process.exit(0));
  };
  process.on('SIGINT', shutdown);
  process.on('SIGTERM', shutdown);
}

interface TicStreamOptions {
  readonly mode: TicMode;
  readonly out: string;
  readonly intervalMs: number;
  readonly frames: number;
  readonly corrupt: number;
  readonly seed: number;
  frame(mode: TicMode): string;
  onEnd(): void;
}

/** Write frames at the meter's pace to the chosen output; returns a function that stops. */
async function ticStream(o: TicStreamOptions): Promise<() => void> {
  const sinks = new Set<NodeJS.WritableStream>();
  let cleanup = () => {};
  if (o.out === 'stdout') sinks.add(process.stdout);
  else if (o.out.startsWith('file:')) sinks.add(fs.createWriteStream(o.out.slice(5), { flags: 'a' }));
  else if (o.out.startsWith('tcp:')) {
    const server = net.createServer((socket) => {
      sinks.add(socket);
      socket.on('close', () => sinks.delete(socket));
      socket.on('error', () => sinks.delete(socket));
    });
    const port = Number(o.out.slice(4));
    await new Promise<void>((r) => server.listen(port, '127.0.0.1', () => r()));
    process.stderr.write(`teleinfo-sim: TIC ${o.mode} stream on tcp://127.0.0.1:${port}\n`);
    cleanup = () => server.close();
  } else if (o.out.startsWith('serial:')) {
    return serialStream(o, o.out.slice(7));
  } else fail(`--tic-out must be stdout, file:PATH, tcp:PORT or serial:PATH, got "${o.out}"`);

  let sent = 0;
  let timer: NodeJS.Timeout | null = null;
  const tick = () => {
    const frame = nextFrame(o, sent);
    for (const sink of sinks) sink.write(frame);
    sent++;
    if (sent >= o.frames) {
      cleanup();
      o.onEnd();
      return;
    }
    timer = setTimeout(tick, o.intervalMs);
  };
  tick();
  return () => {
    if (timer) clearTimeout(timer);
    cleanup();
  };
}

/** The frame number `n` of the stream, with its corrupted byte if the dice say so. */
function nextFrame(o: TicStreamOptions, n: number): Buffer {
  const frame = Buffer.from(o.frame(o.mode), 'latin1');
  if (o.corrupt > 0 && hash01(o.seed, 23, n) < o.corrupt) {
    const at = 2 + Math.floor(hash01(o.seed, 29, n) * (frame.length - 4));
    frame[at] = (frame[at] ^ 0x01) & 0x7f || 0x41;
  }
  return frame;
}

/** Frames back to back on a simulated serial line, at the mode's baud. */
async function serialStream(o: TicStreamOptions, path: string): Promise<() => void> {
  let sent = 0;
  const line = await SerialLine.open({
    path,
    baud: BAUD_OF_MODE[o.mode],
    seed: o.seed,
    frame: () => {
      if (sent >= o.frames) {
        void line.close().then(() => o.onEnd());
        return Buffer.alloc(0);
      }
      return nextFrame(o, sent++);
    },
  }).catch((e: Error) => fail(`--tic-out serial needs socat on PATH (${e.message})`));
  process.stderr.write(`teleinfo-sim: TIC ${o.mode} serial line at ${BAUD_OF_MODE[o.mode]} Bd on ${path}\n`);
  return () => void line.close();
}
