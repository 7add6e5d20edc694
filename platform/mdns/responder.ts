/**
 * The mDNS responder's protocol core (pure): `handle(state, now, input, random)` →
 * `{ state, sends, events }`. The shell (advertiser.ts) owns sockets and timers.
 *
 * RFC 6762 implemented here:
 *   §8.1  probing: three queries for every unique name 250 ms apart, the proposed records in
 *         the authority section, after a random 0-250 ms wait; a response naming one of
 *         them with other data is a conflict: rename (`kith` → `kith-2` → `kith-3`, services
 *         follow) and probe again; after 15 conflicts in 10 s, wait 5 s between attempts.
 *   §8.2  simultaneous probe tie-breaking: the lexicographically later records win; the
 *         loser waits one second and probes again.
 *   §8.3  announcing: two unsolicited responses one second apart, cache-flush on unique
 *         records (§10.2).
 *   §8.4/§13 re-probing and re-announcing when the addresses change; goodbyes (TTL 0) for
 *         addresses that went away.
 *   §6    answering: multicast answers (shared records after 20-120 ms, unique at once; a
 *         record at most once a second per link, every 250 ms for probes),
 *         QU questions answered unicast (§5.4), legacy unicast queries (source port ≠ 5353)
 *         answered unicast to the source with the query's ID, its questions, TTL ≤ 10 and no
 *         cache-flush bits (§6.7); known-answer suppression (§7.1).
 *   §9    conflict after announcing: another host's response with the same name and type
 *         but other data makes this host rename and probe again.
 *   §10.1 goodbye packets (TTL 0) on stop.
 * Bad packets are ignored (a decode error is never thrown out of `handle`).
 */
import * as packet from 'dns-packet';
import { answer, compareRecordSets, encodePacket, LEGACY_TTL, lower, rdata, recordsFor, sameRecord, uniqueNames, type LinkAddresses, type Question, type Rec, type ServiceAd } from './records.ts';

export const MDNS_PORT = 5353;
export const MDNS_V4 = '224.0.0.251';
export const MDNS_V6 = 'ff02::fb';

/** A link (network interface) the responder speaks on: its name and addresses. */
export interface Link extends LinkAddresses {
  name: string;
}

export type Phase = 'waiting' | 'probing' | 'announcing' | 'announced' | 'stopped';

interface Pending {
  dueAt: number;
  link?: string;
  answers: Rec[];
  additionals: Rec[];
}

export interface State {
  base: string;
  /** 1: the base name; n > 1: `base-n`. */
  n: number;
  phase: Phase;
  step: number;
  nextAt?: number;
  links: Link[];
  services: ServiceAd[];
  conflicts: number[];
  pending: Pending[];
  /** When each record was last multicast on each link (§6: at most once a second). */
  lastMulticast?: Record<string, number>;
}

export interface Peer {
  address: string;
  port: number;
}

export type Input =
  | { kind: 'tick' }
  /** A datagram received; `link` is the link it came in on, when known. */
  | { kind: 'packet'; bytes: Uint8Array; from: Peer; link?: string }
  | { kind: 'links'; links: Link[] }
  | { kind: 'stop' };

export type Target = { multicast: true; link: string } | { unicast: Peer };

export interface Send {
  to: Target;
  bytes: Buffer;
}

export type Event =
  | { kind: 'probing'; name: string }
  | { kind: 'conflict'; name: string; next: string; reason: string }
  | { kind: 'announced'; name: string }
  | { kind: 'links-changed'; links: string[] }
  | { kind: 'stopped'; name: string };

export interface Result {
  state: State;
  sends: Send[];
  events: Event[];
}

export const currentName = (s: Pick<State, 'base' | 'n'>) => (s.n === 1 ? s.base : `${s.base}-${s.n}`);

export function initialState(base: string, services: ServiceAd[], links: Link[], now: number, random: () => number): State {
  return { base, n: 1, phase: 'waiting', step: 0, nextAt: now + Math.floor(random() * 250), links, services, conflicts: [], pending: [] };
}

/** When the shell must call `handle` with a tick next (undefined: only on input). */
export function nextWake(s: State): number | undefined {
  const times = [...(s.nextAt !== undefined ? [s.nextAt] : []), ...s.pending.map((p) => p.dueAt)];
  return times.length > 0 ? Math.min(...times) : undefined;
}

const AA = packet.AUTHORITATIVE_ANSWER;

function recordsOn(s: State, link: Link): Rec[] {
  return recordsFor(currentName(s), s.services, link);
}

/** Records for a link, or for all links together when the link is unknown. */
function recordsForLink(s: State, linkName: string | undefined): Rec[] {
  const link = s.links.find((l) => l.name === linkName);
  if (link) return recordsOn(s, link);
  return recordsOn(s, { name: '*', v4: [...new Set(s.links.flatMap((l) => l.v4))], v6: [...new Set(s.links.flatMap((l) => l.v6))] });
}

const sentKey = (link: string, r: Rec) => `${link}|${lower(r.name)}|${r.type}|${rdata(r).toString('hex')}`;

/**
 * RFC 6762 §6: a record is multicast on a link at most once a second (every 250 ms when
 * answering a probe); what was sent more recently is left out, and nothing goes when
 * nothing is left. Returns the sends and the updated times.
 */
function multicastOnce(s: State, now: number, links: string[], answers: Rec[], additionals: Rec[], minGapMs: number): { sends: Send[]; lastMulticast: Record<string, number> } {
  const last: Record<string, number> = {};
  for (const [k, t] of Object.entries(s.lastMulticast ?? {})) if (now - t < 5000) last[k] = t;
  const sends: Send[] = [];
  for (const link of links) {
    const fresh = answers.filter((r) => (last[sentKey(link, r)] ?? -Infinity) <= now - minGapMs);
    if (fresh.length === 0) continue;
    for (const r of fresh) last[sentKey(link, r)] = now;
    sends.push({ to: { multicast: true, link }, bytes: encodeResponse(fresh, additionals.filter((r) => !fresh.includes(r))) });
  }
  return { sends, lastMulticast: last };
}

const encodeResponse = (answers: Rec[], additionals: Rec[] = []) => encodePacket({ type: 'response', id: 0, flags: AA, questions: [], answers, additionals });

function probes(s: State): Send[] {
  const names = uniqueNames(currentName(s), s.services);
  return s.links.map((link) => {
    const unique = recordsOn(s, link).filter((r) => r.flush).map((r) => ({ ...r, flush: false }));
    const bytes = encodePacket({ type: 'query', id: 0, flags: 0, questions: names.map((name) => ({ name, type: 'ANY' })), authorities: unique });
    return { to: { multicast: true, link: link.name }, bytes };
  });
}

function announcements(s: State, ttl?: number): Send[] {
  return s.links.map((link) => {
    const rs = recordsOn(s, link).map((r) => (ttl === undefined ? r : { ...r, ttl }));
    return { to: { multicast: true, link: link.name }, bytes: encodeResponse(rs) };
  });
}

function decode(bytes: Uint8Array): packet.Packet | undefined {
  try {
    const p = packet.decode(Buffer.from(bytes));
    // Touch every record the way the core will, so malformed data fails here, not later.
    for (const r of [...(p.answers ?? []), ...(p.additionals ?? []), ...(p.authorities ?? [])]) rdata(r as unknown as Rec);
    for (const q of p.questions ?? []) if (typeof q.name !== 'string') return undefined;
    return p;
  } catch {
    return undefined;
  }
}

/** A question's class with the unicast-response bit (dns-packet leaves it as UNKNOWN_32769). */
function questionClass(q: packet.Question): { inet: boolean; qu: boolean } {
  const c = String(q.class ?? 'IN');
  const m = /^UNKNOWN_(\d+)$/.exec(c);
  if (m) {
    const n = Number(m[1]);
    return { inet: (n & 0x7fff) === 1 || (n & 0x7fff) === 255, qu: (n & 0x8000) !== 0 };
  }
  return { inet: c === 'IN' || c === 'ANY', qu: false };
}

function rename(s: State, now: number, random: () => number, reason: string, events: Event[]): State {
  const name = currentName(s);
  const conflicts = [...s.conflicts.filter((t) => now - t < 10_000), now];
  const next = { ...s, n: s.n + 1, phase: 'waiting' as const, step: 0, pending: [], conflicts };
  next.nextAt = now + (conflicts.length >= 15 ? 5000 : Math.floor(random() * 250));
  events.push({ kind: 'conflict', name, next: currentName(next), reason });
  return next;
}

export function handle(s: State, now: number, input: Input, random: () => number = Math.random): Result {
  const sends: Send[] = [];
  const events: Event[] = [];
  if (s.phase === 'stopped') return { state: s, sends, events };

  if (input.kind === 'stop') {
    if (s.phase === 'announcing' || s.phase === 'announced') sends.push(...announcements(s, 0));
    events.push({ kind: 'stopped', name: currentName(s) });
    return { state: { ...s, phase: 'stopped', nextAt: undefined, pending: [] }, sends, events };
  }

  if (input.kind === 'links') {
    const key = (ls: Link[]) => JSON.stringify([...ls].sort((a, b) => a.name.localeCompare(b.name)).map((l) => [l.name, [...l.v4].sort(), [...l.v6].sort()]));
    if (key(input.links) === key(s.links)) return { state: s, sends, events };
    // Goodbyes for the address records that went away, where they had been announced.
    if (s.phase === 'announcing' || s.phase === 'announced') {
      for (const old of s.links) {
        const now_ = input.links.find((l) => l.name === old.name);
        const gone: Rec[] = recordsOn(s, old).filter((r) => (r.type === 'A' || r.type === 'AAAA') && !(now_ && recordsOn(s, now_).some((n) => sameRecord(n, r))));
        if (gone.length > 0 && now_) sends.push({ to: { multicast: true, link: old.name }, bytes: encodeResponse(gone.map((r) => ({ ...r, ttl: 0 }))) });
      }
    }
    events.push({ kind: 'links-changed', links: input.links.map((l) => `${l.name}=${[...l.v4, ...l.v6].join(',')}`) });
    // §8.3 / §13: connectivity changed, so probe and announce again (keeping the name we won).
    return { state: { ...s, links: input.links, phase: 'waiting', step: 0, pending: [], nextAt: now + Math.floor(random() * 250) }, sends, events };
  }

  if (input.kind === 'tick') {
    let st = s;
    const due = st.pending.filter((p) => p.dueAt <= now);
    if (due.length > 0) {
      st = { ...st, pending: st.pending.filter((p) => p.dueAt > now) };
      for (const p of due) {
        const targets = p.link !== undefined && st.links.some((l) => l.name === p.link) ? [p.link] : st.links.map((l) => l.name);
        const m = multicastOnce(st, now, targets, p.answers, p.additionals, 1000);
        sends.push(...m.sends);
        st = { ...st, lastMulticast: m.lastMulticast };
      }
    }
    if (st.nextAt === undefined || st.nextAt > now) return { state: st, sends, events };
    if (st.phase === 'waiting' || st.phase === 'probing') {
      const step = st.phase === 'waiting' ? 0 : st.step;
      if (step === 0) events.push({ kind: 'probing', name: currentName(st) });
      if (step < 3) {
        sends.push(...probes(st));
        return { state: { ...st, phase: 'probing', step: step + 1, nextAt: now + 250 }, sends, events };
      }
      sends.push(...announcements(st));
      events.push({ kind: 'announced', name: currentName(st) });
      return { state: { ...st, phase: 'announcing', step: 1, nextAt: now + 1000 }, sends, events };
    }
    if (st.phase === 'announcing') {
      sends.push(...announcements(st));
      return { state: { ...st, phase: 'announced', step: 2, nextAt: undefined }, sends, events };
    }
    return { state: { ...st, nextAt: undefined }, sends, events };
  }

  // A datagram.
  const p = decode(input.bytes);
  if (!p) return { state: s, sends, events };
  const ours = uniqueNames(currentName(s), s.services).map(lower);
  const mine = recordsForLink(s, input.link);
  const allMine = s.links.flatMap((l) => recordsOn(s, l));
  const isOurs = (r: Rec) => allMine.some((m) => sameRecord(m, r));

  if (p.type === 'response') {
    if (input.from.port !== MDNS_PORT) return { state: s, sends, events }; // §6: not an mDNS response
    for (const r of [...(p.answers ?? []), ...(p.additionals ?? [])] as unknown as Rec[]) {
      const n = lower(r.name);
      if (!ours.includes(n) || (r.ttl ?? 0) === 0 || isOurs(r)) continue;
      if (s.phase === 'waiting' || s.phase === 'probing') {
        return { state: rename(s, now, random, `${r.name} ${r.type} answered by ${input.from.address} while probing`, events), sends, events };
      }
      // §9: the same name and type with other data (shared PTRs are never at our unique names).
      if (allMine.some((m) => lower(m.name) === n && m.type === r.type)) {
        return { state: rename(s, now, random, `${r.name} ${r.type} also claimed by ${input.from.address}`, events), sends, events };
      }
    }
    return { state: s, sends, events };
  }

  const questions = (p.questions ?? []).filter((q) => questionClass(q).inet);
  if (questions.length === 0) return { state: s, sends, events };

  // A probe for one of our names while we probe: §8.2 tie-break.
  if (s.phase === 'waiting' || s.phase === 'probing') {
    const auth = (p.authorities ?? []) as unknown as Rec[];
    for (const q of questions) {
      const n = lower(q.name);
      if (!ours.includes(n)) continue;
      const theirs = auth.filter((r) => lower(r.name) === n);
      if (theirs.length === 0) continue;
      const c = compareRecordSets(mine.filter((r) => r.flush && lower(r.name) === n), theirs);
      if (c < 0) {
        // We lose this round: wait a second and probe again with the same name.
        return { state: { ...s, phase: 'waiting', step: 0, nextAt: now + 1000 }, sends, events };
      }
    }
    return { state: s, sends, events };
  }

  const legacy = input.from.port !== MDNS_PORT;
  const known = (p.answers ?? []) as unknown as Rec[];
  const { answers, additionals } = answer(mine, questions.map((q): Question => ({ name: q.name, type: String(q.type) })), legacy ? [] : known);
  if (answers.length === 0) return { state: s, sends, events };

  if (legacy) {
    const cap = (r: Rec): Rec => ({ ...r, flush: false, ttl: Math.min(r.ttl ?? 0, LEGACY_TTL) });
    const bytes = encodePacket({ type: 'response', id: p.id ?? 0, flags: AA, questions: questions.map((q) => ({ name: q.name, type: String(q.type) })), answers: answers.map(cap), additionals: additionals.map(cap) });
    sends.push({ to: { unicast: input.from }, bytes });
    return { state: s, sends, events };
  }
  if (questions.every((q) => questionClass(q).qu)) {
    sends.push({ to: { unicast: input.from }, bytes: encodeResponse(answers, additionals) });
    return { state: s, sends, events };
  }
  if (answers.every((r) => r.flush)) {
    const targets = input.link !== undefined && s.links.some((l) => l.name === input.link) ? [input.link] : s.links.map((l) => l.name);
    const probe = (p.authorities ?? []).length > 0;
    const m = multicastOnce(s, now, targets, answers, additionals, probe ? 250 : 1000);
    sends.push(...m.sends);
    return { state: { ...s, lastMulticast: m.lastMulticast }, sends, events };
  }
  const dueAt = now + 20 + Math.floor(random() * 100);
  return { state: { ...s, pending: [...s.pending, { dueAt, ...(input.link !== undefined ? { link: input.link } : {}), answers, additionals }] }, sends, events };
}

