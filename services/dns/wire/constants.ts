/**
 * The one table of DNS numbers for this service: RR types (IANA registry), classes
 * (RFC 1035 §3.2.4, RFC 2136 §1.3 for NONE), opcodes, rcodes (RFC 1035 §4.1.1, RFC 6895),
 * the TSIG error codes (RFC 8945 §3), header flags, and the TYPEnnn / CLASSnnn generic
 * names of RFC 3597 §5.
 */
export const TYPE: Record<string, number> = {
  A: 1, NS: 2, CNAME: 5, SOA: 6, PTR: 12, HINFO: 13, MX: 15, TXT: 16, RP: 17, AAAA: 28, SRV: 33,
  NAPTR: 35, DNAME: 39, OPT: 41, DS: 43, SSHFP: 44, RRSIG: 46, NSEC: 47, DNSKEY: 48,
  NSEC3: 50, NSEC3PARAM: 51, TLSA: 52, CDS: 59, CDNSKEY: 60, SVCB: 64, HTTPS: 65, SPF: 99,
  TKEY: 249, TSIG: 250, IXFR: 251, AXFR: 252, MAILB: 253, MAILA: 254, ANY: 255, CAA: 257,
};

const TYPE_NAME = new Map<number, string>(Object.entries(TYPE).map(([k, v]) => [v, k]));

export function typeName(t: number): string {
  return TYPE_NAME.get(t) ?? `TYPE${t}`;
}

/** Parse a type mnemonic or TYPEnnn; null when unknown. */
export function parseType(s: string): number | null {
  const u = s.toUpperCase();
  if (u in TYPE) return TYPE[u];
  const m = /^TYPE([0-9]{1,5})$/.exec(u);
  if (m) {
    const n = Number(m[1]);
    return n <= 65535 ? n : null;
  }
  return null;
}

export const CLASS = { IN: 1, CH: 3, HS: 4, NONE: 254, ANY: 255 } as const;
export const CLASS_IN = CLASS.IN;
export const CLASS_CH = CLASS.CH;
export const CLASS_NONE = CLASS.NONE;
export const CLASS_ANY = CLASS.ANY;

const CLASS_NAME = new Map<number, string>(Object.entries(CLASS).map(([k, v]) => [v, k]));

export function className(c: number): string {
  return CLASS_NAME.get(c) ?? `CLASS${c}`;
}

/** Parse a class mnemonic as master files use it (IN, CH, HS) or CLASSnnn; null when unknown. */
export function parseClass(s: string): number | null {
  const u = s.toUpperCase();
  if (u === 'IN') return CLASS.IN;
  if (u === 'CH') return CLASS.CH;
  if (u === 'HS') return CLASS.HS;
  const m = /^CLASS([0-9]{1,5})$/.exec(u);
  if (m && Number(m[1]) <= 65535) return Number(m[1]);
  return null;
}

export const OPCODE = { QUERY: 0, IQUERY: 1, STATUS: 2, NOTIFY: 4, UPDATE: 5 } as const;

export const RCODE = {
  NOERROR: 0, FORMERR: 1, SERVFAIL: 2, NXDOMAIN: 3, NOTIMP: 4, REFUSED: 5,
  YXDOMAIN: 6, YXRRSET: 7, NXRRSET: 8, NOTAUTH: 9, NOTZONE: 10, BADVERS: 16,
} as const;

/** The rcodes a header's four bits can carry, by name. */
export type HeaderRcodeName = Exclude<keyof typeof RCODE, 'BADVERS'>;

/** TSIG errors (RFC 8945 §3; the TSIG RR's Error field, not the header). */
export const TSIG_ERROR = { NOERROR: 0, BADSIG: 16, BADKEY: 17, BADTIME: 18, BADTRUNC: 22 } as const;

/** Header flag bits (RFC 1035 §4.1.1, RFC 4035 §3.2). */
export const FLAG = {
  QR: 0x8000, AA: 0x0400, TC: 0x0200, RD: 0x0100, RA: 0x0080, AD: 0x0020, CD: 0x0010,
} as const;
