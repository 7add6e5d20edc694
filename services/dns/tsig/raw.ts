/**
 * A raw DNS message scanner: header, names (with compression pointers) and resource-record
 * boundaries, with byte offsets. RFC 1035 §4.1 (format), §4.1.4 (compression).
 *
 * Why not dns-packet: TSIG (RFC 8945) and UPDATE (RFC 2136) need the exact byte ranges of
 * each record, and UPDATE carries RRs with CLASS NONE/ANY and empty RDATA that dns-packet's
 * typed decoders misread. Everything here bounds-checks and throws WireError, which callers
 * turn into FORMERR.
 */

export class WireError extends Error {
  override name = 'WireError';
}

export const CLASS_IN = 1;
export const CLASS_NONE = 254;
export const CLASS_ANY = 255;
export const TYPE_TSIG = 250;
export const TYPE_OPT = 41;

export interface RawName {
  /** Presentation form without the trailing dot; '.' for the root; case preserved. */
  name: string;
  /** Offset just past the name as it appears at the read position. */
  end: number;
}

export type Section = 'question' | 'answer' | 'authority' | 'additional';

export interface RawQuestion {
  name: string;
  type: number;
  class: number;
  start: number;
  end: number;
}

export interface RawRecord {
  section: Exclude<Section, 'question'>;
  name: string;
  type: number;
  class: number;
  ttl: number;
  /** Offset of the RDATA (after RDLENGTH). */
  rdataStart: number;
  rdlength: number;
  /** Offset of the owner name, and offset just past RDATA. */
  start: number;
  end: number;
}

export interface RawMessage {
  id: number;
  flags: number;
  opcode: number;
  rcode: number;
  qr: boolean;
  counts: [number, number, number, number];
  questions: RawQuestion[];
  records: RawRecord[];
  /** Bytes after the last record (should be 0). */
  trailing: number;
}

function escapeLabel(buf: Uint8Array, start: number, len: number): string {
  let out = '';
  for (let i = start; i < start + len; i++) {
    const c = buf[i];
    if (c === 0x2e || c === 0x5c) out += '\\' + String.fromCharCode(c);
    else if (c > 0x20 && c < 0x7f) out += String.fromCharCode(c);
    else out += '\\' + String(c).padStart(3, '0');
  }
  return out;
}

/** Reads a possibly compressed name at `offset`. Pointers must point backwards (no loops). */
export function readName(buf: Uint8Array, offset: number): RawName {
  const labels: string[] = [];
  let pos = offset;
  let end = -1;
  let wireLen = 1;
  let jumps = 0;
  let lowest = offset;
  for (;;) {
    if (pos >= buf.length) throw new WireError('name runs past the end of the message');
    const len = buf[pos];
    if (len === 0) {
      if (end < 0) end = pos + 1;
      break;
    }
    if ((len & 0xc0) === 0xc0) {
      if (pos + 1 >= buf.length) throw new WireError('truncated compression pointer');
      const target = ((len & 0x3f) << 8) | buf[pos + 1];
      if (end < 0) end = pos + 2;
      if (target >= lowest || ++jumps > 127) throw new WireError('bad compression pointer');
      lowest = target;
      pos = target;
      continue;
    }
    if ((len & 0xc0) !== 0) throw new WireError('unsupported label type');
    if (pos + 1 + len > buf.length) throw new WireError('label runs past the end of the message');
    wireLen += len + 1;
    if (wireLen > 255) throw new WireError('name longer than 255 octets');
    labels.push(escapeLabel(buf, pos + 1, len));
    pos += 1 + len;
  }
  return { name: labels.length ? labels.join('.') : '.', end };
}

/** Splits a presentation name into raw label bytes (handles \. and \DDD escapes). */
export function nameToLabels(name: string): Buffer[] {
  if (name === '.' || name === '') return [];
  const trimmed = name.endsWith('.') && !name.endsWith('\\.') ? name.slice(0, -1) : name;
  const labels: Buffer[] = [];
  let cur: number[] = [];
  for (let i = 0; i < trimmed.length; i++) {
    const ch = trimmed[i];
    if (ch === '\\') {
      const d = trimmed.slice(i + 1, i + 4);
      if (/^\d{3}$/.test(d)) {
        cur.push(Number(d) & 0xff);
        i += 3;
      } else if (i + 1 < trimmed.length) {
        cur.push(trimmed.charCodeAt(++i) & 0xff);
      }
    } else if (ch === '.') {
      labels.push(Buffer.from(cur));
      cur = [];
    } else {
      const bytes = Buffer.from(ch, 'utf8');
      for (const b of bytes) cur.push(b);
    }
  }
  labels.push(Buffer.from(cur));
  for (const l of labels) {
    if (l.length === 0 || l.length > 63) throw new WireError(`bad label in name ${JSON.stringify(name)}`);
  }
  return labels;
}

/** Uncompressed wire form; lowercase when `canonical` (RFC 4034 §6.2, RFC 8945 §4.3.2). */
export function encodeName(name: string, canonical = false): Buffer {
  const parts: Buffer[] = [];
  for (const label of nameToLabels(name)) {
    const l = canonical ? Buffer.from(label.map((c) => (c >= 0x41 && c <= 0x5a ? c + 32 : c))) : label;
    parts.push(Buffer.from([l.length]), l);
  }
  parts.push(Buffer.from([0]));
  const out = Buffer.concat(parts);
  if (out.length > 255) throw new WireError('name longer than 255 octets');
  return out;
}

/** Canonical comparison form of a name: lowercase ASCII, no trailing dot; root is '.'. */
export function canonicalName(name: string): string {
  let n = name.trim();
  if (n.length > 1 && n.endsWith('.') && !n.endsWith('\\.')) n = n.slice(0, -1);
  if (n === '') n = '.';
  return n.replace(/[A-Z]/g, (c) => c.toLowerCase());
}

/** Scans a whole message; throws WireError when any section is malformed. */
export function scanMessage(buf: Uint8Array): RawMessage {
  if (buf.length < 12) throw new WireError('message shorter than its 12-byte header');
  const u16 = (o: number) => (buf[o] << 8) | buf[o + 1];
  const flags = u16(2);
  const counts: [number, number, number, number] = [u16(4), u16(6), u16(8), u16(10)];
  const questions: RawQuestion[] = [];
  const records: RawRecord[] = [];
  let pos = 12;
  for (let i = 0; i < counts[0]; i++) {
    const start = pos;
    const n = readName(buf, pos);
    pos = n.end;
    if (pos + 4 > buf.length) throw new WireError('truncated question');
    questions.push({ name: n.name, type: u16(pos), class: u16(pos + 2), start, end: pos + 4 });
    pos += 4;
  }
  const sections: RawRecord['section'][] = ['answer', 'authority', 'additional'];
  for (let s = 0; s < 3; s++) {
    for (let i = 0; i < counts[s + 1]; i++) {
      const start = pos;
      const n = readName(buf, pos);
      pos = n.end;
      if (pos + 10 > buf.length) throw new WireError('truncated resource record');
      const rdlength = u16(pos + 8);
      const rdataStart = pos + 10;
      if (rdataStart + rdlength > buf.length) throw new WireError('RDATA runs past the end of the message');
      records.push({
        section: sections[s],
        name: n.name,
        type: u16(pos),
        class: u16(pos + 2),
        ttl: ((buf[pos + 4] << 24) >>> 0) + (buf[pos + 5] << 16) + (buf[pos + 6] << 8) + buf[pos + 7],
        rdataStart,
        rdlength,
        start,
        end: rdataStart + rdlength,
      });
      pos = rdataStart + rdlength;
    }
  }
  return {
    id: u16(0),
    flags,
    qr: (flags & 0x8000) !== 0,
    opcode: (flags >> 11) & 0xf,
    rcode: flags & 0xf,
    counts,
    questions,
    records,
    trailing: buf.length - pos,
  };
}
