/**
 * Building a response message from sections of RRsets, within a size limit.
 *
 * Truncation follows RFC 2181 §9 and RFC 9471: whole RRsets only; if an answer or authority
 * RRset (or required glue) does not fit, set TC and stop; other additional data is simply
 * left out. EDNS(0) OPT (RFC 6891 §6.1.2, §6.1.3) always fits: its 11 octets are reserved.
 */
import { Buffer } from 'node:buffer';
import type { Labels } from '../wire/name.ts';
import type { Query } from '../wire/decode.ts';
import { FLAG, TYPE } from '../wire/constants.ts';
import { MessageWriter } from '../wire/writer.ts';

export interface OutRRset {
  labels: Labels;
  type: number;
  ttl: number;
  rdata: Buffer[];
  /** Glue that a referral cannot do without: if it does not fit, set TC (RFC 9471 §3). */
  required?: boolean;
}

export interface Sections {
  answer: OutRRset[];
  authority: OutRRset[];
  additional: OutRRset[];
}

/** Our advertised and maximum UDP payload: the DNS flag day 2020 value. */
export const DEFAULT_MAX_UDP = 1232;

export interface ResponseParams {
  rcode: number;
  aa: boolean;
  /** Message size limit in octets. */
  limit: number;
  /** Advertised UDP size in our OPT. */
  udpSize?: number;
}

/** The size limit for a reply to this query (RFC 1035 §4.2.1, RFC 6891 §6.2.5). */
export function sizeLimit(q: Query, transport: 'udp' | 'tcp', maxUdp = DEFAULT_MAX_UDP): number {
  if (transport === 'tcp') return 65535;
  if (!q.edns) return 512;
  return Math.max(512, Math.min(q.edns.udpSize, maxUdp));
}

export function encodeResponse(q: Query, s: Sections, p: ResponseParams): Buffer {
  const w = new MessageWriter();
  let flags = FLAG.QR | ((q.opcode & 0xf) << 11) | (q.flags & (FLAG.RD | FLAG.CD)) | (p.rcode & 0xf);
  if (p.aa) flags |= FLAG.AA;
  w.header(q.id, flags);
  w.question(q.qname, q.qtype, q.qclass);
  const limit = p.limit - (q.edns ? 11 : 0);
  let truncated = false;
  const put = (section: 1 | 2 | 3, rs: OutRRset): boolean => {
    const m = w.mark();
    for (const rd of rs.rdata) w.rr(section, rs.labels, rs.type, 1, rs.ttl, rd);
    if (w.off > limit) { w.rollback(m); return false; }
    return true;
  };
  for (const rs of s.answer) if (!put(1, rs)) { truncated = true; break; }
  if (!truncated) for (const rs of s.authority) if (!put(2, rs)) { truncated = true; break; }
  if (!truncated) {
    for (const rs of s.additional) {
      if (!put(3, rs)) {
        if (rs.required) truncated = true;
        break;
      }
    }
  }
  if (truncated) w.setFlags(w.getFlags() | FLAG.TC);
  if (q.edns) writeOpt(w, p.rcode, q.edns.do, p.udpSize ?? DEFAULT_MAX_UDP);
  return w.finish();
}

function writeOpt(w: MessageWriter, rcode: number, dnssecOk: boolean, udpSize: number): void {
  // OPT: root owner, CLASS = our UDP size, TTL = extended RCODE | version 0 | DO echoed.
  const ttl = (((rcode >> 4) & 0xff) << 24) | (dnssecOk ? 0x8000 : 0);
  w.rr(3, [], TYPE.OPT, udpSize, ttl, Buffer.alloc(0));
}
