/**
 * Safe query decoding (RFC 1035 §4.1, RFC 6891 §6.1.1 and §7 for OPT, RFC 6895 §2 for
 * opcodes).
 *
 * Every outcome is a value: a decoded query, a ready-made error reply (FORMERR/NOTIMP) when
 * at least the header is readable, or a drop. Responses (QR=1) are dropped, never answered,
 * so two servers cannot ping-pong. The question keeps the exact label octets (case is
 * echoed, RFC 4343 §4.1). The other sections are walked record by record (names through
 * ./name.ts's one reader, RDLENGTH bounds-checked; RDATA is not interpreted, as NSD does
 * not) to find the OPT record and a trailing TSIG:
 * - more than one OPT, an OPT not owned by the root, or one outside the additional section
 *   is FORMERR (RFC 6891 §6.1.1);
 * - OPT options are walked: an option running past the RDATA is FORMERR *with* an OPT
 *   (RFC 6891 §7), so the client does not conclude we lack EDNS; options we do not
 *   implement, empty ones included (an empty Client Subnet, `dig +ednsopt=8`), are ignored
 *   (RFC 6891 §6.1.2).
 * - An unknown opcode is NOTIMP with the query's header flags echoed (but AD) and QR set,
 *   as NSD answers it over UDP and TCP (test/nsd-compare.test.ts); no question, since its format
 *   belongs to the opcode.
 */
import { Buffer } from 'node:buffer';
import { labelsToKey, readName, type Labels } from './name.ts';
import { OPCODE, RCODE, TYPE } from './constants.ts';
import { formerrWithOpt, headerOnlyReply, notImplementedReply } from './writer.ts';

export interface Edns {
  udpSize: number;
  version: number;
  /** DNSSEC OK bit (RFC 3225). */
  do: boolean;
}

export interface Query {
  id: number;
  opcode: number;
  /** The raw 16-bit flags word. */
  flags: number;
  rd: boolean;
  cd: boolean;
  qname: Labels;
  /** Canonical lowercase key of qname (see wire/name.ts). */
  qkey: string;
  qtype: number;
  qclass: number;
  /** null when the query carried no OPT record. */
  edns: Edns | null;
  /**
   * The last record is a TSIG (RFC 8945), or the sections of a non-QUERY message could not
   * be walked: either way the TSIG verifier must look.
   */
  signed: boolean;
  raw: Buffer;
}

export type DecodeResult =
  | { ok: true; query: Query }
  | { ok: false; rcode: 'FORMERR' | 'NOTIMP' | null; id?: number; reply: Buffer | null; reason: string };

const KNOWN_OPCODES = new Set<number>([OPCODE.QUERY, OPCODE.NOTIFY, OPCODE.UPDATE]);

export function decodeQuery(buf: Buffer): DecodeResult {
  if (buf.length < 12) return { ok: false, rcode: null, reply: null, reason: 'shorter than a header' };
  const id = buf.readUInt16BE(0);
  const flags = buf.readUInt16BE(2);
  const opcode = (flags >> 11) & 0xf;
  const rd = (flags & 0x0100) !== 0;
  if (flags & 0x8000) return { ok: false, rcode: null, id, reply: null, reason: 'a response, not a query' };
  const fail = (rcode: 'FORMERR' | 'NOTIMP', reason: string): DecodeResult => ({
    ok: false, rcode, id, reason,
    reply: headerOnlyReply(id, opcode, rd, rcode === 'FORMERR' ? RCODE.FORMERR : RCODE.NOTIMP),
  });
  if (!KNOWN_OPCODES.has(opcode)) return { ok: false, rcode: 'NOTIMP', id, reason: `opcode ${opcode} not implemented`, reply: notImplementedReply(id, flags) };
  if (buf.readUInt16BE(4) !== 1) return fail('FORMERR', 'QDCOUNT must be 1');

  let q: { labels: Labels; end: number };
  try {
    q = readName(buf, 12);
  } catch (e) {
    return fail('FORMERR', `malformed question: ${(e as Error).message}`);
  }
  if (q.end + 4 > buf.length) return fail('FORMERR', 'malformed question');
  const qtype = buf.readUInt16BE(q.end);
  const qclass = buf.readUInt16BE(q.end + 2);

  const an = buf.readUInt16BE(6);
  const ns = buf.readUInt16BE(8);
  const total = an + ns + buf.readUInt16BE(10);
  let edns: Edns | null = null;
  let badOptions = false;
  let signed = false;
  let pos = q.end + 4;
  for (let i = 0; i < total; i++) {
    let end: number;
    let root: boolean;
    try {
      const n = readName(buf, pos);
      end = n.end;
      root = n.labels.length === 0;
    } catch (e) {
      // UPDATE and NOTIFY layers read their own messages (and answer their own FORMERR).
      if (opcode !== OPCODE.QUERY) { signed = true; break; }
      return fail('FORMERR', `malformed record: ${(e as Error).message}`);
    }
    if (end + 10 > buf.length || end + 10 + buf.readUInt16BE(end + 8) > buf.length) {
      if (opcode !== OPCODE.QUERY) { signed = true; break; }
      return fail('FORMERR', 'record runs past the end of the message');
    }
    const type = buf.readUInt16BE(end);
    const rdlength = buf.readUInt16BE(end + 8);
    const rdata = end + 10;
    if (type === TYPE.OPT) {
      if (i < an + ns) return fail('FORMERR', 'OPT outside the additional section');
      if (edns || !root) return fail('FORMERR', 'bad OPT record');
      const ttl = buf.readUInt32BE(end + 4);
      edns = { udpSize: buf.readUInt16BE(end + 2), version: (ttl >>> 16) & 0xff, do: (ttl & 0x8000) !== 0 };
      for (let p = rdata; p < rdata + rdlength;) {
        if (p + 4 > rdata + rdlength || p + 4 + buf.readUInt16BE(p + 2) > rdata + rdlength) { badOptions = true; break; }
        p += 4 + buf.readUInt16BE(p + 2);
      }
    }
    signed = type === TYPE.TSIG && i === total - 1 && i >= an + ns;
    pos = rdata + rdlength;
  }
  if (badOptions) {
    return { ok: false, rcode: 'FORMERR', id, reason: 'OPT option runs past its RDATA', reply: formerrWithOpt(id, opcode, rd) };
  }

  return {
    ok: true,
    query: {
      id, opcode, flags, rd, cd: (flags & 0x0010) !== 0,
      qname: q.labels, qkey: labelsToKey(q.labels), qtype, qclass, edns, signed, raw: buf,
    },
  };
}
