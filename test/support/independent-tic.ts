import { labelSpec, type TicMode } from '../../nodes/lib';

/**
 * An independent reading of TIC bytes for the tests, written from the spec and not from the decoder:
 * regex split on LF…CR, checksum by the rule of the separator, fields split on it.
 */
export interface IndependentGroup {
  readonly mode: TicMode;
  readonly label: string;
  readonly horodate: string;
  readonly data: string;
}

export function validGroups(bytes: Uint8Array): IndependentGroup[] {
  const text = Buffer.from(bytes.map((b) => b & 0x7f)).toString('latin1');
  const out: IndependentGroup[] = [];
  // eslint-disable-next-line no-control-regex -- TIC framing bytes
  for (const m of text.matchAll(/\n([^\n\r\x02\x03\x04]*)\r/g)) {
    const g = m[1];
    if (g.length < 4) continue;
    const sep = g[g.length - 2];
    if (sep !== ' ' && sep !== '\t') continue;
    const body = sep === ' ' ? g.slice(0, -2) : g.slice(0, -1);
    let sum = 0;
    for (const c of body) sum += c.charCodeAt(0);
    if (String.fromCharCode((sum & 0x3f) + 0x20) !== g[g.length - 1]) continue;
    const mode: TicMode = sep === ' ' ? 'historic' : 'standard';
    const inner = g.slice(0, -2);
    if (mode === 'historic') {
      const i = inner.indexOf(' ');
      if (i > 0) out.push({ mode, label: inner.slice(0, i), horodate: '', data: inner.slice(i + 1) });
    } else {
      const f = inner.split('\t');
      if (f.length === 2) out.push({ mode, label: f[0], horodate: '', data: f[1] });
      if (f.length === 3) out.push({ mode, label: f[0], horodate: f[1], data: f[2] });
    }
  }
  return out;
}

/** `label|horodate|typed value`, the key the decoder's groups are compared on. */
export function groupKey(g: IndependentGroup): string {
  const value = labelSpec(g.mode, g.label).kind === 'int' ? String(Number(g.data)) : g.data;
  return `${g.label}|${g.horodate}|${value}`;
}
