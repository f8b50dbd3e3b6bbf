'use strict';
// A small in-memory MQTT 3.1.1/5 broker for `npm start` on a machine without mosquitto: QoS 0 and 1 (QoS 2 is
// served as 1), retained messages, will messages, `+`/`#` filters and `$share/<group>/` subscriptions (one member
// of a group gets each message). No persistence and no queue for offline clients: a demo, not the production
// broker (docker/mosquitto/mosquitto.conf is).
const { Buffer } = require('node:buffer');
const net = require('node:net');
const mqttPacket = require('mqtt-packet');

function matches(filter, topic) {
  const f = filter.split('/');
  const t = topic.split('/');
  for (let i = 0; i < f.length; i++) {
    if (f[i] === '#') return true;
    if (i >= t.length || (f[i] !== '+' && f[i] !== t[i])) return false;
  }
  return f.length === t.length;
}

function startEmbeddedBroker(port, host = '127.0.0.1') {
  /** clientId → { socket, version, subs: Map<filter, {qos, group}>, nextId } */
  const clients = new Map();
  const retained = new Map();
  const groupTurn = new Map();

  function send(client, packet) {
    if (!client.socket.destroyed)
      client.socket.write(mqttPacket.generate(packet, { protocolVersion: client.version }));
  }

  function deliver(client, topic, payload, qos, retain) {
    const packet = { cmd: 'publish', topic, payload, qos, retain, dup: false };
    if (qos > 0) packet.messageId = client.nextId = (client.nextId % 65535) + 1;
    send(client, packet);
  }

  function route(topic, payload, qos, retain) {
    if (retain) {
      if (payload.length === 0) retained.delete(topic);
      else retained.set(topic, { payload, qos });
    }
    const groups = new Map();
    for (const client of clients.values()) {
      for (const sub of client.subs.values()) {
        if (!matches(sub.pattern, topic)) continue;
        if (sub.group) {
          const key = `${sub.group}\u0000${sub.pattern}`;
          if (!groups.has(key)) groups.set(key, []);
          groups.get(key).push({ client, sub });
        } else deliver(client, topic, payload, Math.min(qos, sub.qos), false);
      }
    }
    for (const [key, members] of groups) {
      const turn = (groupTurn.get(key) ?? -1) + 1;
      groupTurn.set(key, turn);
      const { client, sub } = members[turn % members.length];
      deliver(client, topic, payload, Math.min(qos, sub.qos), false);
    }
  }

  const server = net.createServer((socket) => {
    const parser = mqttPacket.parser({ protocolVersion: 5 });
    let client = null;
    let will = null;
    socket.on('data', (data) => parser.parse(data));
    socket.on('error', () => socket.destroy());
    socket.on('close', () => {
      if (client && clients.get(client.id) === client) clients.delete(client.id);
      if (will) route(will.topic, will.payload, Math.min(will.qos, 1), will.retain);
    });
    parser.on('error', () => socket.destroy());
    parser.on('packet', (packet) => {
      switch (packet.cmd) {
        case 'connect': {
          const old = clients.get(packet.clientId);
          if (old) old.socket.destroy();
          client = {
            id: packet.clientId || `anon-${Math.random()}`,
            socket,
            version: packet.protocolVersion,
            subs: new Map(),
            nextId: 0,
          };
          parser.settings = { protocolVersion: packet.protocolVersion };
          clients.set(client.id, client);
          will = packet.will ? { ...packet.will, payload: Buffer.from(packet.will.payload ?? '') } : null;
          send(client, { cmd: 'connack', returnCode: 0, reasonCode: 0, sessionPresent: false });
          break;
        }
        case 'publish':
          if (packet.qos > 0) send(client, { cmd: 'puback', messageId: packet.messageId, reasonCode: 0 });
          route(packet.topic, Buffer.from(packet.payload), Math.min(packet.qos, 1), packet.retain);
          break;
        case 'subscribe': {
          const granted = [];
          for (const s of packet.subscriptions) {
            const share = /^\$share\/([^/]+)\/(.+)$/.exec(s.topic);
            const qos = Math.min(s.qos, 1);
            client.subs.set(s.topic, { qos, group: share?.[1] ?? null, pattern: share ? share[2] : s.topic });
            granted.push(qos);
          }
          send(client, { cmd: 'suback', messageId: packet.messageId, granted });
          for (const s of packet.subscriptions) {
            if (s.topic.startsWith('$share/')) continue;
            for (const [topic, r] of retained)
              if (matches(s.topic, topic)) deliver(client, topic, r.payload, Math.min(r.qos, s.qos, 1), true);
          }
          break;
        }
        case 'unsubscribe':
          for (const t of packet.unsubscriptions) client.subs.delete(t);
          send(client, {
            cmd: 'unsuback',
            messageId: packet.messageId,
            granted: packet.unsubscriptions.map(() => 0),
          });
          break;
        case 'pingreq':
          send(client, { cmd: 'pingresp' });
          break;
        case 'disconnect':
          will = null;
          socket.end();
          break;
        default:
        // puback from subscribers: nothing is kept for redelivery.
      }
    });
  });
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () =>
      resolve({
        url: `mqtt://${host}:${server.address().port}`,
        close: () =>
          new Promise((r) => {
            for (const c of clients.values()) c.socket.destroy();
            server.close(() => r());
          }),
      }),
    );
  });
}

module.exports = { startEmbeddedBroker };
