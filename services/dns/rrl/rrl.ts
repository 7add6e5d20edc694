/**
 * Response rate limiting, as BIND and NSD do it (the RRL design of Vixie and Schryver,
 * "DNS Response Rate Limiting", ISC-TN-2012-1; BIND's `rate-limit`, NSD's `rrl-*`).
 *
 * A reflection attack sends queries with a victim's address as their source; each answer
 * is many times the query. RRL counts the answers each client *network* (an IPv4 /24, an
 * IPv6 /56) gets for each *response* (the same name and type, the same NXDOMAIN zone, the
 * same error) in a token bucket: `responsesPerSecond` tokens a second, a debt of at most
 * `window` seconds. Past the rate, every `slip`-th answer goes out as a truncated (TC=1)
 * empty reply, so a real client behind that address retries over TCP (which cannot be
 * spoofed), and the rest are dropped.
 *
 * Pure: the clock is an argument; the table is bounded (oldest bucket out first).
 */
import { Buffer } from 'node:buffer';
import { labelsToKey, readName as readWireName } from '../wire/name.ts';

export interface RrlSettings {
  responsesPerSecond: number;
  /** Seconds of debt a bucket may run up: how long a flood stays limited after it stops. */
  window: number;
  /** Every slip-th limited answer is sent truncated (0: none, 1: all). */
  slip: number;
  ipv4PrefixLength: number;
  ipv6PrefixLength: number;
  /** Buckets kept at most. */
  maxEntries: number;
}

export const DEFAULT_RRL: RrlSettings = { responsesPerSecond: 5, window: 15, slip: 2, ipv4PrefixLength: 24, ipv6PrefixLength: 56, maxEntries: 20_000 };

/** What kind of response a bucket counts (BIND's responses, nodata, nxdomains, referrals, errors). */
export type RrlClass = 'answer' | 'nodata' | 'nxdomain' | 'referral' | 'error';
export type RrlAction = 'send' | 'slip' | 'drop';

interface Bucket {
  balance: number;
  at: number;
  limited: number;
}

export class ResponseRateLimiter {
  private readonly buckets = new Map<string, Bucket>();

  get size(): number {
    return this.buckets.size;
  }

  /** One response of class `cls` for `name` to `address` at `now` (ms): send, slip or drop it. */
  check(now: number, s: RrlSettings, address: string, cls: RrlClass, name: string): RrlAction {
    const key = `${clientPrefix(address, s.ipv4PrefixLength, s.ipv6PrefixLength)} ${cls} ${name}`;
    let b = this.buckets.get(key);
    if (!b) {
      if (this.buckets.size >= s.maxEntries) this.buckets.delete(this.buckets.keys().next().value!);
      b = { balance: s.responsesPerSecond, at: now, limited: 0 };
      this.buckets.set(key, b);
    } else {
      const elapsed = Math.max(0, now - b.at) / 1000;
      b.balance = Math.min(s.responsesPerSecond, b.balance + elapsed * s.responsesPerSecond);
      b.at = now;
    }
    b.balance = Math.max(-s.window * s.responsesPerSecond, b.balance - 1);
    if (b.balance >= 0) {
      b.limited = 0;
      return 'send';
    }
    b.limited++;
    return s.slip > 0 && b.limited % s.slip === 0 ? 'slip' : 'drop';
  }
}

/**
 * The cheap first look, per client network, before any per-response accounting: most
 * networks get a few answers a second, and classifying each answer (reading its names) and
 * keeping a bucket per response costs more than the answer itself. A network that has had
 * at most `responsesPerSecond` answers in this second, and none over that within the last
 * `window` seconds, is quiet: its answers go out unclassified, and no bucket of it can be in
 * debt. Once it goes over, every answer to it is checked (ResponseRateLimiter) until it has
 * been quiet for `window` seconds, long enough for any debt to be paid back. So a flood's
 * first second may pass up to twice the rate before the buckets limit it; after that the
 * limiting is exactly the per-response one. Bounded as the buckets are.
 */
export class NetworkCounter {
  private readonly nets = new Map<number | string, { second: number; count: number; hotUntil: number }>();
  private settings: RrlSettings | undefined;

  get size(): number {
    return this.nets.size;
  }

  /** Whether an answer to `address` at `now` (ms) must go through the per-response check. */
  busy(now: number, s: RrlSettings, address: string): boolean {
    if (s !== this.settings) {
      this.settings = s;
      this.nets.clear();
    }
    const v4 = ipv4Number(address);
    const key = v4 >= 0 ? (s.ipv4PrefixLength === 0 ? 0 : Math.floor(v4 / 2 ** (32 - s.ipv4PrefixLength))) : clientPrefix(address, s.ipv4PrefixLength, s.ipv6PrefixLength);
    const second = Math.floor(now / 1000);
    let n = this.nets.get(key);
    if (n === undefined) {
      if (this.nets.size >= s.maxEntries) this.nets.delete(this.nets.keys().next().value!);
      n = { second, count: 0, hotUntil: -1 };
      this.nets.set(key, n);
    } else if (n.second !== second) {
      n.second = second;
      n.count = 0;
    }
    if (++n.count > s.responsesPerSecond) n.hotUntil = second + s.window;
    return second <= n.hotUntil;
  }
}

/** A dotted-quad IPv4 address as a number, or -1 for anything else (IPv6, mapped, junk). */
function ipv4Number(a: string): number {
  let n = 0;
  let part = 0;
  let digits = 0;
  let dots = 0;
  for (let i = 0; i < a.length; i++) {
    const c = a.charCodeAt(i);
    if (c === 46) {
      if (digits === 0 || part > 255 || ++dots > 3) return -1;
      n = n * 256 + part;
      part = 0;
      digits = 0;
    } else if (c >= 48 && c <= 57 && digits < 3) {
      part = part * 10 + (c - 48);
      digits++;
    } else return -1;
  }
  if (dots !== 3 || digits === 0 || part > 255) return -1;
  return n * 256 + part;
}

/** The client's network: the address masked to the prefix length, as text. */
export function clientPrefix(address: string, v4len: number, v6len: number): string {
  const a = address.startsWith('::ffff:') && address.includes('.') ? address.slice(7) : address;
  if (!a.includes(':')) {
    const p = a.split('.');
    if (p.length !== 4) return a;
    const n = ((+p[0]! << 24) | (+p[1]! << 16) | (+p[2]! << 8) | +p[3]!) >>> 0;
    const masked = v4len === 0 ? 0 : (n & (0xffffffff << (32 - v4len))) >>> 0;
    return `${masked >>> 24}.${(masked >> 16) & 255}.${(masked >> 8) & 255}.${masked & 255}/${v4len}`;
  }
  const [head, tail = ''] = a.split('::');
  const h = head ? head.split(':') : [];
  const t = tail ? tail.split(':') : [];
  const groups = (a.includes('::') ? [...h, ...Array(Math.max(0, 8 - h.length - t.length)).fill('0'), ...t] : h).map((g) => parseInt(g, 16) || 0);
  let bits = v6len;
  const out: string[] = [];
  for (let i = 0; i < 8; i++) {
    const keep = Math.max(0, Math.min(16, bits));
    bits -= 16;
    out.push((keep === 0 ? 0 : groups[i]! & (0xffff << (16 - keep)) & 0xffff).toString(16));
  }
  return `${out.join(':')}/${v6len}`;
}

/**
 * What a response is, for RRL, and the name its bucket is counted under: answers and
 * NODATA by question name and type; NXDOMAIN by the zone (the SOA owner in the authority
 * section), so random names under one zone share a bucket; referrals by the delegation
 * (the NS owner); errors (REFUSED, SERVFAIL, FORMERR...) by the rcode alone.
 * Undefined for bytes that are not a response with one question.
 */
export function classifyResponse(r: Buffer): { cls: RrlClass; name: string } | undefined {
  if (r.length < 12 || !(r[2]! & 0x80) || r.readUInt16BE(4) !== 1) return undefined;
  const rcode = r[3]! & 0x0f;
  const q = nameAt(r, 12);
  if (!q || q.end + 4 > r.length) return undefined;
  const qtype = r.readUInt16BE(q.end);
  const an = r.readUInt16BE(6);
  const ns = r.readUInt16BE(8);
  if (rcode !== 0 && rcode !== 3) return { cls: 'error', name: `rcode${rcode}` };
  if (an > 0 && rcode === 0) return { cls: 'answer', name: `${q.name}/${qtype}` };
  if (rcode === 3 || (ns > 0 && !(r[2]! & 0x04))) {
    // The first authority record's owner: the zone (SOA) or the delegation (NS).
    let off = q.end + 4;
    for (let i = 0; i < an; i++) {
      const n = nameAt(r, off);
      if (!n || n.end + 10 > r.length) return { cls: rcode === 3 ? 'nxdomain' : 'referral', name: q.name };
      off = n.end + 10 + r.readUInt16BE(n.end + 8);
    }
    const owner = ns > 0 ? nameAt(r, off) : undefined;
    return { cls: rcode === 3 ? 'nxdomain' : 'referral', name: owner?.name ?? q.name };
  }
  return { cls: 'nodata', name: `${q.name}/${qtype}` };
}

/**
 * A name at `off` as its canonical key, and the offset just past it: the one wire reader
 * (wire/name.ts, with its hostile-input rule); undefined for a name it refuses.
 */
function nameAt(b: Buffer, off: number): { name: string; end: number } | undefined {
  try {
    const n = readWireName(b, off);
    return { name: n.labels.length === 0 ? '.' : `${labelsToKey(n.labels)}.`, end: n.end };
  } catch {
    return undefined;
  }
}

/**
 * The truncated reply sent in place of a limited answer ("slip"): the header and question
 * of `response` with TC set and every other section empty, so the client asks again over
 * TCP. Undefined when the question cannot be found.
 */
export function slipReply(response: Buffer): Buffer | undefined {
  const q = nameAt(response, 12);
  if (!q || q.end + 4 > response.length) return undefined;
  const out = Buffer.from(response.subarray(0, q.end + 4));
  out[2] = out[2]! | 0x02; // TC
  out.writeUInt16BE(0, 6);
  out.writeUInt16BE(0, 8);
  out.writeUInt16BE(0, 10);
  return out;
}
