// pkt-line framing and side-band-64k multiplexing.
// Implements gitprotocol-common(5) "pkt-line Format" (flush 0000, delim 0001,
// response-end 0002) and gitprotocol-pack(5) "Packfile Data" side-band channels.
// Pure: bytes in, packets out. Hostile input becomes a PktLineError, never a crash.

export const MAX_PKT_LEN = 65520; // total length including the 4 hex digits
export const MAX_PKT_DATA = MAX_PKT_LEN - 4;
// side-band-64k: 1 byte of band + up to 65515 bytes of payload per packet.
export const MAX_SIDEBAND_DATA = MAX_PKT_DATA - 1;

export type Packet =
  | { type: 'data'; data: Buffer }
  | { type: 'flush' }
  | { type: 'delim' }
  | { type: 'response-end' };

export class PktLineError extends Error {
  override name = 'PktLineError';
}

export const FLUSH = Buffer.from('0000');
export const DELIM = Buffer.from('0001');
export const RESPONSE_END = Buffer.from('0002');

/** Encodes one data packet. Strings are UTF-8. Throws on oversize: that is a bug, not input. */
export function pkt(data: string | Uint8Array): Buffer {
  const body = typeof data === 'string' ? Buffer.from(data, 'utf8') : Buffer.from(data);
  if (body.length > MAX_PKT_DATA) throw new RangeError(`pkt-line payload too long: ${body.length}`);
  const len = (body.length + 4).toString(16).padStart(4, '0');
  return Buffer.concat([Buffer.from(len, 'ascii'), body]);
}

/** Encodes a line; appends "\n" as the protocol recommends for text lines. */
export function pktLine(text: string): Buffer {
  return pkt(text.endsWith('\n') ? text : text + '\n');
}

/** Splits data into side-band packets on the given channel (1 data, 2 progress, 3 error). */
export function sideband(channel: 1 | 2 | 3, data: Uint8Array, maxData = MAX_SIDEBAND_DATA): Buffer[] {
  const parts = sidebandParts(channel, data, maxData);
  const out: Buffer[] = [];
  for (let i = 0; i < parts.length; i += 2) out.push(Buffer.concat([parts[i]!, parts[i + 1]!]));
  return out;
}

/**
 * The same packets as `sideband`, each as two pieces — its 5-byte header and a view of
 * `data` — so a pack streamed to a client is framed without copying it (a clone's pack
 * bytes would otherwise be copied three times on the way out).
 */
export function sidebandParts(channel: 1 | 2 | 3, data: Uint8Array, maxData = MAX_SIDEBAND_DATA): Buffer[] {
  // As pkt() does: a packet over the limit is a bug here, not input.
  if (maxData > MAX_SIDEBAND_DATA) throw new RangeError(`side-band payload too long: ${maxData}`);
  const out: Buffer[] = [];
  const buf = Buffer.from(data.buffer, data.byteOffset, data.byteLength);
  for (let i = 0; i < buf.length; i += maxData) {
    const chunk = buf.subarray(i, Math.min(buf.length, i + maxData));
    const head = Buffer.allocUnsafe(5);
    head.write((chunk.length + 5).toString(16).padStart(4, '0'), 0, 'latin1');
    head[4] = channel;
    out.push(head, chunk);
  }
  return out;
}

function parseLength(hex: Buffer): number {
  // Only [0-9a-f] (git also accepts upper case); parseInt alone would accept "+1a" or " 1a".
  for (const c of hex) {
    const ok = (c >= 0x30 && c <= 0x39) || (c >= 0x61 && c <= 0x66) || (c >= 0x41 && c <= 0x46);
    if (!ok) throw new PktLineError(`bad pkt-line length ${JSON.stringify(hex.toString('latin1'))}`);
  }
  return parseInt(hex.toString('ascii'), 16);
}

/**
 * Reads pkt-lines from a complete buffer. `next()` returns the next packet, or
 * null when the buffer ends exactly on a packet boundary. `offset` is where the
 * unread bytes start (receive-pack: the packfile follows the command list).
 */
export class PktReader {
  offset: number;
  readonly buf: Buffer;
  constructor(buf: Buffer, offset = 0) {
    this.buf = buf;
    this.offset = offset;
  }
  get done(): boolean {
    return this.offset >= this.buf.length;
  }
  next(): Packet | null {
    if (this.offset >= this.buf.length) return null;
    if (this.buf.length - this.offset < 4) throw new PktLineError('truncated pkt-line length');
    const len = parseLength(this.buf.subarray(this.offset, this.offset + 4));
    if (len === 0) { this.offset += 4; return { type: 'flush' }; }
    if (len === 1) { this.offset += 4; return { type: 'delim' }; }
    if (len === 2) { this.offset += 4; return { type: 'response-end' }; }
    if (len < 4) throw new PktLineError(`invalid pkt-line length ${len}`);
    if (len > MAX_PKT_LEN) throw new PktLineError(`pkt-line length ${len} exceeds ${MAX_PKT_LEN}`);
    if (this.offset + len > this.buf.length) throw new PktLineError('truncated pkt-line');
    const data = this.buf.subarray(this.offset + 4, this.offset + len);
    this.offset += len;
    return { type: 'data', data };
  }
  /** Next packet as text with one trailing newline removed; null at flush/delim/end. */
  nextLine(): string | null {
    const p = this.next();
    if (!p || p.type !== 'data') return null;
    return lineText(p.data);
  }
}

export function lineText(data: Buffer): string {
  const s = data.toString('utf8');
  return s.endsWith('\n') ? s.slice(0, -1) : s;
}

/**
 * Streaming decoder: feed chunks as they arrive, get whole packets back.
 * Keeps at most one partial packet (≤ 65520 bytes) buffered.
 */
export class PktLineDecoder {
  private pending: Buffer = Buffer.alloc(0);
  push(chunk: Uint8Array): Packet[] {
    this.pending = this.pending.length ? Buffer.concat([this.pending, chunk]) : Buffer.from(chunk);
    const out: Packet[] = [];
    let off = 0;
    while (this.pending.length - off >= 4) {
      const len = parseLength(this.pending.subarray(off, off + 4));
      if (len > MAX_PKT_LEN) throw new PktLineError(`pkt-line length ${len} exceeds ${MAX_PKT_LEN}`);
      if (len === 3) throw new PktLineError('invalid pkt-line length 3');
      const need = len < 4 ? 4 : len;
      if (this.pending.length - off < need) break;
      const r = new PktReader(this.pending.subarray(off, off + need));
      out.push(r.next()!);
      off += need;
    }
    this.pending = Buffer.from(this.pending.subarray(off));
    return out;
  }
  /** Call at end of input: a leftover partial packet is an error. */
  end(): void {
    if (this.pending.length) throw new PktLineError('truncated pkt-line at end of input');
  }
}

/** Demultiplexes side-band packets (for tests and clients). */
export function demuxSideband(packets: Packet[]): { data: Buffer; progress: string; error: string } {
  const data: Buffer[] = [];
  let progress = '';
  let error = '';
  for (const p of packets) {
    if (p.type !== 'data' || p.data.length === 0) continue;
    const band = p.data[0];
    const body = p.data.subarray(1);
    if (band === 1) data.push(body);
    else if (band === 2) progress += body.toString('utf8');
    else if (band === 3) error += body.toString('utf8');
    else throw new PktLineError(`bad side-band ${band}`);
  }
  return { data: Buffer.concat(data), progress, error };
}
