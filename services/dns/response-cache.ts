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
import { randomBytes } from 'node:crypto';
import { RCODE, TYPE } from './wire/constants.ts';
import { skipName } from './wire/name.ts';

/**
 * Entries live in slabs, one after another, each as one block: a header, the response, the
 * query's tail (its OPT record) and, for a forwarded answer, where its TTLs are and what
 * they were. A hit touches the hash table's slot and that block, nothing else: with
 * thousands of entries, a hit's cost was mostly cache misses along Map → entry object →
 * Buffer object → bytes (the authoritative bench's queries asked of kith: 1.13× echo's CPU
 * per query with its ~9,300 distinct answers, 1.02× with 30 of them).
 *
 * Slab memory is never written again once an entry is dead (replaced, evicted, or moved by
 * keep()), and a dropped slab is never reused: a reply still queued in the socket keeps
 * its bytes as they were.
 */
interface Slab {
  /** The slab's bytes; i32 and f64 view the same memory (entries start at multiples of 8). */
  u8: Buffer;
  i32: Int32Array;
  f64: Float64Array;
  /** Bytes written (the next entry goes here). */
  used: number;
  /** Entries in it still in the table. */
  live: number;
  /** Where eviction goes on: entries before it are gone. */
  cursor: number;
  /** Its index in `slabs` (a table ref names the slab by it). */
  index: number;
}

// An entry's header, in 32-bit words from its start:
const W_KEY = 0;
/** The query's flags (bytes 2-3) and additional count (byte 11; 0 or 1), as one number. */
const W_HEAD = 1;
const W_LEN = 2;
/** End of the question section (same in query and response) | the query's tail length << 16. */
const W_QEND_TAIL = 3;
/** How many TTLs it holds | flags << 16. */
const W_TTLS_FLAGS = 4;
/** The age in whole seconds whose TTLs the bytes hold: rewritten once a second, not per hit. */
const W_AGE = 5;
// ... and in 64-bit words (ms):
const D_STORED = 3;
const D_EXPIRES = 4;
/** The response starts here, the query's tail after it, the TTL words after that (8-aligned). */
const HEADER = 40;
/** A forwarded answer: it expires and its TTLs age. Our own answers do neither. */
const FORWARDED = 1;
/** Out of the table: never read or written again. */
const DEAD = 2;

const SLAB_BYTES = 64 * 1024;
/** A table ref is the slab's index << 13 | the entry's offset / 8 (offsets < 64 KiB: a bigger entry has a slab of its own, at 0). */
const OFF_BITS = 13;
const OFF_MASK = (1 << OFF_BITS) - 1;
const MAX_SLABS = 1 << 17;
const MIN_TABLE = 256;

const OPT = TYPE.OPT;
const AXFR = TYPE.AXFR;
const IXFR = TYPE.IXFR;
const SERVFAIL = RCODE.SERVFAIL;
const NON_AUTH_MAX_MS = 60_000;
// Queries longer than this (a big OPT) are simply not cached.
const MAX_KEYED = 512;
/** Bytes of slabs held at most by default; the oldest go first past it. */
const DEFAULT_MAX_BYTES = 8 << 20;

/**
 * A cache key: a 28-bit hash of the query from the flags on (name lowercased) in the high
 * bits, the transport and the client's rights in the low two. A number, not a string: a
 * string made per packet has to be hashed and interned first.
 */
export type CacheKey = number;

const align8 = (n: number): number => (n + 7) & ~7;

export class ResponseCache {
  /**
   * Open addressing, linear probing: [key, ref + 1] pairs, 0 for an empty slot; at most half
   * full. Keys may repeat (hash collisions): each candidate is compared with the query.
   */
  private tab = new Int32Array(2 * MIN_TABLE);
  private mask = MIN_TABLE - 1;
  private shift = 32 - Math.log2(MIN_TABLE);
  private readonly slabs: (Slab | undefined)[] = [];
  private readonly freeIndexes: number[] = [];
  /** Oldest first; entries are appended to the last. */
  private order: Slab[] = [];
  private bytes = 0;
  /** Bytes of the live entries: the rest of `bytes` is dead entries and the ends of slabs. */
  private liveBytes = 0;
  private entries = 0;
  private readonly maxEntries: number;
  private readonly maxBytes: number;
  private readonly now: () => number;
  /** Bumped by clear(): a response computed before it must not be stored after it. */
  generation = 0;
  /** The entry whose bytes lend() handed out last (keep() may move it). */
  private lentSlab: Slab | undefined;
  private lentAt = 0;
  /** find()'s result besides the offset it returns: the slab, and the table slot. */
  private foundSlab: Slab | undefined;
  private foundSlot = 0;
  /** And whether the entry's question is byte for byte the query's (its name in the same case). */
  private foundSameCase = false;

  /**
   * Mixed into every key, and made at random when not given: where a query's entry sits in
   * the table cannot be worked out from outside, so a client cannot pick thousands of names
   * that all probe the same run of slots and make every lookup there walk it (hash flooding).
   */
  private readonly seed: number;

  constructor(opts: { maxEntries: number; now: () => number; maxBytes?: number; seed?: number }) {
    this.maxEntries = opts.maxEntries;
    this.maxBytes = opts.maxBytes ?? DEFAULT_MAX_BYTES;
    this.now = opts.now;
    this.seed = opts.seed ?? randomBytes(4).readInt32LE(0);
  }

  get size(): number {
    return this.entries;
  }

  /** Slots in the hash table (a power of two, at least twice the entries). */
  get tableSlots(): number {
    return this.mask + 1;
  }

  /** Bytes of slab memory held (live entries, and dead ones until their slab goes). */
  get heldBytes(): number {
    return this.bytes;
  }

  clear(): void {
    this.tab = new Int32Array(2 * MIN_TABLE);
    this.mask = MIN_TABLE - 1;
    this.shift = 32 - Math.log2(MIN_TABLE);
    this.slabs.length = 0;
    this.freeIndexes.length = 0;
    this.order = [];
    this.bytes = 0;
    this.liveBytes = 0;
    this.entries = 0;
    this.lentSlab = undefined;
    this.foundSlab = undefined;
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
    // Where the question name ends (plain labels only: a query has nothing to point back to).
    let off = 12;
    for (;;) {
      if (off >= q.length) return undefined;
      const len = q[off]!;
      if (len & 0xc0 || off + 1 + len > q.length) return undefined;
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
    // FNV-1a's step over the flags and additional count, then over the message 4 bytes at a
    // time (a quarter of the serial multiplies of a byte-wise hash): the name lowercased, a
    // word at a time (label lengths are all below 'A'), its type, class and OPT as they are.
    let h = Math.imul(0x811c9dc5 ^ this.seed ^ headOf(q), 0x01000193);
    let i = 12;
    for (; i + 4 <= off; i += 4) h = Math.imul(h ^ lowerWord(wordAt(q, i)), 0x01000193);
    for (; i < off; i++) h = Math.imul(h ^ lower(q[i]!), 0x01000193);
    for (; i + 4 <= q.length; i += 4) h = Math.imul(h ^ wordAt(q, i), 0x01000193);
    for (; i < q.length; i++) h = Math.imul(h ^ q[i]!, 0x01000193);
    // The high bits have seen every byte; fold them into the low ones the key keeps.
    h ^= h >>> 15;
    const rights = (transport === 'udp' ? 0 : 2) | (recursionAllowed ? 1 : 0);
    return ((h >>> 2) & 0x0ffffffc) | rights;
  }

  /** The cached answer to `query` (whose key is `key`), with its ID and question case: a copy. */
  get(key: CacheKey, query: Buffer): Buffer | undefined {
    const o = this.find(key, query);
    if (o < 0) return undefined;
    const s = this.foundSlab!;
    const r = o + HEADER;
    const len = s.i32[(o >> 2) + W_LEN]!;
    // Every byte is overwritten at once: no need to zero the pool slice first.
    const out = Buffer.allocUnsafe(len);
    out.set(s.u8.subarray(r, r + len));
    patch(out, 0, query, this.foundSameCase ? 12 : s.i32[(o >> 2) + W_QEND_TAIL]! & 0xffff);
    return out;
  }

  /**
   * As get(), but no copy: a view of the entry's own bytes, with this client's ID and
   * question case written into them — for a reply sent at once (the UDP fast path). The
   * bytes are only good until the next call into the cache: when the send was queued
   * rather than handed to the kernel, say so with `keep()` before the next call.
   */
  lend(key: CacheKey, query: Buffer): Buffer | undefined {
    const o = this.find(key, query);
    if (o < 0) return undefined;
    const s = this.foundSlab!;
    const r = o + HEADER;
    const w = o >> 2;
    // The question is already in this client's case when it asked as the last one did.
    if (this.foundSameCase) {
      s.u8[r] = query[0]!;
      s.u8[r + 1] = query[1]!;
    } else patch(s.u8, r, query, s.i32[w + W_QEND_TAIL]! & 0xffff);
    this.lentSlab = s;
    this.lentAt = o;
    return s.u8.subarray(r, r + s.i32[w + W_LEN]!);
  }

  /**
   * `reply` (from lend()) is still in use after this call returns — a send queued in the
   * socket — so its entry moves to a copy: the next client's ID must not be written into
   * bytes that are waiting to be sent. The old block is never written again.
   */
  keep(reply: Buffer): void {
    const s = this.lentSlab;
    const o = this.lentAt;
    this.lentSlab = undefined;
    if (s === undefined || reply.buffer !== s.u8.buffer || reply.byteOffset !== s.u8.byteOffset + o + HEADER) return;
    if (isDead(s, o)) return;
    this.moveToNewest(s, o);
    this.compact();
  }

  /** Copy a live entry to the end of the newest slab and take the old block out of use. */
  private moveToNewest(s: Slab, o: number): void {
    const size = entrySize(s, o);
    const copy = Buffer.from(s.u8.subarray(o, o + size));
    const key = s.i32[(o >> 2) + W_KEY]!;
    this.remove(s, o);
    const at = this.reserve(size);
    if (at < 0) return;
    const t = this.order[this.order.length - 1]!;
    t.u8.set(copy, at);
    this.commit(key, t, at);
  }

  /**
   * Replaced and expired entries leave dead blocks behind in slabs that still hold live
   * ones: past twice what is live (and a little), the oldest slab's live entries move to the
   * newest and it goes, one slab per call. A cache of forwarded answers, each replaced as
   * its TTL runs out, so holds about what it holds live, not the whole byte budget.
   */
  private compact(): void {
    if (this.bytes <= 2 * this.liveBytes + 2 * SLAB_BYTES || this.order.length < 2) return;
    const s = this.order[0]!;
    for (let o = s.cursor; o < s.used && this.slabs[s.index] === s; o += entrySize(s, o)) {
      if (!isDead(s, o)) this.moveToNewest(s, o);
    }
    this.drop(s);
  }

  /** The entry for `query`: its offset (foundSlab, foundSlot say the rest), its TTLs aged to now; -1 when none. Expired entries go. */
  private find(key: CacheKey, query: Buffer): number {
    const tab = this.tab;
    const mask = this.mask;
    for (let i = this.home(key); ; i = (i + 1) & mask) {
      const ref = tab[2 * i + 1]! - 1;
      if (ref < 0) return -1;
      if (tab[2 * i] !== key) continue;
      const s = this.slabs[ref >>> OFF_BITS]!;
      const o = (ref & OFF_MASK) << 3;
      const same = sameQuery(s, o, query);
      if (same === DIFFERENT) continue;
      const w = o >> 2;
      const i32 = s.i32;
      // Our own answers never expire and never age: no clock read for them.
      if ((i32[w + W_TTLS_FLAGS]! >>> 16) & FORWARDED) {
        const now = this.now();
        const d = o >> 3;
        if (now >= s.f64[d + D_EXPIRES]!) {
          this.deleteSlot(i);
          this.kill(s, o);
          return -1;
        }
        const aged = Math.floor((now - s.f64[d + D_STORED]!) / 1000);
        if (aged !== i32[w + W_AGE]) {
          // The stored copy is aged in place, once per second of age: every hit in that
          // second sends it as it is. Offsets were checked when stored; TTLs are unsigned 32-bit.
          const n = i32[w + W_TTLS_FLAGS]! & 0xffff;
          const t = ttlWords(s, o);
          const b = s.u8;
          const r = o + HEADER;
          for (let k = 0; k < n; k++) {
            const ttl = Math.max(0, (i32[t + n + k]! >>> 0) - aged);
            const p = r + i32[t + k]!;
            b[p] = ttl >>> 24;
            b[p + 1] = (ttl >>> 16) & 0xff;
            b[p + 2] = (ttl >>> 8) & 0xff;
            b[p + 3] = ttl & 0xff;
          }
          i32[w + W_AGE] = aged;
        }
      }
      this.foundSlab = s;
      this.foundSlot = i;
      this.foundSameCase = same === SAME_BYTES;
      return o;
    }
  }

  /**
   * Remember `response` to `query` (keyed `key`), if it may be cached. `forwarded`: the
   * answer came from an upstream (its TTLs age); when not said, a reply without AA counts
   * as forwarded.
   */
  put(key: CacheKey, query: Buffer, response: Buffer, generation: number, forwarded?: boolean): void {
    key |= 0;
    if (this.maxEntries === 0 || generation !== this.generation || response.length < 12 || query.length < 17 || !plainQuestion(query)) return;
    if ((response[3]! & 0xf) === SERVFAIL) return;
    const aa = forwarded === undefined ? (response[2]! & 0x04) !== 0 : !forwarded;
    // The response's question must be the query's (a hit copies the query's over it).
    if (response[4] !== 0 || response[5] !== 1) return;
    const qEnd = skipName(response, 12) + 4;
    if (qEnd < 16 || qEnd > response.length || qEnd > query.length || skipName(query, 12) + 4 !== qEnd) return;
    // The name in any case; type and class exactly (a hit matches the query against these).
    for (let i = 12; i < qEnd; i++) if (i < qEnd - 4 ? lower(response[i]!) !== lower(query[i]!) : response[i] !== query[i]) return;
    const tailLen = query.length - qEnd;
    if (tailLen > 0xffff) return;
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
      let min = ttls[0]!;
      for (const t of ttls) if (t < min) min = t;
      if (min <= 0) return;
      expires = now + min * 1000;
    } else expires = now + NON_AUTH_MAX_MS;
    // Authoritative TTLs do not age: they are the zone's, and need no record of them.
    const n = aa ? 0 : ttls.length;
    const size = align8(HEADER + response.length + tailLen) + 8 * n;
    if (size > this.maxBytes) return;
    // The same query's old entry goes (a hit must find the new one).
    for (let o = this.find(key, query); o >= 0; o = this.find(key, query)) {
      this.deleteSlot(this.foundSlot);
      this.kill(this.foundSlab!, o);
    }
    while (this.entries >= this.maxEntries && this.evictOldest());
    const at = this.reserve(size);
    if (at < 0) return;
    const s = this.order[this.order.length - 1]!;
    const w = at >> 2;
    const i32 = s.i32;
    i32[w + W_KEY] = key;
    i32[w + W_HEAD] = headOf(query);
    i32[w + W_LEN] = response.length;
    i32[w + W_QEND_TAIL] = qEnd | (tailLen << 16);
    i32[w + W_TTLS_FLAGS] = n | ((aa ? 0 : FORWARDED) << 16);
    i32[w + W_AGE] = 0;
    s.f64[(at >> 3) + D_STORED] = now;
    s.f64[(at >> 3) + D_EXPIRES] = expires;
    const r = at + HEADER;
    const b = s.u8;
    b.set(response, r);
    b[r] = 0;
    b[r + 1] = 0;
    for (let i = r + 12; i < r + qEnd - 4; i++) b[i] = lower(b[i]!);
    if (tailLen > 0) b.set(query.subarray(qEnd), r + response.length);
    const t = ttlWords(s, at);
    for (let k = 0; k < n; k++) {
      i32[t + k] = ttlOffsets[k]!;
      i32[t + n + k] = ttls[k]! | 0;
    }
    this.commit(key, s, at);
    this.compact();
  }

  /** Room for `size` bytes at the end of the newest slab (a new one when it is full): the offset, or -1. */
  private reserve(size: number): number {
    let s = this.order[this.order.length - 1];
    if (s !== undefined && s.used + size <= s.u8.length) {
      const at = s.used;
      s.used += size;
      return at;
    }
    const slabSize = Math.max(SLAB_BYTES, size);
    while (this.order.length > 0 && this.bytes + slabSize > this.maxBytes) this.drop(this.order[0]!);
    const index = this.freeIndexes.pop() ?? this.slabs.length;
    if (index >= MAX_SLABS) return -1;
    const u8 = Buffer.allocUnsafeSlow(slabSize);
    s = { u8, i32: new Int32Array(u8.buffer, u8.byteOffset, slabSize >> 2), f64: new Float64Array(u8.buffer, u8.byteOffset, slabSize >> 3), used: size, live: 0, cursor: 0, index };
    this.slabs[index] = s;
    this.order.push(s);
    this.bytes += slabSize;
    return 0;
  }

  /** Put the entry at `o` of `s` into the table. */
  private commit(key: number, s: Slab, o: number): void {
    // At most half full; once under an eighth (expired or evicted answers), half the size,
    // so a cache that once held 50,000 answers does not keep their table. Only here, where
    // no table slot is held by a caller.
    const cap = this.mask + 1;
    if (2 * (this.entries + 1) > cap) this.resize(2 * cap);
    else if (cap > MIN_TABLE && 8 * (this.entries + 1) < cap) this.resize(cap >> 1);
    this.insert(key, ref1Of(s, o));
    s.live++;
    this.entries++;
    this.liveBytes += entrySize(s, o);
  }

  /** The table slot a key's probe starts at. */
  private home(key: number): number {
    return Math.imul(key, 0x9e3779b1) >>> this.shift;
  }

  private insert(key: number, ref1: number): void {
    const tab = this.tab;
    let i = this.home(key);
    while (tab[2 * i + 1] !== 0) i = (i + 1) & this.mask;
    tab[2 * i] = key;
    tab[2 * i + 1] = ref1;
  }

  private resize(cap: number): void {
    const old = this.tab;
    this.tab = new Int32Array(2 * cap);
    this.mask = cap - 1;
    this.shift = 32 - Math.log2(cap);
    for (let i = 0; i < old.length; i += 2) if (old[i + 1] !== 0) this.insert(old[i]!, old[i + 1]!);
  }

  /** Empty table slot `i`, moving the entries after it back (linear probing's deletion: no tombstones). */
  private deleteSlot(i: number): void {
    const tab = this.tab;
    const mask = this.mask;
    for (let j = i; ;) {
      j = (j + 1) & mask;
      const ref1 = tab[2 * j + 1]!;
      if (ref1 === 0) break;
      const k = this.home(tab[2 * j]!);
      // The entry at j may fill the hole at i unless its home lies in (i, j], cyclically.
      if (i <= j ? k <= i || k > j : k <= i && k > j) {
        tab[2 * i] = tab[2 * j]!;
        tab[2 * i + 1] = ref1;
        i = j;
      }
    }
    tab[2 * i] = 0;
    tab[2 * i + 1] = 0;
  }

  /** Take the entry at `o` of `s` out of the table and out of use. */
  private remove(s: Slab, o: number): void {
    this.unlink(s, o);
    this.kill(s, o);
  }

  /** Empty the table slot that points at the entry at `o` of `s`. */
  private unlink(s: Slab, o: number): void {
    const key = s.i32[(o >> 2) + W_KEY]!;
    const ref1 = ref1Of(s, o);
    const tab = this.tab;
    for (let i = this.home(key); tab[2 * i + 1] !== 0; i = (i + 1) & this.mask) {
      if (tab[2 * i + 1] === ref1) {
        this.deleteSlot(i);
        return;
      }
    }
  }

  /** Mark the entry dead (already out of the table); a slab left with none live goes, unless it is the newest. */
  private kill(s: Slab, o: number): void {
    this.markDead(s, o);
    if (s.live === 0 && s !== this.order[this.order.length - 1]) this.drop(s);
  }

  private markDead(s: Slab, o: number): void {
    const w = o >> 2;
    s.i32[w + W_TTLS_FLAGS] = s.i32[w + W_TTLS_FLAGS]! | (DEAD << 16);
    s.live--;
    this.entries--;
    this.liveBytes -= entrySize(s, o);
  }

  /** The oldest live entry goes: false when there is none. */
  private evictOldest(): boolean {
    while (this.order.length > 0) {
      const s = this.order[0]!;
      while (s.cursor < s.used) {
        const o = s.cursor;
        s.cursor += entrySize(s, o);
        if (!isDead(s, o)) {
          this.remove(s, o);
          return true;
        }
      }
      this.drop(s);
    }
    return false;
  }

  /** Drop a slab and every entry still in it. Its memory is never reused (a queued reply may still be reading it). */
  private drop(s: Slab): void {
    if (this.slabs[s.index] !== s) return;
    for (let o = s.cursor; o < s.used && s.live > 0; o += entrySize(s, o)) {
      if (isDead(s, o)) continue;
      this.unlink(s, o);
      this.markDead(s, o);
    }
    this.slabs[s.index] = undefined;
    this.freeIndexes.push(s.index);
    this.order.splice(this.order.indexOf(s), 1);
    this.bytes -= s.u8.length;
    if (this.lentSlab === s) this.lentSlab = undefined;
  }
}

/** An entry's bytes in its slab, header to its last TTL word. */
function entrySize(s: Slab, o: number): number {
  return (ttlWords(s, o) << 2) - o + 8 * (s.i32[(o >> 2) + W_TTLS_FLAGS]! & 0xffff);
}

/** The table's reference to the entry at `o` of `s`, plus one (0 marks an empty slot). */
const ref1Of = (s: Slab, o: number): number => ((s.index << OFF_BITS) | (o >> 3)) + 1;

const isDead = (s: Slab, o: number): boolean => ((s.i32[(o >> 2) + W_TTLS_FLAGS]! >>> 16) & DEAD) !== 0;

/** The 32-bit word where an entry's TTL offsets begin (its original TTLs follow them). */
function ttlWords(s: Slab, o: number): number {
  const w = o >> 2;
  return (o + align8(HEADER + s.i32[w + W_LEN]! + (s.i32[w + W_QEND_TAIL]! >>> 16))) >> 2;
}

const lower = (c: number): number => (c >= 0x41 && c <= 0x5a ? c | 0x20 : c);

/** The client's ID and its question, in its case, into the response at `r`: a few dozen bytes, copied by hand (a Buffer.copy call costs more than the bytes). */
function patch(out: Buffer, r: number, query: Buffer, qEnd: number): void {
  out[r] = query[0]!;
  out[r + 1] = query[1]!;
  for (let i = 12; i < qEnd; i++) out[r + i] = query[i]!;
}

/** The query's flags and additional count as one number (a cacheable query's other counts are fixed). */
const headOf = (q: Buffer): number => (q[2]! << 16) | (q[3]! << 8) | q[11]!;

/** One question, no answer or authority records, at most one additional: what key() accepts. */
const plainQuestion = (q: Buffer): boolean => q[4] === 0 && q[5] === 1 && (q[6]! | q[7]! | q[8]! | q[9]! | q[10]!) === 0 && q[11]! <= 1;

/** sameQuery()'s answers. */
const DIFFERENT = 0;
const SAME_BYTES = 1;
/** The same question, the name in another case. */
const SAME_IN_OTHER_CASE = 2;

/** The words of a slab (Int32Array) are in the machine's byte order; wordAt() reads little-endian. */
const LITTLE_ENDIAN = new Uint8Array(new Uint32Array([1]).buffer)[0] === 1;

/** Bytes i..i+3 as one little-endian 32-bit number. */
const wordAt = (b: Buffer, i: number): number => b[i]! | (b[i + 1]! << 8) | (b[i + 2]! << 16) | (b[i + 3]! << 24);

/**
 * Four bytes lowercased at once: a byte gets 0x20 when it is 'A'-'Z'. Each byte's low seven
 * bits plus 0x3f reach bit 7 from 'A' on, plus 0x25 from '[' on; no sum carries into the next byte.
 */
function lowerWord(x: number): number {
  const low7 = x & 0x7f7f7f7f;
  return x | (((low7 + 0x3f3f3f3f) & ~(low7 + 0x25252525) & ~x & 0x80808080) >>> 2);
}

/**
 * Whether `query` is the one the entry at `o` of `s` was stored for: the same flags, the
 * same question (the name in any case) and the same OPT record. SAME_BYTES when the
 * question is also in the same case, so a hit need not copy it.
 */
function sameQuery(s: Slab, o: number, query: Buffer): number {
  const i32 = s.i32;
  const w = o >> 2;
  const qt = i32[w + W_QEND_TAIL]!;
  const qEnd = qt & 0xffff;
  const tailLen = qt >>> 16;
  if (query.length !== qEnd + tailLen) return DIFFERENT;
  if (headOf(query) !== i32[w + W_HEAD] || !plainQuestion(query)) return DIFFERENT;
  // The name in any case (the stored one is in the case of the last client lend() answered):
  // usually byte for byte, as most clients ask in lower case, so compared a word at a time
  // first (the question starts 4-aligned in the slab). Type and class exactly.
  const b = s.u8;
  const r = o + HEADER;
  const nameEnd = qEnd - 4;
  let same = SAME_BYTES;
  let i = 12;
  if (LITTLE_ENDIAN) {
    for (let k = (r + 12) >> 2; i + 4 <= qEnd; i += 4, k++) if (i32[k] !== wordAt(query, i)) break;
  }
  for (; i < qEnd; i++) {
    const c = query[i]!;
    const x = b[r + i]!;
    if (x === c) continue;
    if (i >= nameEnd || lower(x) !== lower(c)) return DIFFERENT;
    same = SAME_IN_OTHER_CASE;
  }
  if (tailLen > 0) {
    const t = r + i32[w + W_LEN]!;
    for (let i = 0; i < tailLen; i++) if (b[t + i] !== query[qEnd + i]) return DIFFERENT;
  }
  return same;
}
