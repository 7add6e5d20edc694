/**
 * RFC 2136 UPDATE processing as a pure function over an abstract RRset store.
 *
 * §3.1 zone section (FORMERR / NOTAUTH), §3.2 prerequisites (YXDOMAIN, NXDOMAIN, YXRRSET,
 * NXRRSET, value-independent and value-dependent, TTL must be 0), §3.3 requester
 * permission (a policy hook, usually keyed by the TSIG key name), §3.4.1 pre-scan (NOTZONE,
 * FORMERR for bad classes/types), §3.4.2 updates applied in order (CNAME exclusivity, SOA
 * serial must advance, SOA and the last NS at the apex are never deleted), §3.6 the SOA
 * serial is bumped when the zone changed. The result is a list of record changes the
 * caller writes to the zone file and commits; the store itself is never mutated.
 */
import { CLASS_ANY, CLASS_IN, CLASS_NONE, RCODE, type HeaderRcodeName } from '../wire/constants.ts';
import type { ParsedUpdate, UpdateRR } from './parse.ts';
import { rdataKey } from './rdata.ts';

/** One record as the store sees it; data has dns-packet's shape for the type. */
export interface StoredRR {
  name: string;
  type: string;
  ttl: number;
  data: unknown;
}

/** What UPDATE needs from the zone model (class IN only). Names are canonical. */
export interface UpdateStore {
  /** True when we are the primary for this zone apex. */
  hasZone(apex: string): boolean;
  /** Every record owned by `name` (all types), [] when the name does not exist. */
  records(name: string): readonly StoredRR[];
}

export interface Change {
  op: 'add' | 'delete';
  name: string;
  type: string;
  ttl: number;
  data: unknown;
}

export type UpdateRcode = HeaderRcodeName;

export const RCODE_NUMBERS: Record<UpdateRcode, number> = RCODE;

export interface UpdateResult {
  rcode: UpdateRcode;
  zone?: string;
  changes: Change[];
  /** Why, for the log (never sent to the client). */
  message?: string;
}

export interface AuthorizeRequest {
  /** TSIG key that signed the request; undefined when unsigned. */
  keyName: string | undefined;
  zone: string;
  name: string;
  type: string;
  op: 'add' | 'delete';
}

export type Authorize = (req: AuthorizeRequest) => boolean;

export interface ProcessOptions {
  keyName?: string;
  /** Default: only signed requests may update (any name, any type). */
  authorize?: Authorize;
  /** Increment the SOA serial when the zone changed (RFC 2136 §3.6). Default true. */
  bumpSerial?: boolean;
}

const META_TYPES = new Set(['ANY', 'AXFR', 'IXFR', 'MAILA', 'MAILB', 'TSIG', 'TKEY', 'OPT']);
/** DNSSEC records may live beside a CNAME (RFC 4035 §2.5). */
const CNAME_COMPANIONS = new Set(['CNAME', 'RRSIG', 'NSEC', 'NSEC3']);

function inZone(name: string, zone: string): boolean {
  return zone === '.' || name === zone || name.endsWith('.' + zone);
}

/** RFC 1982 serial number arithmetic: is a > b? */
function serialGreater(a: number, b: number): boolean {
  return a !== b && ((a > b && a - b < 2 ** 31) || (a < b && b - a > 2 ** 31));
}

const fail = (rcode: UpdateRcode, message: string, zone?: string): UpdateResult => ({ rcode, zone, changes: [], message });

const rrKey = (rr: { type: string; data: unknown }) => `${rr.type}/${rdataKey(rr.type, rr.data)}`;

export function processUpdate(msg: ParsedUpdate, store: UpdateStore, opts: ProcessOptions = {}): UpdateResult {
  // §3.1.1: exactly one zone entry (checked by the parser), of type SOA.
  if (msg.zone.type !== 'SOA') return fail('FORMERR', `zone section type is ${msg.zone.type}, not SOA`);
  const zone = msg.zone.name;
  // §3.1.2: we only serve class IN zones.
  if (msg.zone.class !== CLASS_IN || !store.hasZone(zone)) return fail('NOTAUTH', `not primary for zone ${zone}`, zone);

  // §3.2: prerequisites against the current store.
  const required = new Map<string, { name: string; type: string; keys: Set<string> }>();
  for (const p of msg.prerequisites) {
    if (!inZone(p.name, zone)) return fail('NOTZONE', `prerequisite name ${p.name} is outside ${zone}`, zone);
    if (p.ttl !== 0) return fail('FORMERR', `prerequisite for ${p.name} has TTL ${p.ttl}, must be 0`, zone);
    const recs = store.records(p.name);
    if (p.class === CLASS_ANY) {
      if (p.rdlength !== 0) return fail('FORMERR', 'class ANY prerequisite with RDATA', zone);
      if (p.type === 'ANY') {
        if (recs.length === 0) return fail('NXDOMAIN', `${p.name} does not exist`, zone);
      } else if (!recs.some((r) => r.type === p.type)) {
        return fail('NXRRSET', `${p.name} ${p.type} does not exist`, zone);
      }
    } else if (p.class === CLASS_NONE) {
      if (p.rdlength !== 0) return fail('FORMERR', 'class NONE prerequisite with RDATA', zone);
      if (p.type === 'ANY') {
        if (recs.length > 0) return fail('YXDOMAIN', `${p.name} exists`, zone);
      } else if (recs.some((r) => r.type === p.type)) {
        return fail('YXRRSET', `${p.name} ${p.type} exists`, zone);
      }
    } else if (p.class === msg.zone.class) {
      if (META_TYPES.has(p.type) || p.data === undefined) return fail('FORMERR', `bad value-dependent prerequisite for ${p.name} ${p.type}`, zone);
      const k = `${p.name}|${p.type}`;
      const entry = required.get(k) ?? { name: p.name, type: p.type, keys: new Set<string>() };
      entry.keys.add(rdataKey(p.type, p.data));
      required.set(k, entry);
    } else {
      return fail('FORMERR', `prerequisite with class ${p.class}`, zone);
    }
  }
  // Value-dependent: the RRset must match exactly (§3.2.3).
  for (const req of required.values()) {
    const have = new Set(store.records(req.name).filter((r) => r.type === req.type).map((r) => rdataKey(r.type, r.data)));
    if (have.size !== req.keys.size || [...req.keys].some((k) => !have.has(k))) {
      return fail('NXRRSET', `${req.name} ${req.type} does not match the required RRset`, zone);
    }
  }

  // §3.4.1: pre-scan.
  for (const u of msg.updates) {
    if (!inZone(u.name, zone)) return fail('NOTZONE', `update name ${u.name} is outside ${zone}`, zone);
    if (u.class === msg.zone.class) {
      if (META_TYPES.has(u.type) || u.data === undefined) return fail('FORMERR', `cannot add ${u.type} records`, zone);
    } else if (u.class === CLASS_ANY) {
      if (u.ttl !== 0 || u.rdlength !== 0 || ['AXFR', 'IXFR', 'MAILA', 'MAILB', 'TSIG', 'TKEY', 'OPT'].includes(u.type)) {
        return fail('FORMERR', `bad class ANY delete for ${u.name} ${u.type}`, zone);
      }
    } else if (u.class === CLASS_NONE) {
      if (u.ttl !== 0 || META_TYPES.has(u.type) || u.data === undefined) return fail('FORMERR', `bad class NONE delete for ${u.name} ${u.type}`, zone);
    } else {
      return fail('FORMERR', `update with class ${u.class}`, zone);
    }
  }

  // §3.3: permission, for every update record.
  const authorize: Authorize = opts.authorize ?? ((r) => r.keyName !== undefined);
  for (const u of msg.updates) {
    const op = u.class === msg.zone.class ? 'add' : 'delete';
    if (!authorize({ keyName: opts.keyName, zone, name: u.name, type: u.type, op })) {
      return fail('REFUSED', `key ${opts.keyName ?? '(none)'} may not ${op} ${u.name} ${u.type}`, zone);
    }
  }

  // §3.4.2: apply in order to a working copy of the touched names.
  const original = new Map<string, StoredRR[]>();
  const work = new Map<string, StoredRR[]>();
  const at = (name: string): StoredRR[] => {
    let w = work.get(name);
    if (!w) {
      const recs = store.records(name).map((r) => ({ ...r, name }));
      original.set(name, recs);
      w = recs.slice();
      work.set(name, w);
    }
    return w;
  };
  let soaTouched = false;
  for (const u of msg.updates) {
    const recs = at(u.name);
    const isApex = u.name === zone;
    if (u.class === msg.zone.class) {
      const rr: StoredRR = { name: u.name, type: u.type, ttl: u.ttl, data: u.data };
      if (u.type === 'CNAME' && recs.some((r) => !CNAME_COMPANIONS.has(r.type))) continue;
      if (!CNAME_COMPANIONS.has(u.type) && recs.some((r) => r.type === 'CNAME')) continue;
      if (u.type === 'SOA') {
        const old = recs.find((r) => r.type === 'SOA');
        const newSerial = (u.data as { serial?: number }).serial ?? 0;
        if (!isApex || !old || !serialGreater(newSerial, (old.data as { serial?: number }).serial ?? 0)) continue;
        recs.splice(recs.indexOf(old), 1, rr);
        soaTouched = true;
        continue;
      }
      if (u.type === 'CNAME') {
        const i = recs.findIndex((r) => r.type === 'CNAME');
        if (i >= 0) recs.splice(i, 1);
        recs.push(rr);
        continue;
      }
      // RFC 2181 §5.2: one TTL per RRset, so the newest TTL applies to the whole set.
      for (let i = 0; i < recs.length; i++) if (recs[i].type === u.type) recs[i] = { ...recs[i], ttl: u.ttl };
      const key = rrKey(rr);
      if (!recs.some((r) => rrKey(r) === key)) recs.push(rr);
    } else if (u.class === CLASS_ANY) {
      const keep = (r: StoredRR) =>
        u.type === 'ANY' ? isApex && (r.type === 'SOA' || r.type === 'NS') : r.type !== u.type || (isApex && (r.type === 'SOA' || r.type === 'NS'));
      const kept = recs.filter(keep);
      recs.splice(0, recs.length, ...kept);
    } else {
      if (u.type === 'SOA') continue;
      const key = rrKey({ type: u.type, data: u.data });
      const i = recs.findIndex((r) => rrKey(r) === key);
      if (i < 0) continue;
      if (isApex && u.type === 'NS' && recs.filter((r) => r.type === 'NS').length === 1) continue;
      recs.splice(i, 1);
    }
  }

  // Diff: a TTL change is a delete plus an add.
  const changes: Change[] = [];
  const adds: Change[] = [];
  const full = (r: StoredRR) => `${rrKey(r)}/${r.ttl}`;
  for (const [name, before] of original) {
    const after = work.get(name)!;
    const afterKeys = new Set(after.map(full));
    const beforeKeys = new Set(before.map(full));
    for (const r of before) if (!afterKeys.has(full(r))) changes.push({ op: 'delete', name, type: r.type, ttl: r.ttl, data: r.data });
    for (const r of after) if (!beforeKeys.has(full(r))) adds.push({ op: 'add', name, type: r.type, ttl: r.ttl, data: r.data });
  }
  changes.push(...adds);

  // §3.6: bump the serial when something changed and the update did not set it itself.
  if (changes.length > 0 && !soaTouched && opts.bumpSerial !== false) {
    const soa = (work.get(zone) ?? store.records(zone)).find((r) => r.type === 'SOA');
    if (soa) {
      const data = soa.data as { serial?: number };
      const next = { ...(soa.data as object), serial: (((data.serial ?? 0) + 1) >>> 0) || 1 };
      changes.push({ op: 'delete', name: zone, type: 'SOA', ttl: soa.ttl, data: soa.data });
      changes.push({ op: 'add', name: zone, type: 'SOA', ttl: soa.ttl, data: next });
    }
  }
  return { rcode: 'NOERROR', zone, changes };
}

/** Applies changes to a plain array of records (for in-memory stores and tests). */
export function applyChanges(records: StoredRR[], changes: readonly Change[]): StoredRR[] {
  let out = records.slice();
  for (const c of changes) {
    if (c.op === 'delete') {
      const key = `${c.name}|${rrKey(c)}|${c.ttl}`;
      const i = out.findIndex((r) => `${r.name}|${rrKey(r)}|${r.ttl}` === key);
      if (i >= 0) out = [...out.slice(0, i), ...out.slice(i + 1)];
    } else {
      out.push({ name: c.name, type: c.type, ttl: c.ttl, data: c.data });
    }
  }
  return out;
}

/** An UpdateStore over a plain array (one or more zones), for tests and small setups. */
export function memoryStore(zones: string[], records: () => readonly StoredRR[]): UpdateStore {
  return {
    hasZone: (apex) => zones.includes(apex),
    records: (name) => records().filter((r) => r.name === name),
  };
}

export type { UpdateRR };
