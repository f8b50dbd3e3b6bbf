import type { TicMode } from './labels';

/**
 * The inverse of the decoder: TIC groups and frames as a meter sends them, with their checksums.
 * Used by the simulator to feed serial flows.
 */

export interface TicGroupText {
  readonly label: string;
  readonly value: string;
  readonly horodate?: string;
}

function checksumOf(text: string): string {
  let sum = 0;
  for (let i = 0; i < text.length; i++) sum += text.charCodeAt(i);
  return String.fromCharCode((sum & 0x3f) + 0x20);
}

/** One group, LF … CR. Historic: checksum over `label SP value`; standard: over `label HT [horodate HT] value HT`. */
export function encodeTicGroup(mode: TicMode, group: TicGroupText): string {
  if (mode === 'historic') {
    const body = `${group.label} ${group.value}`;
    return `\n${body} ${checksumOf(body)}\r`;
  }
  const body = `${group.label}\t${group.horodate !== undefined ? `${group.horodate}\t` : ''}${group.value}\t`;
  return `\n${body}${checksumOf(body)}\r`;
}

/** A whole frame, STX … ETX. */
export function encodeTicFrame(mode: TicMode, groups: readonly TicGroupText[]): string {
  return `\x02${groups.map((g) => encodeTicGroup(mode, g)).join('')}\x03`;
}
