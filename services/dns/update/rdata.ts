/**
 * RDATA for UPDATE (type numbers and names come from wire/constants.ts): decoding one
 * RDATA through dns-packet's per-type codecs, and a canonical comparison key (RFC 2136 §1.1.1: RRs compare by RDATA; names inside RDATA compare case-insensitively,
 * RFC 4034 §6.2).
 */
import dnsPacket from 'dns-packet';
import { WireError } from '../wire/error.ts';

/** Types that dns-packet has a typed codec for; anything else is carried as raw bytes. */
const CODEC_TYPES = new Set(['A', 'PTR', 'CNAME', 'DNAME', 'TXT', 'NULL', 'AAAA', 'SRV', 'HINFO', 'CAA', 'NS', 'SOA', 'MX', 'DNSKEY', 'RRSIG', 'RP', 'NSEC', 'NSEC3', 'SSHFP', 'DS', 'NAPTR', 'TLSA']);

interface Codec {
  decode(buf: Buffer, offset: number): unknown;
  encode(data: unknown, buf?: Buffer, offset?: number): Buffer;
}

function codec(type: string): Codec {
  // dns-packet exports `record(type)` at run time; its typings leave it out.
  return (dnsPacket as unknown as { record(t: string): Codec }).record(CODEC_TYPES.has(type) ? type : 'NULL');
}

/** Decodes RDATA at rdataStart (RDLENGTH sits just before it). Throws WireError. */
export function decodeRdata(type: string, msg: Buffer, rdataStart: number, rdlength: number): unknown {
  if (!CODEC_TYPES.has(type)) return Buffer.from(msg.subarray(rdataStart, rdataStart + rdlength));
  const c = codec(type) as Codec & { decode: { bytes?: number } };
  let data: unknown;
  try {
    data = c.decode(msg, rdataStart - 2);
  } catch (e) {
    throw new WireError(`bad ${type} RDATA: ${e instanceof Error ? e.message : e}`);
  }
  if ((c.decode as { bytes?: number }).bytes !== rdlength + 2) throw new WireError(`bad ${type} RDATA length`);
  return data;
}

const lower = (s: unknown) => (typeof s === 'string' ? s.toLowerCase() : s);

/** Copies data (dns-packet's TXT encoder mutates arrays) and lowercases embedded names. */
function canonicalData(type: string, data: unknown): unknown {
  if (Array.isArray(data)) return data.slice();
  if (data === null || typeof data !== 'object' || Buffer.isBuffer(data)) {
    return ['NS', 'CNAME', 'PTR', 'DNAME'].includes(type) ? lower(data) : data;
  }
  const d = { ...(data as Record<string, unknown>) };
  for (const f of { MX: ['exchange'], SRV: ['target'], SOA: ['mname', 'rname'], NAPTR: ['replacement'], RP: ['mbox', 'txt'] }[type] ?? []) {
    d[f] = lower(d[f]);
  }
  return d;
}

/** RDATA in canonical wire form, as hex: equal keys mean equal RRs. */
export function rdataKey(type: string, data: unknown): string {
  if (Buffer.isBuffer(data)) return data.toString('hex');
  try {
    return codec(type).encode(canonicalData(type, data)).subarray(2).toString('hex');
  } catch {
    return 'json:' + JSON.stringify(data);
  }
}
