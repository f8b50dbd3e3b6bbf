/**
 * Faithful port of the decoding in the npm package `teleinfo` 0.1.0 (lhuet/teleinfo-node, MIT,
 * Copyright 2014 Laurent HUET), the only TIC decoder published for Node: serialport 1.x's readline parser
 * splits the stream on CR ETX STX LF, each frame is split on CR LF, each line on spaces, and lines of
 * three fields are checked with the historic checksum. Historic mode only. The published package cannot be
 * installed on Node 20 (it needs the native serialport 1.2.5), so its algorithm is reproduced here as-is,
 * typed, for the benchmark only.
 */
export class TeleinfoNpmDecoder {
  private data = '';
  frames = 0;
  readonly decoded: Record<string, number | string>[] = [];

  push(buffer: Buffer): void {
    // serialport 1.2.5 parsers.readline(String.fromCharCode(13, 3, 2, 10)), default encoding utf8
    this.data += buffer.toString('utf8');
    const parts = this.data.split('\r\x03\x02\n');
    this.data = parts.pop() ?? '';
    for (const part of parts) this.trame(part);
  }

  private trame(data: string): void {
    const trame: Record<string, number | string> = {};
    const arrayOfData = data.split('\r\n');
    for (const line of arrayOfData) decodeLigne(line, trame);
    if (trame.ADCO !== undefined) {
      this.frames++;
      if (this.decoded.length < 1) this.decoded.push(trame);
    }
  }
}

function decodeLigne(ligneBrute: string, trame: Record<string, number | string>): boolean {
  const elementsLigne = ligneBrute.split(' ');
  if (elementsLigne.length === 3) {
    let sum = 0;
    let j = 0;
    for (j = 0; j < ligneBrute.length - 2; j++) sum += ligneBrute.charCodeAt(j);
    sum = (sum & 63) + 32;
    if (sum === ligneBrute.charCodeAt(j + 1)) {
      const label = elementsLigne[0];
      switch (label.substr(0, 4)) {
        case 'BASE':
        case 'HCHC':
        case 'HCHP':
        case 'EJPH':
        case 'BBRH':
        case 'ISOU':
        case 'IINS':
        case 'ADPS':
        case 'IMAX':
        case 'PAPP':
        case 'PMAX':
          trame[label] = Number(elementsLigne[1]);
          break;
        default:
          trame[label] = elementsLigne[1];
      }
      return true;
    }
    return false;
  }
  return false;
}
