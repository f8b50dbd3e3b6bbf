/**
 * A teleinfo-spool record: one MQTT message to be, as the JSON text `{"topic":…,"payload":…}`, topic first. The
 * payload's JSON text is forwarded as it was spooled (sliced out, never parsed and stringified again): that is
 * what the broker carries anyway; parsing then stringifying every reading held a replaying Pi to half its rate
 * (`npm run bench:pi`: 11,091 readings/s before, 24,184 after).
 */

import { SeqRanges, SEQ_PROPERTY, STREAM_PROPERTY } from '../acknowledgement';

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

/** An MQTT message of readings, as teleinfo-spool hands it to an mqtt out. */
export interface OutgoingMessage {
  readonly topic: string;
  /** The reading's JSON text, or a JSON array of readings of that topic. */
  readonly payload: string;
  /** Where servers acknowledge: the spool's stream and the readings' numbers, as MQTT 5 user properties. */
  readonly userProperties?: Record<string, string>;
}

/**
 * Spooled records as messages: up to `perMessage` readings of one topic in one message (an array, in their order),
 * so that a backlog costs one message per many readings; each with its readings' numbers when `numbered`. A record
 * that is not a {topic, payload} is refused (never sent).
 */
export function recordMessages(
  records: readonly string[],
  perMessage: number,
  numbered: { readonly stream: string; readonly seqs: readonly number[] } | null,
): { messages: OutgoingMessage[]; refused: { record: string; reason: string }[] } {
  const refused: { record: string; reason: string }[] = [];
  const byTopic = new Map<string, { payloads: string[]; seqs: number[] }>();
  records.forEach((record, i) => {
    const msg = splitMessageRecord(record);
    if (typeof msg === 'string') {
      refused.push({ record, reason: msg });
      return;
    }
    let same = byTopic.get(msg.topic);
    if (!same) byTopic.set(msg.topic, (same = { payloads: [], seqs: [] }));
    same.payloads.push(msg.payload);
    if (numbered) same.seqs.push(numbered.seqs[i]);
  });
  const messages: OutgoingMessage[] = [];
  for (const [topic, { payloads, seqs }] of byTopic) {
    for (let i = 0; i < payloads.length; i += perMessage) {
      const payload =
        perMessage === 1 || payloads.length - i === 1
          ? payloads[i]
          : payloadArray(payloads.slice(i, i + perMessage));
      if (!numbered) {
        messages.push({ topic, payload });
        continue;
      }
      const ranges = new SeqRanges();
      ranges.addAll(seqs.slice(i, i + perMessage));
      messages.push({
        topic,
        payload,
        userProperties: { [STREAM_PROPERTY]: numbered.stream, [SEQ_PROPERTY]: ranges.toString() },
      });
    }
  }
  return { messages, refused };
}
