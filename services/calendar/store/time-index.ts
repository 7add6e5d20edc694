/**
 * Which items of a calendar may have an instance in a time range, without looking at
 * each: items whose whole span (first start to last end, from the index) is under a
 * month sit in an array sorted by start, found by binary search; the rest (recurring,
 * unbounded, undated) are few and always checked. Built once per collection version
 * (its last commit) and kept beside the collection.
 */
import type { Collection } from './repository.ts';

const LONG_MS = 31 * 86_400_000;

interface TimeIndex {
  version: string;
  size: number;
  starts: Float64Array;
  names: string[];
  long: string[];
}

const cache = new WeakMap<Collection, TimeIndex>();

function build(coll: Collection): TimeIndex {
  const short: Array<[number, string]> = [];
  const long: string[] = [];
  for (const [name, i] of coll.items) {
    const s = i.minStart ?? -Infinity;
    const e = i.maxEnd ?? Infinity;
    if (Number.isFinite(s) && Number.isFinite(e) && e - s <= LONG_MS) short.push([s, name]);
    else long.push(name);
  }
  short.sort((a, b) => a[0] - b[0]);
  return { version: coll.lastCommit, size: coll.items.size, starts: Float64Array.from(short, (x) => x[0]), names: short.map((x) => x[1]), long };
}

/** Names of the items that may overlap [from, to) (a superset; the caller checks each). */
export function* timeCandidates(coll: Collection, from: number, to: number): Generator<string> {
  let ti = cache.get(coll);
  if (!ti || ti.version !== coll.lastCommit || ti.size !== coll.items.size) {
    ti = build(coll);
    cache.set(coll, ti);
  }
  // A short item overlaps only if it starts after from - LONG_MS and before to.
  const lo = from - LONG_MS;
  let a = 0;
  let b = ti.starts.length;
  while (a < b) {
    const m = (a + b) >> 1;
    if (ti.starts[m]! < lo) a = m + 1;
    else b = m;
  }
  for (let k = a; k < ti.starts.length && ti.starts[k]! < to; k++) yield ti.names[k]!;
  yield* ti.long;
}
