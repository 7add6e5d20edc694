/**
 * The caching forwarder core: answers questions outside the owner's zones by asking
 * upstream resolvers, through an injected `send` (real UDP/TCP in udp.ts, a fake in tests).
 *
 * - Cache per (name, type, class, DO, CD) with TTLs counted down on output, negative
 *   caching (RFC 2308), an LRU bound (cache.ts).
 * - Identical questions in flight share one upstream query.
 * - Each upstream query has a fresh random ID from node:crypto and an EDNS0 OPT (RFC 6891),
 *   and the answer must match the ID and the question we sent (RFC 5452 §9.1) or it is
 *   thrown away and the next upstream is tried.
 * - Upstreams are rotated; one that failed recently goes to the back of the line.
 *   SERVFAIL/REFUSED/NOTIMP/FORMERR, timeouts and garbage move on to the next one.
 * - A hard total deadline: the caller always gets an answer, SERVFAIL at worst.
 * - The client's own ID and question (with its letter case) go back in the response.
 */
import dnsPacket from 'dns-packet';
import { randomInt } from 'node:crypto';
import { AnswerCache, agedRecords, negativeSoa, cacheKey, cacheSeconds, DEFAULT_TTL_POLICY, type CachedAnswer, type TtlPolicy } from './cache.ts';
import { RCODE } from '../wire/constants.ts';

/** dns-packet's decoded message with the fields its typings leave out or leave optional. */
export type DecodedResponse = dnsPacket.DecodedPacket & {
  id: number;
  rcode: string;
  opcode: string;
  questions: dnsPacket.Question[];
  answers: dnsPacket.Answer[];
  authorities: dnsPacket.Answer[];
  additionals: dnsPacket.Answer[];
};

/** dns-packet's decode, typed; throws on malformed input like the original. */
export function decodeResponse(bytes: Buffer): DecodedResponse {
  return dnsPacket.decode(bytes) as DecodedResponse;
}

/** What resolve returns: a packet ready for dns-packet's encoder, plus the rcode by name. */
export type ResponsePacket = dnsPacket.Packet & { rcode: string };

export interface Upstream {
  host: string;
  port: number;
}

/** Sends one query to one upstream and resolves with its response bytes. */
export type Send = (upstream: Upstream, query: Buffer, opts: { timeoutMs: number }) => Promise<Buffer>;

export interface ForwarderMetrics {
  hit?(q: dnsPacket.Question): void;
  miss?(q: dnsPacket.Question): void;
  coalesced?(q: dnsPacket.Question): void;
  upstreamError?(upstream: Upstream, reason: string): void;
  servfail?(q: dnsPacket.Question, reason: string): void;
}

export interface ForwarderOptions {
  upstreams: Upstream[];
  /** Per upstream attempt (ms). Default 1500. */
  timeoutMs?: number;
  /** For the whole resolution, all attempts together (ms). Default 4000. */
  totalTimeoutMs?: number;
  now: () => number;
  send: Send;
  /** Cache bound in entries. Default 10 000. */
  maxEntries?: number;
  ttl?: Partial<TtlPolicy>;
  /** EDNS UDP payload size we advertise upstream (RFC 9715 suggests 1232). */
  udpPayloadSize?: number;
  /** How long a failed upstream stays at the back of the line (ms). Default 30 s. */
  penaltyMs?: number;
  /** 16-bit query IDs; default node:crypto randomInt. */
  randomId?: () => number;
  metrics?: ForwarderMetrics;
}

export interface ResolveOptions {
  /** The client's message ID, copied into the response. */
  id?: number;
  /** The client set DO (RFC 3225): ask for and pass on DNSSEC records. */
  dnssecOk?: boolean;
  /** The client set CD (RFC 4035 §3.2.2). */
  cd?: boolean;
  /** The client's RD bit, echoed. Default true. */
  rd?: boolean;
}

export interface Forwarder {
  /**
   * A complete response packet for the client (no OPT record: the server adds its own,
   * sized for the client). Never rejects; SERVFAIL when no upstream gave a usable answer.
   */
  resolve(question: dnsPacket.Question, opts?: ResolveOptions): Promise<ResponsePacket>;
  /** Drops every cached answer (e.g. after the upstream list changed). */
  clear(): void;
  readonly cacheSize: number;
}

const RETRY_RCODES = new Set(['SERVFAIL', 'REFUSED', 'NOTIMP', 'FORMERR']);

/** dns-packet's encoder ignores `rcode`: the code must sit in the low bits of `flags`. */
export function rcodeBits(rcode: string): number {
  const n = (RCODE as Record<string, number>)[rcode];
  return n !== undefined && n < 16 ? n : RCODE.SERVFAIL;
}

type Outcome = { ok: true; entry: CachedAnswer } | { ok: false; reason: string };

function withDeadline<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const t = setTimeout(() => reject(new Error(`${what}: timed out after ${ms} ms`)), Math.max(0, ms));
    t.unref?.();
    p.then(
      (v) => {
        clearTimeout(t);
        resolve(v);
      },
      (e) => {
        clearTimeout(t);
        reject(e);
      },
    );
  });
}

const sameName = (a: string, b: string) => a.toLowerCase().replace(/\.$/, '') === b.toLowerCase().replace(/\.$/, '');

export function createForwarder(opts: ForwarderOptions): Forwarder {
  const policy: TtlPolicy = { ...DEFAULT_TTL_POLICY, ...opts.ttl };
  const timeoutMs = opts.timeoutMs ?? 1500;
  const totalTimeoutMs = opts.totalTimeoutMs ?? 4000;
  const penaltyMs = opts.penaltyMs ?? 30_000;
  const randomId = opts.randomId ?? (() => randomInt(0, 0x10000));
  const cache = new AnswerCache(opts.maxEntries ?? 10_000);
  const inflight = new Map<string, Promise<Outcome>>();
  const penalty = new Map<Upstream, number>();
  let rotation = 0;
  const m = opts.metrics ?? {};

  function order(now: number): Upstream[] {
    const n = opts.upstreams.length;
    const start = rotation++ % Math.max(1, n);
    const rotated = opts.upstreams.slice(start).concat(opts.upstreams.slice(0, start));
    const healthy = rotated.filter((u) => (penalty.get(u) ?? 0) <= now);
    const sick = rotated.filter((u) => (penalty.get(u) ?? 0) > now);
    return healthy.concat(sick);
  }

  function validate(bytes: Buffer, id: number, q: dnsPacket.Question): DecodedResponse | string {
    let p: DecodedResponse;
    try {
      p = decodeResponse(bytes);
    } catch (e) {
      return `malformed response: ${e instanceof Error ? e.message : e}`;
    }
    if (p.type !== 'response') return 'not a response';
    if (p.id !== id) return `ID mismatch (sent ${id}, got ${p.id})`;
    if (p.opcode !== 'QUERY') return `opcode ${p.opcode}`;
    const rq = p.questions?.[0];
    if (p.questions?.length !== 1 || !rq || !sameName(rq.name, q.name) || rq.type !== q.type || (rq.class ?? 'IN') !== (q.class ?? 'IN')) {
      return 'question mismatch';
    }
    if (RETRY_RCODES.has(p.rcode ?? 'NOERROR')) return `upstream answered ${p.rcode}`;
    // The send shell retries truncated answers over TCP; a partial answer is no answer.
    if (p.flag_tc) return 'truncated answer';
    return p;
  }

  async function ask(q: dnsPacket.Question, dnssecOk: boolean, cd: boolean): Promise<Outcome> {
    const started = opts.now();
    const deadline = Date.now() + totalTimeoutMs;
    let lastReason = 'no upstreams configured';
    for (const up of order(started)) {
      const remaining = deadline - Date.now();
      if (remaining <= 0) {
        lastReason = 'total time limit reached';
        break;
      }
      const id = randomId() & 0xffff;
      const query = dnsPacket.encode({
        type: 'query',
        id,
        flags: dnsPacket.RECURSION_DESIRED | (cd ? dnsPacket.CHECKING_DISABLED : 0),
        questions: [{ name: q.name.toLowerCase(), type: q.type, class: q.class ?? 'IN' }],
        additionals: [{ type: 'OPT', name: '.', udpPayloadSize: opts.udpPayloadSize ?? 1232, flags: dnssecOk ? dnsPacket.DNSSEC_OK : 0 } as dnsPacket.Answer],
      });
      const attempt = Math.min(timeoutMs, remaining);
      let bytes: Buffer;
      try {
        bytes = await withDeadline(opts.send(up, query, { timeoutMs: attempt }), attempt, `${up.host}:${up.port}`);
      } catch (e) {
        lastReason = e instanceof Error ? e.message : String(e);
        penalty.set(up, opts.now() + penaltyMs);
        m.upstreamError?.(up, lastReason);
        continue;
      }
      const v = validate(bytes, id, q);
      if (typeof v === 'string') {
        lastReason = `${up.host}:${up.port}: ${v}`;
        penalty.set(up, opts.now() + penaltyMs);
        m.upstreamError?.(up, v);
        continue;
      }
      penalty.delete(up);
      const now = opts.now();
      const secs = cacheSeconds(v, policy);
      const entry: CachedAnswer = {
        rcode: v.rcode ?? 'NOERROR',
        authenticData: v.flag_ad,
        answers: v.answers ?? [],
        authorities: negativeSoa(v.authorities ?? []),
        additionals: (v.additionals ?? []).filter((r) => r.type !== 'OPT'),
        storedAt: now,
        expiresAt: now + (secs ?? 0) * 1000,
      };
      return { ok: true, entry: secs === undefined ? { ...entry, expiresAt: now } : entry };
    }
    return { ok: false, reason: lastReason };
  }

  function respond(q: dnsPacket.Question, o: ResolveOptions, rcode: string, entry?: CachedAnswer): ResponsePacket {
    const now = opts.now();
    const ad = !!entry?.authenticData && !!o.dnssecOk;
    const flags =
      ((o.rd ?? true) ? dnsPacket.RECURSION_DESIRED : 0) |
      dnsPacket.RECURSION_AVAILABLE |
      (o.cd ? dnsPacket.CHECKING_DISABLED : 0) |
      (ad ? dnsPacket.AUTHENTIC_DATA : 0) |
      rcodeBits(rcode);
    const strip = (rrs: dnsPacket.Answer[]) => (o.dnssecOk ? rrs : rrs.filter((r) => !['RRSIG', 'NSEC', 'NSEC3'].includes(r.type)));
    // Minimal responses, as BIND's default for recursive answers and Unbound and dnsmasq
    // do: a positive answer carries only its answer section (the upstream's NS and glue
    // are of no use to a stub and only grow the packet); a negative one keeps the SOA
    // (RFC 2308 negative caching downstream). With DO everything stays: a validator needs
    // the NSEC proofs of a wildcard answer.
    const minimal = !o.dnssecOk && rcode === 'NOERROR' && (entry?.answers.length ?? 0) > 0;
    return {
      type: 'response',
      id: o.id ?? 0,
      flags,
      rcode,
      questions: [q],
      answers: entry ? strip(agedRecords(entry.answers, entry.storedAt, now, policy.maxTtl)) : [],
      authorities: entry && !minimal ? strip(agedRecords(entry.authorities, entry.storedAt, now, policy.maxTtl)) : [],
      additionals: entry && !minimal ? strip(agedRecords(entry.additionals, entry.storedAt, now, policy.maxTtl)) : [],
    } as ResponsePacket;
  }

  async function resolve(question: dnsPacket.Question, o: ResolveOptions = {}): Promise<ResponsePacket> {
    const q: dnsPacket.Question = { name: question.name, type: question.type, class: question.class ?? 'IN' };
    const key = cacheKey(q.name, q.type, q.class ?? 'IN', !!o.dnssecOk, !!o.cd);
    const cached = cache.get(key, opts.now());
    if (cached) {
      m.hit?.(q);
      return respond(q, o, cached.rcode, cached);
    }
    let pending = inflight.get(key);
    if (pending) {
      m.coalesced?.(q);
    } else {
      m.miss?.(q);
      // The deadline guards against a `send` that never settles, whatever it promised.
      pending = withDeadline(ask(q, !!o.dnssecOk, !!o.cd), totalTimeoutMs + 50, 'resolution')
        .catch((e): Outcome => ({ ok: false, reason: e instanceof Error ? e.message : String(e) }))
        .then((out) => {
          inflight.delete(key);
          if (out.ok && out.entry.expiresAt > out.entry.storedAt) cache.set(key, out.entry);
          return out;
        });
      inflight.set(key, pending);
    }
    const out = await pending;
    if (!out.ok) {
      m.servfail?.(q, out.reason);
      return respond(q, o, 'SERVFAIL');
    }
    return respond(q, o, out.entry.rcode, out.entry);
  }

  return {
    resolve,
    clear: () => cache.clear(),
    get cacheSize() {
      return cache.size;
    },
  };
}
