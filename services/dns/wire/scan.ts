/**
 * A raw DNS message scanner: header, names (with compression pointers) and resource-record
 * boundaries, with byte offsets. RFC 1035 §4.1 (format); names through ./name.ts's one
 * reader (§4.1.4 compression, with its hostile-input rule).
 *
 * Why not dns-packet: TSIG (RFC 8945) and UPDATE (RFC 2136) need the exact byte ranges of
 * each record, and UPDATE carries RRs with CLASS NONE/ANY and empty RDATA that dns-packet's
 * typed decoders misread. Everything here bounds-checks and throws WireError, which callers
 * turn into FORMERR.
 */

import { WireError } from './error.ts';
import { nameText, readName } from './name.ts';

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
    questions.push({ name: nameText(n.labels), type: u16(pos), class: u16(pos + 2), start, end: pos + 4 });
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
        name: nameText(n.labels),
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
