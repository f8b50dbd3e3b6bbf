import net from 'node:net';
import mqttPacket, { type Packet } from 'mqtt-packet';

/**
 * A TCP proxy in front of the broker that reads the MQTT 5 packets going back to the client and can withhold its
 * PUBACKs (a broker that takes readings and never acknowledges them), while counting the client's QoS 1 readings in
 * flight: new (not DUP) PUBLISHes on a readings topic whose PUBACK has not reached the client.
 */
export class PubackProxy {
  private server: net.Server | null = null;
  private readonly sockets = new Set<net.Socket>();
  /** Withhold PUBACKs from the broker. */
  dropAcks = false;
  readonly counters = { publishes: 0, pubacksDropped: 0, pubacksPassed: 0, maxInFlight: 0 };
  private inFlight = new Set<number>();

  constructor(
    readonly port: number,
    private readonly target: number,
    private readonly readings = /\/reading$/,
  ) {}

  get inFlightNow(): number {
    return this.inFlight.size;
  }

  async open(): Promise<void> {
    this.server = net.createServer((client) => {
      const upstream = net.connect(this.target, '127.0.0.1');
      for (const s of [client, upstream]) {
        this.sockets.add(s);
        s.on('close', () => this.sockets.delete(s));
        s.on('error', () => undefined);
      }
      const fromClient = mqttPacket.parser({ protocolVersion: 5 });
      fromClient.on('packet', (p: Packet) => {
        if (p.cmd === 'publish' && p.qos === 1 && !p.dup && this.readings.test(p.topic)) {
          this.counters.publishes++;
          this.inFlight.add(p.messageId!);
          this.counters.maxInFlight = Math.max(this.counters.maxInFlight, this.inFlight.size);
        }
      });
      client.on('data', (data: Buffer) => {
        fromClient.parse(data);
        upstream.write(data);
      });
      const fromBroker = mqttPacket.parser({ protocolVersion: 5 });
      fromBroker.on('packet', (p: Packet) => {
        if (p.cmd === 'puback') {
          if (this.dropAcks) {
            this.counters.pubacksDropped++;
            return;
          }
          this.counters.pubacksPassed++;
          this.inFlight.delete(p.messageId!);
        }
        client.write(mqttPacket.generate(p, { protocolVersion: 5 }));
      });
      upstream.on('data', (data: Buffer) => fromBroker.parse(data));
      client.on('close', () => upstream.destroy());
      upstream.on('close', () => client.destroy());
    });
    await new Promise<void>((r) => this.server!.listen(this.port, '127.0.0.1', r));
  }

  /** Drop every connection (the client reconnects); what was in flight is forgotten. */
  reset(): void {
    for (const s of this.sockets) s.destroy();
    this.inFlight = new Set();
  }

  async close(): Promise<void> {
    const server = this.server;
    this.server = null;
    this.reset();
    if (server) await new Promise((r) => server.close(r));
  }
}
