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
  /**
   * The response; its ID and the case of its question name are those of the last client
   * lend() answered (put() stores ID 0, the name lowercased). The question is also the
   * query's (put checks it), so the query is not kept apart: a hit compares the client's
   * question with these bytes and then sends them, one block of memory touched instead of
   * two (with thousands of entries, each lookup's cost is mostly cache misses).
   */
  bytes: Buffer;
  /** End of the question section (same in query and response). */
  qEnd: number;
  /** The query's flags (bytes 2-3) and additional count (byte 11; 0 or 1), as one number. */
  head: number;
  /** The query after its question (an OPT record), or undefined when it has none. */
  tail: Buffer | undefined;
  /** A forwarded answer: it expires and its TTLs age. Our own answers do neither. */
  forwarded: boolean;
  storedAt: number;
  expires: number;
  ttlOffsets: readonly number[];
  ttls: readonly number[];
  /** The age in whole seconds whose TTLs `bytes` holds: rewritten once a second, not per hit. */
  renderedAge: number;
  /** Another query whose key hashed the same (rare): the chain is compared byte by byte. */
  next: Entry | undefined;
}

const OPT = TYPE.OPT;
const AXFR = TYPE.AXFR;
const IXFR = TYPE.IXFR;
const SERVFAIL = RCODE.SERVFAIL;
const NON_AUTH_MAX_MS = 60_000;
/** One empty list for every answer of our own (no TTLs to age): one object, not two per entry. */
const NONE: readonly number[] = Object.freeze([]);
// Queries longer than this (a big OPT) are simply not cached.
const MAX_KEYED = 512;

/**
 * A cache key: a 28-bit hash of the query from the flags on (name lowercased) in the high
 * bits, the transport and the client's rights in the low two. A number, not a string: a
 * Map looks a small integer up directly, where a string made per packet has to be hashed
 * and interned first (most of a hit's cost when it was a string).
 */
export type CacheKey = number;

export class ResponseCache {
  /** Keys to the first entry of their (almost always one-entry) chain, oldest first. */
  private readonly map = new Map<CacheKey, Entry>();
  private entries = 0;
  private readonly maxEntries: number;
  private readonly now: () => number;
  /** Bumped by clear(): a response computed before it must not be stored after it. */
  generation = 0;
  /** The entry whose bytes lend() handed out last (keep() may move it to a copy). */
  private lent: Entry | undefined;

  constructor(opts: { maxEntries: number; now: () => number }) {
    this.maxEntries = opts.maxEntries;
    this.now = opts.now;
  }

  get size(): number {
    return this.entries;
  }

  clear(): void {
    this.map.clear();
    this.entries = 0;
    this.generation++;
  }

  /**
   * The cache key of a query, or undefined when it must not be cached: not a plain QUERY
   * with one question, a transfer, anything but an OPT in the additional section. Equal
   * queries (the name in any case, the same flags and OPT) from clients of the same rights
   * over the same transport have the same key; a key's entries are still compared with the
   * query itself, so a hash collision costs a comparison, never a wrong answer.
   */
  key(q: Buffer, transport: 'udp' | 'tcp', recursionAllowed: boolean): CacheKey | undefined {
    if (this.maxEntries === 0 || q.length < 17 || q.length > MAX_KEYED) return undefined;
    const f = q[2]!;
    if (f & 0x80 || (f >> 3) & 0xf) return undefined; // a response, or not QUERY
    if (q[4] !== 0 || q[5] !== 1 || q[6] !== 0 || q[7] !== 0 || q[8] !== 0 || q[9] !== 0 || q[10] !== 0) return undefined;
    const ar = q[11]!;
    if (ar > 1) return undefined;
    // FNV-1a over the flags, the counts and the question name (plain labels only: a query
    // has nothing to point back to), lowercased as it goes.
    let h = 0x811c9dc5;
    for (let i = 2; i < 12; i++) h = Math.imul(h ^ q[i]!, 0x01000193);
    let off = 12;
    for (;;) {
      if (off >= q.length) return undefined;
      const len = q[off]!;
      if (len & 0xc0 || off + 1 + len > q.length) return undefined;
      h = Math.imul(h ^ len, 0x01000193);
      for (let i = off + 1; i <= off + len; i++) {
        const c = q[i]!;
        h = Math.imul(h ^ (c >= 0x41 && c <= 0x5a ? c | 0x20 : c), 0x01000193);
      }
      off += 1 + len;
      if (len === 0) break;
    }
    if (off + 4 > q.length) return undefined;
    const qtype = (q[off]! << 8) | q[off + 1]!;
    if (qtype === AXFR || qtype === IXFR) return undefined;
    const qEnd = off + 4;
    if (ar === 1) {
      // Only an OPT (root owner, type 41) that ends the message: a TSIG is never cached.
      if (q[qEnd] !== 0 || qEnd + 11 > q.length || q.readUInt16BE(qEnd + 1) !== OPT) return undefined;
      if (qEnd + 11 + q.readUInt16BE(qEnd + 9) !== q.length) return undefined;
    } else if (qEnd !== q.length) return undefined;
    for (let i = off; i < q.length; i++) h = Math.imul(h ^ q[i]!, 0x01000193);
    const rights = (transport === 'udp' ? 0 : 2) | (recursionAllowed ? 1 : 0);
    return ((h >>> 2) & 0x0ffffffc) | rights;
  }

  /** The cached answer to `query` (whose key is `key`), with its ID and question case: a copy. */
  get(key: CacheKey, query: Buffer): Buffer | undefined {
    const e = this.find(key, query);
    if (e === undefined) return undefined;
    // Every byte is overwritten at once: no need to zero the pool slice first.
    const out = Buffer.allocUnsafe(e.bytes.length);
    out.set(e.bytes);
    patch(out, query, e.qEnd);
    return out;
  }

  /**
   * As get(), but no copy: the entry's own bytes, with this client's ID and question case
   * written into them — for a reply sent at once (the UDP fast path; copying it was ~3 % of
   * a hit). The bytes are only good until the next call into the cache: when the send was
   * queued rather than handed to the kernel, say so with `keep()` before the next call.
   */
  lend(key: CacheKey, query: Buffer): Buffer | undefined {
    const e = this.find(key, query);
    if (e === undefined) return undefined;
    patch(e.bytes, query, e.qEnd);
    this.lent = e;
    return e.bytes;
  }

  /**
   * `reply` (from lend()) is still in use after this call returns — a send queued in the
   * socket — so its entry moves to a copy: the next client's ID must not be written into
   * bytes that are waiting to be sent.
   */
  keep(reply: Buffer): void {
    const e = this.lent;
    this.lent = undefined;
    if (e !== undefined && e.bytes === reply) e.bytes = Buffer.from(reply);
  }

  /** The entry for `query`, its TTLs aged to now; expired entries go. */
  private find(key: CacheKey, query: Buffer): Entry | undefined {
    let e = this.map.get(key);
    while (e !== undefined && !sameQuery(e, query)) e = e.next;
    if (e === undefined) return undefined;
    // Our own answers never expire and never age: no clock read for them.
    if (e.forwarded) {
      const now = this.now();
      if (now >= e.expires) {
        this.unlink(key, e);
        return undefined;
      }
      const offsets = e.ttlOffsets;
      const aged = Math.floor((now - e.storedAt) / 1000);
      if (aged !== e.renderedAge) {
        // The stored copy is aged in place, once per second of age: every hit in that
        // second copies it as it is. By hand: offsets checked when stored, TTLs unsigned 32-bit.
        const b = e.bytes;
        for (let i = 0; i < offsets.length; i++) {
          const ttl = Math.max(0, e.ttls[i]! - aged);
          const o = offsets[i]!;
          b[o] = ttl >>> 24;
          b[o + 1] = (ttl >>> 16) & 0xff;
          b[o + 2] = (ttl >>> 8) & 0xff;
          b[o + 3] = ttl & 0xff;
        }
        e.renderedAge = aged;
      }
    }
    return e;
  }

  /**
   * Remember `response` to `query` (keyed `key`), if it may be cached. `forwarded`: the
   * answer came from an upstream (its TTLs age); when not said, a reply without AA counts
   * as forwarded.
   */
  put(key: CacheKey, query: Buffer, response: Buffer, generation: number, forwarded?: boolean): void {
    if (generation !== this.generation || response.length < 12 || query.length < 17 || !plainQuestion(query)) return;
    if ((response[3]! & 0xf) === SERVFAIL) return;
    const aa = forwarded === undefined ? (response[2]! & 0x04) !== 0 : !forwarded;
    // The response's question must be the query's (a hit copies the query's over it).
    if (response[4] !== 0 || response[5] !== 1) return;
    const qEnd = skipName(response, 12) + 4;
    if (qEnd < 16 || qEnd > response.length || qEnd > query.length || skipName(query, 12) + 4 !== qEnd) return;
    // The name in any case; type and class exactly (a hit matches the query against these).
    for (let i = 12; i < qEnd; i++) if (i < qEnd - 4 ? lower(response[i]!) !== lower(query[i]!) : response[i] !== query[i]) return;
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
    const head = this.map.get(key);
    for (let e = head; e !== undefined; e = e.next) if (sameQuery(e, query)) this.unlink(key, e);
    while (this.entries >= this.maxEntries && this.map.size > 0) {
      const [oldest, chain] = this.map.entries().next().value!;
      for (let e: Entry | undefined = chain; e !== undefined; e = e.next) this.entries--;
      this.map.delete(oldest);
    }
    const bytes = Buffer.from(response);
    bytes[0] = 0;
    bytes[1] = 0;
    for (let i = 12; i < qEnd - 4; i++) bytes[i] = lower(bytes[i]!);
    this.map.set(key, {
      bytes, qEnd, head: headOf(query), tail: query.length > qEnd ? Buffer.from(query.subarray(qEnd)) : undefined,
      // Authoritative TTLs do not age: they are the zone's.
      forwarded: !aa, storedAt: now, expires, ttlOffsets: aa ? NONE : ttlOffsets, ttls: aa ? NONE : ttls, renderedAge: 0,
      next: this.map.get(key),
    });
    this.entries++;
  }

  private unlink(key: CacheKey, e: Entry): void {
    const head = this.map.get(key);
    if (head === e) {
      if (e.next) this.map.set(key, e.next);
      else this.map.delete(key);
    } else {
      for (let p = head; p !== undefined; p = p.next) if (p.next === e) { p.next = e.next; break; }
    }
    this.entries--;
  }
}

const lower = (c: number): number => (c >= 0x41 && c <= 0x5a ? c | 0x20 : c);

/** The client's ID and its question, in its case: a few dozen bytes, copied by hand (a Buffer.copy call costs more than the bytes). */
function patch(out: Buffer, query: Buffer, qEnd: number): void {
  out[0] = query[0]!;
  out[1] = query[1]!;
  for (let i = 12; i < qEnd; i++) out[i] = query[i]!;
}

/** The query's flags and additional count as one number (a cacheable query's other counts are fixed). */
const headOf = (q: Buffer): number => (q[2]! << 16) | (q[3]! << 8) | q[11]!;

/** One question, no answer or authority records, at most one additional: what key() accepts. */
const plainQuestion = (q: Buffer): boolean => q[4] === 0 && q[5] === 1 && (q[6]! | q[7]! | q[8]! | q[9]! | q[10]!) === 0 && q[11]! <= 1;

/**
 * Whether `query` is the one `e` was stored for: the same flags, the same question (the
 * name in any case) and the same OPT record.
 */
function sameQuery(e: Entry, query: Buffer): boolean {
  const b = e.bytes;
  const qEnd = e.qEnd;
  const tail = e.tail;
  if (query.length !== qEnd + (tail === undefined ? 0 : tail.length)) return false;
  if (headOf(query) !== e.head || !plainQuestion(query)) return false;
  // The name in any case (the stored one is in the case of the last client lend() answered):
  // usually byte for byte, as most clients ask in lower case. Type and class exactly.
  const nameEnd = qEnd - 4;
  for (let i = 12; i < qEnd; i++) {
    const c = query[i]!;
    const s = b[i]!;
    if (s !== c && !(i < nameEnd && lower(s) === lower(c))) return false;
  }
  if (tail !== undefined) for (let i = 0; i < tail.length; i++) if (tail[i] !== query[qEnd + i]) return false;
  return true;
}
