/**
 * Whole responses in wire form, keyed by the query itself: the same question with the same
 * flags and EDNS option, over the same transport, from a client with the same rights, gets
 * the same bytes — with its own ID, its own question case (0x20), and, for forwarded
 * answers, TTLs aged by the time spent in the cache (RFC 1035 §7.4, RFC 2308 §5).
 *
 * Answers from our own zones (AA or not: referrals, REFUSED, NOTIMP...) live until the zones
 * change (clear()) and never age: their TTLs are the zone's. Forwarded answers live until
 * their smallest TTL runs out, counting down; forwarded answers with no records (a blocked
 * name) for a minute at most. The shell says which replies were forwarded. SERVFAIL, zone transfers, UPDATE/NOTIFY and signed (TSIG)
 * queries are never cached.
 */
import { Buffer } from 'node:buffer';
import { RCODE, TYPE } from './wire/constants.ts';
import { skipName } from './wire/name.ts';

interface Entry {
  bytes: Buffer;
  /** End of the question section (same in query and response). */
  qEnd: number;
  storedAt: number;
  expires: number;
  ttlOffsets: number[];
  ttls: number[];
}

const OPT = TYPE.OPT;
const AXFR = TYPE.AXFR;
const IXFR = TYPE.IXFR;
const SERVFAIL = RCODE.SERVFAIL;
const NON_AUTH_MAX_MS = 60_000;
// Queries longer than this (a big OPT) are simply not cached.
const KEY_SCRATCH = Buffer.alloc(512);

export class ResponseCache {
  private readonly map = new Map<string, Entry>();
  private readonly maxEntries: number;
  private readonly now: () => number;
  /** Bumped by clear(): a response computed before it must not be stored after it. */
  generation = 0;

  constructor(opts: { maxEntries: number; now: () => number }) {
    this.maxEntries = opts.maxEntries;
    this.now = opts.now;
  }

  get size(): number {
    return this.map.size;
  }

  clear(): void {
    this.map.clear();
    this.generation++;
  }

  /**
   * The cache key of a query, or undefined when it must not be cached: not a plain QUERY
   * with one question, a transfer, anything but an OPT in the additional section.
   */
  key(q: Buffer, transport: 'udp' | 'tcp', recursionAllowed: boolean): string | undefined {
    if (this.maxEntries === 0 || q.length < 17) return undefined;
    const flags = q.readUInt16BE(2);
    if (flags & 0x8000 || (flags >> 11) & 0xf) return undefined; // a response, or not QUERY
    if (q.readUInt16BE(4) !== 1 || q.readUInt16BE(6) !== 0 || q.readUInt16BE(8) !== 0) return undefined;
    const ar = q.readUInt16BE(10);
    if (ar > 1) return undefined;
    // The question name: plain labels only (a query has nothing to point back to). The key
    // is the query from the flags on, with the name lowercased: one string, built once.
    if (q.length > KEY_SCRATCH.length) return undefined;
    KEY_SCRATCH.set(q);
    let off = 12;
    for (;;) {
      if (off >= q.length) return undefined;
      const len = q[off]!;
      if (len & 0xc0 || off + 1 + len > q.length) return undefined;
      for (let i = off + 1; i <= off + len; i++) {
        const c = KEY_SCRATCH[i]!;
        if (c >= 0x41 && c <= 0x5a) KEY_SCRATCH[i] = c | 0x20;
      }
      off += 1 + len;
      if (len === 0) break;
    }
    if (off + 4 > q.length) return undefined;
    const qtype = q.readUInt16BE(off);
    if (qtype === AXFR || qtype === IXFR) return undefined;
    const qEnd = off + 4;
    if (ar === 1) {
      // Only an OPT (root owner, type 41) that ends the message: a TSIG is never cached.
      if (q[qEnd] !== 0 || qEnd + 11 > q.length || q.readUInt16BE(qEnd + 1) !== OPT) return undefined;
      if (qEnd + 11 + q.readUInt16BE(qEnd + 9) !== q.length) return undefined;
    } else if (qEnd !== q.length) return undefined;
    // The transport and rights go in the byte before the flags (the ID's second byte, not
    // part of the key): one string made, no concatenation to flatten before hashing.
    KEY_SCRATCH[1] = transport === 'udp' ? (recursionAllowed ? 0x55 : 0x75) : recursionAllowed ? 0x54 : 0x74; // U u T t
    return KEY_SCRATCH.toString('latin1', 1, q.length);
  }

  get(key: string, query: Buffer): Buffer | undefined {
    const e = this.map.get(key);
    if (!e) return undefined;
    const now = this.now();
    if (now >= e.expires) {
      this.map.delete(key);
      return undefined;
    }
    // Every byte is overwritten at once: no need to zero the pool slice first.
    const out = Buffer.allocUnsafe(e.bytes.length);
    out.set(e.bytes);
    // The client's ID and its question, in its case: a few dozen bytes, copied by hand (a
    // Buffer.copy call costs more than the bytes).
    out[0] = query[0]!;
    out[1] = query[1]!;
    for (let i = 12; i < e.qEnd; i++) out[i] = query[i]!;
    if (e.ttlOffsets.length > 0) {
      const aged = Math.floor((now - e.storedAt) / 1000);
      for (let i = 0; i < e.ttlOffsets.length; i++) out.writeUInt32BE(Math.max(0, e.ttls[i]! - aged), e.ttlOffsets[i]!);
    }
    return out;
  }

  /**
   * Remember `response` to the query keyed `key`, if it may be cached. `forwarded`: the
   * answer came from an upstream (its TTLs age); when not said, a reply without AA counts
   * as forwarded.
   */
  put(key: string, response: Buffer, generation: number, forwarded?: boolean): void {
    if (generation !== this.generation || response.length < 12) return;
    if ((response[3]! & 0xf) === SERVFAIL) return;
    const aa = forwarded === undefined ? (response[2]! & 0x04) !== 0 : !forwarded;
    const qEnd = skipName(response, 12) + 4;
    if (qEnd < 16 || qEnd > response.length) return;
    const ttlOffsets: number[] = [];
    const ttls: number[] = [];
    const count = response.readUInt16BE(6) + response.readUInt16BE(8) + response.readUInt16BE(10);
    let off = qEnd;
    for (let i = 0; i < count; i++) {
      off = skipName(response, off);
      if (off < 0 || off + 10 > response.length) return;
      const type = response.readUInt16BE(off);
      if (type !== OPT) {
        ttlOffsets.push(off + 4);
        ttls.push(response.readUInt32BE(off + 4));
      }
      off += 10 + response.readUInt16BE(off + 8);
      if (off > response.length) return;
    }
    const now = this.now();
    let expires: number;
    if (aa) expires = Infinity;
    else if (ttls.length > 0) {
      const min = Math.min(...ttls);
      if (min <= 0) return;
      expires = now + min * 1000;
    } else expires = now + NON_AUTH_MAX_MS;
    if (this.map.size >= this.maxEntries) this.map.delete(this.map.keys().next().value!);
    const bytes = Buffer.from(response);
    bytes.writeUInt16BE(0, 0);
    // Authoritative TTLs do not age: they are the zone's.
    this.map.set(key, { bytes, qEnd, storedAt: now, expires, ttlOffsets: aa ? [] : ttlOffsets, ttls: aa ? [] : ttls });
  }
}
