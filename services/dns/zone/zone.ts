/**
 * The in-memory zone: RRsets keyed by canonical owner name and type, plus the facts the
 * answer engine needs — which names exist (including empty non-terminals, RFC 4592 §2.2.2),
 * and where the zone is cut by a delegation (RFC 1034 §4.2.1).
 */
import type { Buffer } from 'node:buffer';
import { isAtOrBelow, keyToLabels, parentKey, type Labels } from '../wire/name.ts';
import { TYPE } from '../wire/constants.ts';
import { runSteps, STEP, type Steps } from './steps.ts';

export interface RRset {
  /** Canonical key of the owner. */
  owner: string;
  labels: Labels;
  type: number;
  ttl: number;
  /** Wire RDATA, names uncompressed, duplicates removed (RFC 2181 §5). */
  rdata: Buffer[];
}

/** The lookup structures of a zone, built from its RRsets. */
export interface ZoneIndex {
  nodes: Map<string, Map<number, RRset>>;
  existing: Set<string>;
  cuts: Set<string>;
}

export function* indexSteps(origin: string, rrsets: RRset[]): Steps<ZoneIndex> {
  const nodes = new Map<string, Map<number, RRset>>();
  const existing = new Set([origin]);
  const cuts = new Set<string>();
  let n = 0;
  for (const rs of rrsets) {
    if (++n % STEP === 0) yield;
    let node = nodes.get(rs.owner);
    if (!node) { node = new Map(); nodes.set(rs.owner, node); }
    node.set(rs.type, rs);
    if (rs.type === TYPE.NS && rs.owner !== origin) cuts.add(rs.owner);
    for (let k: string | null = rs.owner; k !== null && k !== origin && isAtOrBelow(k, origin); k = parentKey(k)) {
      existing.add(k);
    }
  }
  return { nodes, existing, cuts };
}

export class Zone {
  readonly origin: string;
  readonly originLabels: Labels;
  readonly nodes: Map<string, Map<number, RRset>>;
  /** Every owner plus every empty non-terminal between an owner and the apex. */
  readonly existing: Set<string>;
  /** Owners of NS RRsets below the apex: zone cuts. */
  readonly cuts: Set<string>;
  readonly soa: RRset;

  /** `index`: made beforehand by indexSteps (in slices, while serving); else made here. */
  constructor(origin: string, rrsets: RRset[], index?: ZoneIndex) {
    this.origin = origin;
    this.originLabels = keyToLabels(origin);
    const ix = index ?? runSteps(indexSteps(origin, rrsets));
    this.nodes = ix.nodes;
    this.existing = ix.existing;
    this.cuts = ix.cuts;
    const soa = this.nodes.get(origin)?.get(TYPE.SOA);
    if (!soa) throw new Error(`zone ${origin} has no SOA (parseZone validates this)`);
    this.soa = soa;
  }

  get(owner: string, type: number): RRset | undefined {
    return this.nodes.get(owner)?.get(type);
  }

  node(owner: string): Map<number, RRset> | undefined {
    return this.nodes.get(owner);
  }

  exists(owner: string): boolean {
    return this.existing.has(owner);
  }

  get serial(): number {
    return this.soa.rdata[0].readUInt32BE(this.soa.rdata[0].length - 20);
  }

  /** RFC 2308 §5: negative answers live min(SOA TTL, SOA MINIMUM). */
  get negativeTtl(): number {
    const min = this.soa.rdata[0].readUInt32BE(this.soa.rdata[0].length - 4);
    return Math.min(this.soa.ttl, min);
  }

  /** All RRsets, apex first, then in key order: the AXFR body. */
  *rrsets(): Generator<RRset> {
    const keys = [...this.nodes.keys()].sort((a, b) => (a === this.origin ? -1 : b === this.origin ? 1 : a < b ? -1 : a > b ? 1 : 0));
    for (const k of keys) for (const rs of this.nodes.get(k)!.values()) yield rs;
  }
}

/**
 * The zones one server answers for. Lookup picks the deepest zone that contains the name,
 * so a parent and a child zone can both be served.
 */
export class ZoneSet {
  private readonly byOrigin: Map<string, Zone>;

  constructor(zones: Iterable<Zone> = []) {
    this.byOrigin = new Map();
    for (const z of zones) this.byOrigin.set(z.origin, z);
  }

  /** The zone containing `key`, or undefined: "not my zone" (the caller may forward). */
  find(key: string): Zone | undefined {
    for (let k: string | null = key; k !== null; k = parentKey(k)) {
      const z = this.byOrigin.get(k);
      if (z) return z;
    }
    return undefined;
  }

  get(origin: string): Zone | undefined {
    return this.byOrigin.get(origin);
  }

  zones(): Zone[] {
    return [...this.byOrigin.values()];
  }
}
