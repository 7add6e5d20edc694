/**
 * The records an mDNS advertiser owns and how a query is answered from them (pure).
 *
 * RFC 6763 §4-§6, §9: for each advertised service a shared PTR `_type._proto.local →
 * instance`, the meta PTR `_services._dns-sd._udp.local → _type._proto.local`, and the
 * unique SRV (port, target HOST.local) and TXT (`key=value` strings) at the instance name.
 * RFC 6762: the unique A/AAAA records of HOST.local (§6), TTLs of §10 (120 s for records
 * naming a host, 4500 s for the rest), the cache-flush bit on unique records (§10.2),
 * known-answer suppression (§7.1), additional records (§12 of RFC 6763) and the
 * lexicographic comparison of records used to break probe ties (§8.2.1).
 */
import * as packet from 'dns-packet';

/** A resource record as dns-packet encodes and decodes it (the OPT pseudo-record never reaches here). */
export interface Rec {
  name: string;
  type: string;
  class?: string;
  ttl?: number;
  flush?: boolean;
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  data: any;
}

const answerCodec = (packet as unknown as { answer: { encode(a: Rec): Buffer } }).answer;

/** dns-packet's encoder, over our record type. */
export function encodePacket(p: { type: 'query' | 'response'; id: number; flags: number; questions: Question[]; answers?: Rec[]; additionals?: Rec[]; authorities?: Rec[] }): Buffer {
  return packet.encode(p as unknown as packet.Packet);
}

/** One DNS-SD service: `_domain._udp`, `_https._tcp`, ... with its port and TXT pairs. */
export interface ServiceAd {
  /** Service type and protocol, e.g. `_kith._tcp`. */
  type: string;
  port: number;
  txt: Record<string, string>;
  /** The instance label; the host label when absent. Renamed with the host on a conflict. */
  instance?: string;
}

/** The addresses one network link gives this host. */
export interface LinkAddresses {
  v4: string[];
  v6: string[];
}

export const HOST_TTL = 120;
export const OTHER_TTL = 4500;
export const META = '_services._dns-sd._udp.local';
/** RFC 6762 §6.7: legacy unicast answers carry TTLs of at most ten seconds. */
export const LEGACY_TTL = 10;

export const lower = (n: string) => n.toLowerCase().replace(/\.$/, '');
export const hostName = (label: string) => `${label}.local`;
export const typeName = (ad: ServiceAd) => `${ad.type}.local`;
/** The instance label follows the host's: `kith storage` becomes `kith-2 storage` after a rename. */
export const instanceLabel = (label: string, ad: ServiceAd) => (ad.instance === undefined ? label : `${label} ${ad.instance}`);
export const instanceName = (label: string, ad: ServiceAd) => `${instanceLabel(label, ad).replace(/\./g, '\\.')}.${typeName(ad)}`;

/** The names this host must own alone (probed, RFC 6762 §8.1). */
export function uniqueNames(label: string, ads: ServiceAd[]): string[] {
  return [hostName(label), ...ads.map((ad) => instanceName(label, ad))];
}

/** Every record for one link: unique ones carry the cache-flush bit. */
export function recordsFor(label: string, ads: ServiceAd[], link: LinkAddresses): Rec[] {
  const host = hostName(label);
  const out: Rec[] = [
    ...link.v4.map((a): Rec => ({ name: host, type: 'A', class: 'IN', ttl: HOST_TTL, flush: true, data: a })),
    ...link.v6.map((a): Rec => ({ name: host, type: 'AAAA', class: 'IN', ttl: HOST_TTL, flush: true, data: a })),
  ];
  const types = new Set<string>();
  for (const ad of ads) {
    const inst = instanceName(label, ad);
    if (!types.has(ad.type)) {
      types.add(ad.type);
      out.push({ name: META, type: 'PTR', class: 'IN', ttl: OTHER_TTL, data: typeName(ad) });
    }
    out.push({ name: typeName(ad), type: 'PTR', class: 'IN', ttl: OTHER_TTL, data: inst });
    out.push({ name: inst, type: 'SRV', class: 'IN', ttl: HOST_TTL, flush: true, data: { priority: 0, weight: 0, port: ad.port, target: host } });
    const txt = Object.entries(ad.txt).map(([k, v]) => Buffer.from(`${k}=${v}`));
    out.push({ name: inst, type: 'TXT', class: 'IN', ttl: OTHER_TTL, flush: true, data: txt.length > 0 ? txt : [Buffer.alloc(0)] });
  }
  return out;
}

/** The record's RDATA as bytes, names in it lower-cased (for equality and §8.2.1 ordering). */
export function rdata(r: Rec): Buffer {
  const d = (r as { data: unknown }).data;
  const data =
    r.type === 'PTR' || r.type === 'CNAME' ? lower(String(d)) :
    r.type === 'SRV' ? { ...(d as object), target: lower((d as { target: string }).target) } : d;
  const enc = answerCodec.encode({ ...r, name: '.', ttl: 0, flush: false, class: 'IN', data });
  return Buffer.from(enc.subarray(11));
}

const TYPE_NUM: Record<string, number> = { A: 1, PTR: 12, TXT: 16, AAAA: 28, SRV: 33, NSEC: 47, ANY: 255 };
const typeNum = (t: string) => TYPE_NUM[t] ?? (/^UNKNOWN_(\d+)$/.exec(t) ? Number(/^UNKNOWN_(\d+)$/.exec(t)![1]) : 0);

export const sameRecord = (a: Rec, b: Rec) => lower(a.name) === lower(b.name) && a.type === b.type && rdata(a).equals(rdata(b));

/**
 * RFC 6762 §8.2.1: compare two hosts' proposed records for one name, each sorted by class,
 * type, then raw RDATA; the first difference decides. <0: ours are earlier (we lose).
 */
export function compareRecordSets(ours: Rec[], theirs: Rec[]): number {
  const key = (r: Rec) => ({ t: typeNum(r.type), d: rdata(r) });
  const sort = (rs: Rec[]) => rs.map(key).sort((x, y) => x.t - y.t || Buffer.compare(x.d, y.d));
  const a = sort(ours);
  const b = sort(theirs);
  for (let i = 0; i < Math.min(a.length, b.length); i++) {
    const c = a[i]!.t - b[i]!.t || Buffer.compare(a[i]!.d, b[i]!.d);
    if (c !== 0) return c;
  }
  return a.length - b.length;
}

export interface Question {
  name: string;
  type: string;
}

/**
 * The answers to some questions from `records`, minus those the querier already holds
 * with at least half their TTL left (§7.1), and the additional records RFC 6763 §12 asks
 * for (SRV, TXT and addresses after a PTR; addresses after an SRV).
 */
export function answer(records: Rec[], questions: Question[], known: Rec[] = []): { answers: Rec[]; additionals: Rec[] } {
  const suppressed = (r: Rec) => known.some((k) => sameRecord(k, r) && (k.ttl ?? 0) >= (r.ttl ?? 0) / 2);
  const answers: Rec[] = [];
  for (const q of questions) {
    const qn = lower(q.name);
    for (const r of records) {
      if (lower(r.name) !== qn || (q.type !== 'ANY' && q.type !== r.type)) continue;
      if (!answers.includes(r) && !suppressed(r)) answers.push(r);
    }
  }
  const additionals: Rec[] = [];
  const add = (name: string, types: string[]) => {
    for (const r of records) {
      if (lower(r.name) === lower(name) && types.includes(r.type) && !answers.includes(r) && !additionals.includes(r) && !suppressed(r)) additionals.push(r);
    }
  };
  for (const r of answers) {
    if (r.type === 'PTR' && lower(r.name) !== lower(META)) add(String(r.data), ['SRV', 'TXT']);
  }
  for (const r of [...answers, ...additionals]) {
    if (r.type === 'SRV') add((r.data as { target: string }).target, ['A', 'AAAA']);
  }
  return { answers, additionals };
}
