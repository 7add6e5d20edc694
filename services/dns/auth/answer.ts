/**
 * The authoritative answer engine: a pure function from (zones, query) to reply bytes.
 *
 * RFC 1034 §4.3.2 (the lookup algorithm: referral at zone cuts, exact match, CNAME
 * restart, wildcards), RFC 4592 (wildcards: closest encloser, source of synthesis, empty
 * non-terminals), RFC 2308 §2–3, §5 (NXDOMAIN/NODATA with the SOA, negative TTL
 * min(SOA TTL, MINIMUM)), RFC 6604 (rcode of the last name in a CNAME chain), RFC 4035 §3.1.4.1
 * (DS is answered by the parent side of a cut), RFC 8482 §4.2 (minimal ANY: one RRset),
 * RFC 1035 §3.3.9/RFC 2782 (additional addresses for MX/SRV/NS targets), RFC 6891 (EDNS(0),
 * BADVERS), RFC 5936 (AXFR, in ./axfr.ts).
 *
 * Names outside every served zone get REFUSED, marked `not-ours` so the caller can forward
 * them instead.
 */
import type { Buffer } from 'node:buffer';
import { isAtOrBelow, labelsToKey, parentKey, type Labels } from '../wire/name.ts';
import type { Query } from '../wire/decode.ts';
import { CLASS_ANY, CLASS_IN, OPCODE, RCODE, TYPE } from '../wire/constants.ts';
import type { RRset, Zone, ZoneSet } from '../zone/zone.ts';
import { DEFAULT_MAX_UDP, encodeResponse, sizeLimit, type OutRRset, type Sections } from './encode.ts';
import { transfer } from './axfr.ts';
import type { AnswerOptions, AnswerResult } from './result.ts';

export type { AnswerOptions, AnswerResult } from './result.ts';

const MAX_CHAIN = 16;

export function answer(zones: ZoneSet, q: Query, opts: AnswerOptions): AnswerResult {
  const limit = sizeLimit(q, opts.transport, opts.maxUdp) - (opts.reserve ?? 0);
  const udpSize = opts.maxUdp ?? DEFAULT_MAX_UDP;
  const empty: Sections = { answer: [], authority: [], additional: [] };
  const reply = (rcode: number, aa = false, s: Sections = empty): AnswerResult =>
    ({ kind: 'reply', messages: [encodeResponse(q, s, { rcode, aa, limit, udpSize })] });

  if (q.edns && q.edns.version > 0) return reply(RCODE.BADVERS);
  if (q.opcode !== OPCODE.QUERY) return reply(RCODE.NOTIMP);
  if (q.qclass !== CLASS_IN && q.qclass !== CLASS_ANY) return reply(RCODE.REFUSED);
  if (q.qtype === TYPE.AXFR || q.qtype === TYPE.IXFR) return transfer(zones, q, opts, limit, udpSize);

  let zone = zones.find(q.qkey);
  // Lazy: a forwarded query never needs the REFUSED it would otherwise get.
  if (!zone) return { kind: 'not-ours', get messages() { return reply(RCODE.REFUSED).messages; } };
  // DS lives on the parent side of a cut: at a served apex, ask the parent zone if we have it.
  if (q.qtype === TYPE.DS && q.qkey === zone.origin) {
    const p = parentKey(zone.origin);
    const parent = p === null ? undefined : zones.find(p);
    if (parent) zone = parent;
  }

  const s: Sections = { answer: [], authority: [], additional: [] };
  let rcode: number = RCODE.NOERROR;
  let aa = true;
  let name: Labels = q.qname;
  let key = q.qkey;
  const seen = new Set<string>();

  for (let step = 0; ; step++) {
    seen.add(key);
    const cut = findCut(zone, key, q.qtype);
    if (cut) {
      // Referral (RFC 1034 §4.3.2 step 3b): not authoritative unless a CNAME got us here.
      if (s.answer.length === 0) aa = false;
      const ns = zone.get(cut, TYPE.NS)!;
      s.authority.push(out(ns));
      addGlue(zone, ns, s);
      break;
    }
    const node = zone.node(key);
    let data: Map<number, RRset> | undefined = node;
    let synthesized = false;
    if (!node) {
      if (zone.exists(key)) { negative(zone, s); break; } // empty non-terminal: NODATA
      const ce = closestEncloser(zone, key);
      const wild = ce === '' ? '*' : '*.' + ce;
      if (zone.node(wild)) { data = zone.node(wild); synthesized = true; }
      else if (zone.exists(wild)) { negative(zone, s); break; } // wildcard that is an ENT (RFC 4592 §2.2.2)
      else { rcode = RCODE.NXDOMAIN; negative(zone, s); break; }
    }
    const owner = synthesized ? name : (data!.values().next().value as RRset).labels;
    if (q.qtype === TYPE.ANY) {
      const pick = [...data!.values()].filter((r) => r.type !== TYPE.RRSIG && r.type !== TYPE.NSEC)
        .sort((a, b) => (a.type === TYPE.SOA ? -1 : b.type === TYPE.SOA ? 1 : a.type - b.type))[0];
      if (pick) s.answer.push(out(pick, owner));
      break;
    }
    const hit = data!.get(q.qtype);
    if (hit) {
      s.answer.push(out(hit, owner));
      // Like NSD: DNSSEC key material (DNSKEY, DS) goes out without the NS RRset.
      if (opts.authorityNs && !(q.qtype === TYPE.NS && key === zone.origin) && q.qtype !== TYPE.DNSKEY && q.qtype !== TYPE.DS) {
        const apexNs = zone.get(zone.origin, TYPE.NS);
        if (apexNs) s.authority.push(out(apexNs));
      }
      break;
    }
    const cname = data!.get(TYPE.CNAME);
    if (!cname) { negative(zone, s); break; }
    s.answer.push(out(cname, owner));
    const target = readRdataName(cname.rdata[0], 0);
    const tkey = labelsToKey(target);
    const next = zones.find(tkey);
    // Stop at loops, overlong chains and names we do not serve: the client resolves on.
    if (!next || seen.has(tkey) || step >= MAX_CHAIN) break;
    zone = next;
    name = target;
    key = tkey;
  }
  // QCLASS * (RFC 1035 §3.2.5): we hold only IN, so we cannot claim the full answer; like NSD,
  // answer without AA, and without the apex NS or the SOA (a negative answer for IN only).
  if (q.qclass === CLASS_ANY) {
    aa = false;
    s.authority = s.authority.filter((rs) => rs.type === TYPE.NS && labelsToKey(rs.labels) !== zone.origin);
  }
  if (rcode === RCODE.NOERROR || rcode === RCODE.NXDOMAIN) additional(zones, s);
  return { kind: 'reply', messages: [encodeResponse(q, s, { rcode, aa, limit, udpSize })] };
}

function out(rs: RRset, labels: Labels = rs.labels): OutRRset {
  return { labels, type: rs.type, ttl: rs.ttl, rdata: rs.rdata };
}

function negative(zone: Zone, s: Sections): void {
  s.authority.push({ labels: zone.soa.labels, type: TYPE.SOA, ttl: zone.negativeTtl, rdata: zone.soa.rdata });
}

/** The highest zone cut at or above `key` (but below the apex). DS at the cut itself is ours. */
function findCut(zone: Zone, key: string, qtype: number): string | null {
  if (zone.cuts.size === 0) return null;
  const chain: string[] = [];
  for (let k: string | null = key; k !== null && k !== zone.origin; k = parentKey(k)) chain.push(k);
  for (let i = chain.length - 1; i >= 0; i--) {
    const k = chain[i];
    if (zone.cuts.has(k)) {
      if (k === key && qtype === TYPE.DS) return null;
      return k;
    }
  }
  return null;
}

/** RFC 4592 §3.3.1: the longest existing ancestor of a name that does not exist. */
function closestEncloser(zone: Zone, key: string): string {
  for (let k = parentKey(key); k !== null; k = parentKey(k)) {
    if (zone.exists(k)) return k;
    if (k === zone.origin) return k;
  }
  return zone.origin;
}

/** An uncompressed name inside stored RDATA (our RDATA never contains pointers). */
export function readRdataName(rdata: Buffer, offset: number): Labels {
  const labels: Labels = [];
  let p = offset;
  while (p < rdata.length && rdata[p] !== 0) {
    const len = rdata[p];
    labels.push(rdata.subarray(p + 1, p + 1 + len) as Buffer);
    p += 1 + len;
  }
  return labels;
}

/** Offset of the target name inside RDATA for types that trigger additional processing. */
function targetOffset(type: number): number | null {
  switch (type) {
    case TYPE.NS: return 0;
    case TYPE.MX: return 2;
    case TYPE.SRV: return 6;
    default: return null;
  }
}

function addGlue(zone: Zone, ns: RRset, s: Sections): void {
  const seen = new Set<string>();
  for (const rd of ns.rdata) {
    const t = labelsToKey(readRdataName(rd, 0));
    if (!isAtOrBelow(t, zone.origin) || seen.has(t)) continue;
    seen.add(t);
    for (const type of [TYPE.A, TYPE.AAAA]) {
      const rs = zone.get(t, type);
      // Glue below this cut is needed to follow the referral at all (RFC 9471 §2.1).
      if (rs) s.additional.push({ ...out(rs), required: isAtOrBelow(t, ns.owner) });
    }
  }
}

/** A and AAAA for the targets of NS/MX/SRV answers, from authoritative data we serve. */
function additional(zones: ZoneSet, s: Sections): void {
  const have = new Set<string>();
  for (const rs of [...s.answer, ...s.additional]) have.add(labelsToKey(rs.labels) + '/' + rs.type);
  const targets: Array<{ t: string; from: Zone | undefined }> = [];
  for (const rs of [...s.answer, ...s.authority]) {
    const off = targetOffset(rs.type);
    if (off === null) continue;
    const from = zones.find(labelsToKey(rs.labels));
    for (const rd of rs.rdata) targets.push({ t: labelsToKey(readRdataName(rd, off)), from });
  }
  for (const { t, from } of targets) {
    const z = zones.find(t);
    // Like NSD: addresses only from the zone that holds the NS/MX/SRV record itself.
    if (!z || z !== from || findCut(z, t, TYPE.A)) continue;
    for (const type of [TYPE.A, TYPE.AAAA]) {
      const rs = z.get(t, type);
      const k = t + '/' + type;
      if (rs && !have.has(k)) { have.add(k); s.additional.push(out(rs)); }
    }
  }
}

