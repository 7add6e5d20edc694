/**
 * Reads an UPDATE message (RFC 2136 §2) from raw bytes: the Zone section (§2.3), the
 * Prerequisite section (§2.4, in ANCOUNT), the Update section (§2.5, in NSCOUNT) and the
 * additional data. A trailing TSIG RR (RFC 8945) is reported separately and not treated as
 * additional data. Throws WireError on anything malformed (the caller answers FORMERR).
 */
import { CLASS_ANY, OPCODE, TYPE, typeName } from '../wire/constants.ts';
import { WireError } from '../wire/error.ts';
import { canonicalName } from '../wire/name.ts';
import { scanMessage } from '../wire/scan.ts';
import { decodeRdata } from './rdata.ts';

export const OPCODE_UPDATE = OPCODE.UPDATE;
const TYPE_TSIG = TYPE.TSIG;

export interface UpdateRR {
  /** Canonical owner name (lowercase, no trailing dot). */
  name: string;
  type: string;
  /** Numeric class: the zone class, CLASS_ANY (255) or CLASS_NONE (254). */
  class: number;
  ttl: number;
  rdlength: number;
  /** Decoded RDATA (dns-packet shape) when rdlength > 0; raw Buffer for types without a codec. */
  data?: unknown;
}

export interface ParsedUpdate {
  id: number;
  opcode: number;
  zone: { name: string; type: string; class: number };
  /** The zone section's bytes as received (echoed in the response, RFC 2136 §3.8). */
  zoneBytes: Buffer;
  prerequisites: UpdateRR[];
  updates: UpdateRR[];
  additional: UpdateRR[];
  signed: boolean;
}

/** The parts of a header needed to answer even when the body is garbage. */
export function peekHeader(bytes: Uint8Array): { id: number; opcode: number; qr: boolean } | undefined {
  if (bytes.length < 12) return undefined;
  return { id: (bytes[0] << 8) | bytes[1], opcode: (bytes[2] >> 3) & 0xf, qr: (bytes[2] & 0x80) !== 0 };
}

export function parseUpdate(bytes: Uint8Array): ParsedUpdate {
  const buf = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const m = scanMessage(buf);
  if (m.qr) throw new WireError('UPDATE request has the QR bit set');
  if (m.counts[0] !== 1) throw new WireError(`zone section must hold exactly one entry, not ${m.counts[0]}`);
  if (m.trailing !== 0) throw new WireError('trailing bytes after the last record');
  const z = m.questions[0];
  const zone = { name: canonicalName(z.name), type: typeName(z.type), class: z.class };
  const zoneBytes = Buffer.from(buf.subarray(z.start, z.end));
  const out: ParsedUpdate = { id: m.id, opcode: m.opcode, zone, zoneBytes, prerequisites: [], updates: [], additional: [], signed: false };
  m.records.forEach((r, i) => {
    if (r.type === TYPE_TSIG) {
      if (i !== m.records.length - 1 || r.section !== 'additional') throw new WireError('TSIG is not the last additional record');
      out.signed = true;
      return;
    }
    const type = typeName(r.type);
    let data: unknown;
    // Class ANY/NONE entries compare or delete by type only and carry no data to decode
    // (class NONE deletes carry data: RFC 2136 §2.5.4).
    if (r.rdlength > 0 && r.class !== CLASS_ANY) data = decodeRdata(type, buf, r.rdataStart, r.rdlength);
    const rr: UpdateRR = { name: canonicalName(r.name), type, class: r.class, ttl: r.ttl, rdlength: r.rdlength, data };
    (r.section === 'answer' ? out.prerequisites : r.section === 'authority' ? out.updates : out.additional).push(rr);
  });
  return out;
}
