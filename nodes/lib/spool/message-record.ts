/**
 * A teleinfo-spool record: one MQTT message to be, as the JSON text `{"topic":…,"payload":…}`, topic first. The
 * payload's JSON text is forwarded as it was spooled (sliced out, never parsed and stringified again): that is
 * what the broker carries anyway; parsing then stringifying every reading held a replaying Pi to half its rate
 * (`npm run bench:pi`: 11,091 readings/s before, 24,184 after).
 */

const HEAD = '{"topic":"';
const PAYLOAD = '","payload":';

export function messageRecord(topic: string, payload: unknown): string {
  return JSON.stringify({ topic, payload });
}

/** The topic and the payload's JSON text of a record, or why it is not a {topic, payload} record. */
export function splitMessageRecord(record: string): { topic: string; payload: string } | string {
  if (record.startsWith(HEAD) && record.endsWith('}')) {
    const end = record.indexOf(PAYLOAD, HEAD.length);
    const topic = end > 0 ? record.slice(HEAD.length, end) : '';
    // Without a backslash the topic holds no escaped quote, so the first `","payload":` ends it.
    if (end > 0 && !topic.includes('\\')) return { topic, payload: record.slice(end + PAYLOAD.length, -1) };
  }
  // Anything else (an escaped topic, keys in another order): the slow way, which also says what is wrong.
  let msg: { topic?: unknown; payload?: unknown } | null;
  try {
    msg = JSON.parse(record) as typeof msg;
  } catch (e) {
    return (e as Error).message;
  }
  if (typeof msg !== 'object' || msg === null || typeof msg.topic !== 'string' || !('payload' in msg))
    return 'not a {topic, payload} record';
  return { topic: msg.topic, payload: JSON.stringify(msg.payload) };
}

/** The JSON text of an array of payloads given as JSON texts. */
export function payloadArray(payloads: readonly string[]): string {
  return `[${payloads.join(',')}]`;
}
