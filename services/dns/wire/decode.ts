/**
 * Safe query decoding (RFC 1035 §4.1, RFC 6891 §6.1.1 for OPT, RFC 6895 §2 for opcodes).
 *
 * Wraps dns-packet's decoder, which throws on malformed input, so that every outcome is a
 * value: a decoded query, a ready-made error reply (FORMERR/NOTIMP) when at least the
 * header is readable, or a drop. Responses (QR=1) are dropped, never answered, so two
 * servers cannot ping-pong. The question is re-read from the raw bytes to keep the exact
 * label octets (case is echoed, RFC 4343 §4.1).
 */
import { Buffer } from 'node:buffer';
import * as dnsPacket from 'dns-packet';
import type { Packet } from 'dns-packet';
import { labelsToKey, readName, type Labels } from './name.ts';
import { OPCODE, RCODE } from './constants.ts';
import { headerOnlyReply } from './writer.ts';

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
   * dns-packet's full decode, for layers that need the other sections. Always present for
   * QUERY; null for NOTIFY/UPDATE messages dns-packet cannot read (parse `raw` instead).
   */
  packet: Packet | null;
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
  if (!KNOWN_OPCODES.has(opcode)) return fail('NOTIMP', `opcode ${opcode} not implemented`);
  if (buf.readUInt16BE(4) !== 1) return fail('FORMERR', 'QDCOUNT must be 1');

  let packet: Packet | null;
  try {
    packet = dnsPacket.decode(buf);
  } catch (e) {
    // dns-packet advances by what it decoded rather than RDLENGTH, so it rejects UPDATE's
    // empty-RDATA records (RFC 2136 §2.5.2); those layers parse `raw` themselves.
    if (opcode === OPCODE.QUERY) return fail('FORMERR', `malformed: ${(e as Error).message}`);
    packet = null;
  }
  let q: { labels: Labels; end: number };
  try {
    q = readName(buf, 12);
  } catch (e) {
    return fail('FORMERR', `malformed question: ${(e as Error).message}`);
  }
  if (q.end + 4 > buf.length) return fail('FORMERR', 'malformed question');
  const qtype = buf.readUInt16BE(q.end);
  const qclass = buf.readUInt16BE(q.end + 2);

  let edns: Edns | null = null;
  const additionals = (packet?.additionals ?? []) as unknown as Array<Record<string, unknown>>;
  for (const rr of additionals) {
    if (rr.type !== 'OPT') continue;
    // RFC 6891 §6.1.1: more than one OPT, or an OPT not owned by the root, is FORMERR.
    if (edns || (rr.name !== '.' && rr.name !== '')) return fail('FORMERR', 'bad OPT record');
    edns = {
      udpSize: Number(rr.udpPayloadSize ?? 512),
      version: Number(rr.ednsVersion ?? 0),
      do: (Number(rr.flags ?? 0) & 0x8000) !== 0,
    };
  }
  for (const sec of [packet?.answers ?? [], packet?.authorities ?? []] as unknown as Array<Array<Record<string, unknown>>>) {
    for (const rr of sec) if (rr.type === 'OPT') return fail('FORMERR', 'OPT outside the additional section');
  }

  return {
    ok: true,
    query: {
      id, opcode, flags, rd, cd: (flags & 0x0010) !== 0,
      qname: q.labels, qkey: labelsToKey(q.labels), qtype, qclass, edns, packet, raw: buf,
    },
  };
}
