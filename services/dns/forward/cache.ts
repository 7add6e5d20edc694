/**
 * The forwarder's answer cache: a bounded LRU map from (name, type, class, DO, CD) to an
 * upstream answer and the moment it stops being valid.
 *
 * How long an answer is kept (RFC 1035 §7.4 positive, RFC 2308 §3 and §5 negative):
 * positive answers for the smallest TTL in the answer section; NXDOMAIN and NODATA for
 * min(SOA TTL, SOA MINIMUM) from the authority section, and not at all without an SOA;
 * both clamped to [minTtl, maxTtl] (negative to negativeMaxTtl). RRs keep their original
 * TTLs here; the reader subtracts the time spent in the cache (RFC 1035 §6.1.2 / RFC 2181
 * §8: never hand out a TTL larger than what remains).
 */
import type dnsPacket from 'dns-packet';

export interface CachedAnswer {
  rcode: string;
  /** AD bit from upstream (only passed on to DNSSEC-aware clients). */
  authenticData: boolean;
  answers: dnsPacket.Answer[];
  authorities: dnsPacket.Answer[];
  additionals: dnsPacket.Answer[];
  /** When the answer was received (ms). */
  storedAt: number;
  /** When it stops being served from cache (ms). */
  expiresAt: number;
}

export interface TtlPolicy {
  minTtl: number;
  maxTtl: number;
  negativeMaxTtl: number;
}

export const DEFAULT_TTL_POLICY: TtlPolicy = { minTtl: 5, maxTtl: 86_400, negativeMaxTtl: 3_600 };

export function cacheKey(name: string, type: string, klass: string, dnssecOk: boolean, cd: boolean): string {
  return `${name.toLowerCase().replace(/\.$/, '')}|${type.toUpperCase()}|${klass.toUpperCase()}|${dnssecOk ? 'do' : ''}|${cd ? 'cd' : ''}`;
}

const ttlOf = (rr: dnsPacket.Answer): number => ('ttl' in rr && typeof rr.ttl === 'number' ? rr.ttl : 0);

/**
 * How many seconds an upstream answer may be cached; undefined when it must not be
 * (server failures, negative answers without an SOA, truncated answers).
 */
export function cacheSeconds(p: { rcode?: string; answers?: dnsPacket.Answer[]; authorities?: dnsPacket.Answer[]; flags?: number }, policy: TtlPolicy): number | undefined {
  if (p.flags !== undefined && p.flags & (1 << 9)) return undefined; // TC
  const answers = (p.answers ?? []).filter((r) => r.type !== 'OPT');
  const rcode = p.rcode ?? 'NOERROR';
  const clamp = (n: number, max: number) => Math.min(Math.max(n, policy.minTtl), max);
  if (rcode === 'NOERROR' && answers.length > 0) {
    return clamp(Math.min(...answers.map(ttlOf)), policy.maxTtl);
  }
  if (rcode === 'NXDOMAIN' || rcode === 'NOERROR') {
    const soa = (p.authorities ?? []).find((r) => r.type === 'SOA');
    if (!soa || soa.type !== 'SOA') return undefined;
    let neg = Math.min(ttlOf(soa), soa.data.minimum ?? 0);
    // A CNAME chain ending in NXDOMAIN/NODATA: the chain's TTLs bound it too.
    if (answers.length) neg = Math.min(neg, ...answers.map(ttlOf));
    return clamp(neg, policy.negativeMaxTtl);
  }
  return undefined;
}

export class AnswerCache {
  readonly #max: number;
  readonly #map = new Map<string, CachedAnswer>();

  constructor(maxEntries: number) {
    this.#max = Math.max(1, maxEntries);
  }

  get size(): number {
    return this.#map.size;
  }

  /** A live entry, refreshed as most recently used; expired entries are dropped. */
  get(key: string, now: number): CachedAnswer | undefined {
    const e = this.#map.get(key);
    if (!e) return undefined;
    this.#map.delete(key);
    if (e.expiresAt <= now) return undefined;
    this.#map.set(key, e);
    return e;
  }

  set(key: string, entry: CachedAnswer): void {
    this.#map.delete(key);
    this.#map.set(key, entry);
    while (this.#map.size > this.#max) this.#map.delete(this.#map.keys().next().value!);
  }

  clear(): void {
    this.#map.clear();
  }
}

/**
 * RFC 2308 §3/§5: the SOA in a negative answer tells downstream caches how long to keep
 * it, so its TTL is lowered to min(TTL, MINIMUM), the time we keep it ourselves.
 */
export function negativeSoa(authorities: dnsPacket.Answer[]): dnsPacket.Answer[] {
  return authorities.map((rr) => (rr.type === 'SOA' ? ({ ...rr, ttl: Math.min(ttlOf(rr), rr.data.minimum ?? 0) } as dnsPacket.Answer) : rr));
}

/** RRs with the time spent in the cache taken off their TTLs (never below 0). */
export function agedRecords(rrs: dnsPacket.Answer[], storedAt: number, now: number, maxTtl: number): dnsPacket.Answer[] {
  const elapsed = Math.max(0, Math.floor((now - storedAt) / 1000));
  return rrs.map((rr) => (rr.type === 'OPT' ? rr : ({ ...rr, ttl: Math.min(maxTtl, Math.max(0, ttlOf(rr) - elapsed)) } as dnsPacket.Answer)));
}
