/**
 * RR types and RDATA for UPDATE: type numbers ↔ names (RFC 3597 TYPEnnn for the rest),
 * decoding one RDATA through dns-packet's per-type codecs, and a canonical comparison key
 * (RFC 2136 §1.1.1: RRs compare by RDATA; names inside RDATA compare case-insensitively,
 * RFC 4034 §6.2).
 */
import dnsPacket from 'dns-packet';
import { WireError } from '../tsig/raw.ts';

const TYPES: Record<string, number> = {
  A: 1, NS: 2, CNAME: 5, SOA: 6, PTR: 12, HINFO: 13, MX: 15, TXT: 16, RP: 17, AAAA: 28, SRV: 33,
  NAPTR: 35, DNAME: 39, OPT: 41, DS: 43, SSHFP: 44, RRSIG: 46, NSEC: 47, DNSKEY: 48, NSEC3: 50,
  TLSA: 52, SVCB: 64, HTTPS: 65, SPF: 99, TKEY: 249, TSIG: 250, IXFR: 251, AXFR: 252, MAILB: 253,
  MAILA: 254, ANY: 255, CAA: 257,
};
const NAMES: Record<number, string> = Object.fromEntries(Object.entries(TYPES).map(([k, v]) => [v, k]));

export function typeName(n: number): string {
  return NAMES[n] ?? `TYPE${n}`;
}

export function typeNumber(name: string): number | undefined {
  const up = name.toUpperCase();
  if (up in TYPES) return TYPES[up];
  const m = /^TYPE(\d{1,5})$/.exec(up);
  return m && Number(m[1]) < 65536 ? Number(m[1]) : undefined;
}

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
