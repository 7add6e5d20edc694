/**
 * DNS Cookies (RFC 7873) with interoperable server cookies (RFC 9018), the server side.
 *
 * A client sends an 8-byte client cookie in an EDNS COOKIE option (code 10); we answer
 * with its client cookie and a 16-byte server cookie: version 1, three reserved bytes, a
 * 32-bit timestamp, and SipHash-2-4 over (client cookie | version | reserved | timestamp |
 * client IP) keyed by a 16-byte server secret (RFC 9018 §4.2-4.4, as BIND and Knot do).
 * A client that sends our server cookie back has shown that it receives at its source
 * address: response rate limiting lets it through (RFC 7873 §5.3, §9).
 *
 * - RFC 7873 §5.2.2: a COOKIE option of a bad length is answered FORMERR.
 * - §5.2.3-§5.2.5: only a client cookie, or a server cookie that does not verify: answered
 *   normally with a fresh server cookie (BADCOOKIE only in place of a rate-limited answer,
 *   as BIND slips); a valid one: answered, the server cookie renewed when older than half
 *   an hour (RFC 9018 §4.3), valid for an hour, and up to 5 minutes in the future.
 * - §5.4: a query with no question and a cookie gets our server cookie: NOERROR when it
 *   already presented a valid one, BADCOOKIE otherwise.
 *
 * Pure: bytes in, bytes out, the clock (seconds) and the secret as arguments. The query's
 * COOKIE option is taken out before the query is answered (so cached answers are shared
 * and no cookie is ever cached) and put into the reply after; a query or reply carrying a
 * TSIG record is left as it is (its MAC covers every byte).
 */
import { Buffer } from 'node:buffer';
import { isIPv4, isIPv6 } from 'node:net';
import SipHash from 'siphash';
import { skipName } from '../wire/name.ts';

export const COOKIE_OPTION = 10;
const OPT = 41;
const TSIG = 250;
export const RCODE_FORMERR = 1;
export const RCODE_BADCOOKIE = 23;
/** Bytes our COOKIE option takes in a reply: code, length, 8 + 16. */
export const REPLY_COOKIE_BYTES = 4 + 8 + 16;
const LIFETIME_S = 3600;
const FUTURE_S = 300;
const RENEW_S = 1800;

export type QueryCookie =
  | { kind: 'none' }
  /** A COOKIE option of a length RFC 7873 §5.2.2 says to answer FORMERR. */
  | { kind: 'malformed' }
  | {
    kind: 'cookie';
    client: Buffer;
    server: Buffer | undefined;
    /** The query without the COOKIE option (the same bytes when it is TSIG-signed). */
    stripped: Buffer;
    /** The client's advertised UDP payload size (at least 512). */
    udpSize: number;
    qdcount: number;
    signed: boolean;
  };

interface OptAt {
  /** Offset of the OPT RR's owner name (a single 0 byte). */
  rr: number;
  rdata: number;
  rdlen: number;
  /** A TSIG record anywhere in the message. */
  signed: boolean;
}

/** The OPT record of a message (the first), or undefined; null when the message does not parse. */
function findOpt(m: Buffer): OptAt | undefined | null {
  if (m.length < 12) return null;
  const qd = m.readUInt16BE(4);
  const rrs = m.readUInt16BE(6) + m.readUInt16BE(8);
  const ar = m.readUInt16BE(10);
  let off = 12;
  for (let i = 0; i < qd; i++) {
    off = skipName(m, off);
    if (off < 0 || off + 4 > m.length) return null;
    off += 4;
  }
  let opt: OptAt | undefined;
  let signed = false;
  for (let i = 0; i < rrs + ar; i++) {
    const start = off;
    off = skipName(m, off);
    if (off < 0 || off + 10 > m.length) return null;
    const type = m.readUInt16BE(off);
    const rdlen = m.readUInt16BE(off + 8);
    if (off + 10 + rdlen > m.length) return null;
    if (i >= rrs) {
      if (type === OPT && !opt && m[start] === 0) opt = { rr: start, rdata: off + 10, rdlen, signed: false };
      if (type === TSIG) signed = true;
    }
    off += 10 + rdlen;
  }
  if (opt) opt.signed = signed;
  return opt;
}

/** The COOKIE option of a query (the first one, RFC 7873 §5.2), and the query without it. */
export function inspectQuery(q: Buffer): QueryCookie {
  // Most queries: no additional record at all.
  if (q.length < 12 || q.readUInt16BE(10) === 0) return { kind: 'none' };
  const opt = findOpt(q);
  if (!opt) return { kind: 'none' };
  const end = opt.rdata + opt.rdlen;
  for (let off = opt.rdata; off + 4 <= end;) {
    const code = q.readUInt16BE(off);
    const len = q.readUInt16BE(off + 2);
    if (off + 4 + len > end) return { kind: 'none' }; // a broken OPT: the handler answers it
    if (code === COOKIE_OPTION) {
      // 8 bytes of client cookie, then nothing or 8 to 32 bytes of server cookie.
      if (len !== 8 && (len < 16 || len > 40)) return { kind: 'malformed' };
      const client = Buffer.from(q.subarray(off + 4, off + 12));
      const server = len > 8 ? Buffer.from(q.subarray(off + 12, off + 4 + len)) : undefined;
      const udpSize = Math.max(512, q.readUInt16BE(opt.rr + 3));
      let stripped = q;
      if (!opt.signed) {
        stripped = Buffer.concat([q.subarray(0, off), q.subarray(off + 4 + len)]);
        stripped.writeUInt16BE(opt.rdlen - 4 - len, opt.rr + 9);
        // Leave room for the cookie we add to the reply.
        stripped.writeUInt16BE(Math.max(512, udpSize - REPLY_COOKIE_BYTES), opt.rr + 3);
      }
      return { kind: 'cookie', client, server, stripped, udpSize, qdcount: q.readUInt16BE(4), signed: opt.signed };
    }
    off += 4 + len;
  }
  return { kind: 'none' };
}

/** The client's address as the bytes RFC 9018 §4.4 hashes: 4 for IPv4 (mapped too), 16 for IPv6. */
export function addressBytes(address: string): Buffer {
  const a = address.startsWith('::ffff:') && isIPv4(address.slice(7)) ? address.slice(7) : address;
  if (isIPv4(a)) return Buffer.from(a.split('.').map(Number));
  if (!isIPv6(a)) return Buffer.alloc(0);
  const [head, tail = ''] = a.split('%')[0]!.split('::');
  const h = head ? head.split(':') : [];
  const t = tail ? tail.split(':') : [];
  const groups = a.includes('::') ? [...h, ...Array(8 - h.length - t.length).fill('0'), ...t] : h;
  const out = Buffer.alloc(16);
  groups.forEach((g, i) => out.writeUInt16BE(parseInt(g, 16) || 0, i * 2));
  return out;
}

/** A 16-byte secret as SipHash's key words. */
export function sipKey(secret: Buffer): Uint32Array {
  if (secret.length !== 16) throw new Error('a DNS cookie secret is 16 bytes');
  return new Uint32Array([secret.readUInt32LE(0), secret.readUInt32LE(4), secret.readUInt32LE(8), secret.readUInt32LE(12)]);
}

/** RFC 9018 §4.2: the server cookie for `client` at `address`, made at `timestamp` (seconds). */
export function serverCookie(key: Uint32Array, client: Buffer, address: string, timestamp: number): Buffer {
  const ip = addressBytes(address);
  const input = Buffer.alloc(16 + ip.length);
  client.copy(input, 0);
  input[8] = 1; // version; reserved bytes stay 0
  input.writeUInt32BE(timestamp >>> 0, 12);
  ip.copy(input, 16);
  const h = SipHash.hash(key, input);
  const out = Buffer.alloc(16);
  input.copy(out, 0, 8, 16);
  out.writeUInt32LE(h.l >>> 0, 8);
  out.writeUInt32LE(h.h >>> 0, 12);
  return out;
}

/**
 * Whether `server` is a cookie we made for this client and address, within its lifetime
 * (RFC 9018 §4.3; timestamps compared in serial number arithmetic, RFC 1982).
 */
export function verifyServerCookie(key: Uint32Array, client: Buffer, server: Buffer | undefined, address: string, now: number): boolean {
  if (!server || server.length !== 16 || server[0] !== 1) return false;
  const ts = server.readUInt32BE(4);
  const age = ((now >>> 0) - ts) | 0; // signed 32-bit difference
  if (age > LIFETIME_S || age < -FUTURE_S) return false;
  return serverCookie(key, client, address, ts).equals(server);
}

/** The server cookie to send: the client's own when valid and fresh enough, else a new one. */
export function replyServerCookie(key: Uint32Array, client: Buffer, server: Buffer | undefined, valid: boolean, address: string, now: number): Buffer {
  if (valid && server && (((now >>> 0) - server.readUInt32BE(4)) | 0) < RENEW_S) return server;
  return serverCookie(key, client, address, now);
}

/**
 * `reply` with a COOKIE option (client + server cookie) in its OPT record, adding an OPT
 * record when it has none. Undefined when the reply does not parse or carries a TSIG
 * record (adding bytes would break its MAC): send it as it is.
 */
export function withCookie(reply: Buffer, client: Buffer, server: Buffer): Buffer | undefined {
  const opt = findOpt(reply);
  if (opt === null || opt?.signed) return undefined;
  const option = Buffer.alloc(4 + client.length + server.length);
  option.writeUInt16BE(COOKIE_OPTION, 0);
  option.writeUInt16BE(client.length + server.length, 2);
  client.copy(option, 4);
  server.copy(option, 4 + client.length);
  if (!opt) {
    const out = Buffer.concat([reply, optRecord(0, option)]);
    out.writeUInt16BE(reply.readUInt16BE(10) + 1, 10);
    return out;
  }
  const at = opt.rdata + opt.rdlen;
  const out = Buffer.concat([reply.subarray(0, at), option, reply.subarray(at)]);
  out.writeUInt16BE(opt.rdlen + option.length, opt.rr + 9);
  return out;
}

/** An OPT record: root owner, our UDP size (1232), extended RCODE, version 0, these options. */
function optRecord(extRcode: number, options: Buffer): Buffer {
  const rr = Buffer.alloc(11 + options.length);
  rr.writeUInt16BE(OPT, 1);
  rr.writeUInt16BE(1232, 3);
  rr[5] = extRcode;
  rr.writeUInt16BE(options.length, 9);
  options.copy(rr, 11);
  return rr;
}

/**
 * A reply made here rather than by the answer engine: the header and question of `msg`
 * (a query or a reply), QR set, `rcode` (extended through the OPT when above 15), TC when
 * asked, no records but an OPT carrying `cookie` (client + server) when given.
 */
export function shortReply(msg: Buffer, rcode: number, opts: { tc?: boolean; client?: Buffer; server?: Buffer } = {}): Buffer {
  let qEnd = 12;
  let qd = 0;
  if (msg.length >= 12 && msg.readUInt16BE(4) === 1) {
    const n = skipName(msg, 12);
    if (n > 0 && n + 4 <= msg.length) {
      qEnd = n + 4;
      qd = 1;
    }
  }
  const head = Buffer.from(msg.subarray(0, Math.max(12, qEnd)));
  if (head.length < 12) return Buffer.alloc(0);
  head[2] = 0x80 | (head[2]! & 0x79) | (opts.tc ? 0x02 : 0); // QR, opcode and RD kept, AA cleared
  head[3] = rcode & 0x0f; // RA, Z, AD, CD cleared
  head.writeUInt16BE(qd, 4);
  head.writeUInt16BE(0, 6);
  head.writeUInt16BE(0, 8);
  head.writeUInt16BE(1, 10);
  let option = Buffer.alloc(0);
  if (opts.client && opts.server) {
    option = Buffer.alloc(4 + 8 + opts.server.length);
    option.writeUInt16BE(COOKIE_OPTION, 0);
    option.writeUInt16BE(8 + opts.server.length, 2);
    opts.client.copy(option, 4);
    opts.server.copy(option, 12);
  }
  return Buffer.concat([head, optRecord(rcode >> 4, option)]);
}

/** The answer bytes after the cookie went in: over UDP, truncated when now too big for the client. */
export function fitUdp(reply: Buffer, udpSize: number, client: Buffer, server: Buffer): Buffer {
  if (reply.length <= udpSize) return reply;
  return shortReply(reply, reply[3]! & 0x0f, { tc: true, client, server });
}
