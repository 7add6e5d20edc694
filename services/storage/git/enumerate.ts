// Which objects a fetch must send: commits reachable from the wants but not from
// what the client already has, cut at --depth, plus the trees/blobs those commits
// introduce. Mirrors the rev-list --objects walk of gitprotocol-pack(5) "Packfile
// Negotiation" and the shallow rules of gitprotocol-v2(5) "fetch" (shallow-info).
import { OID_RE, parseCommit, parseTag, parseTree, readRaw, type Store } from './objects.ts';
import { memoryCheckpoint } from '../../../platform/memory-governor.ts';

export interface EnumerateInput {
  wants: string[];
  commonHaves: string[]; // haves we have (commits or any object)
  clientShallows: string[]; // commits the client has without their parents
  depth: number; // 0 = unlimited
  /** deepen-relative: `depth` counts from the client's shallow commits, not the wants. */
  relative?: boolean;
  includeTags?: { oid: string; peeled?: string }[]; // tag refs for include-tag
}

export interface EnumerateResult {
  oids: string[];
  shallow: string[]; // new shallow boundary to tell the client
  unshallow: string[];
}

/**
 * Commits the client has, as far as this fetch needs to know: reachable from its haves
 * (not past its shallow commits). Walked newest-first together with the wants, as
 * git's revision walk does, and stopped once every commit still queued is one the
 * client has — so an incremental fetch reads the recent history, not all of it.
 * Stopping early can only leave a commit unmarked (sent again), never wrongly marked.
 */
async function haveClosure(s: Store, wants: string[], haves: string[], clientShallows: Set<string>): Promise<Set<string>> {
  const have = new Set<string>();
  if (haves.length === 0) return have;
  type State = 'i-queued' | 'i-done' | 'u-queued' | 'u-done';
  const heap = new CommitHeap();
  const state = new Map<string, State>();
  let interestingQueued = 0;
  const push = async (oid: string, uninteresting: boolean): Promise<void> => {
    const st = state.get(oid);
    if (uninteresting ? st === 'u-queued' || st === 'u-done' : st !== undefined) return;
    let r;
    try {
      r = await readRaw(s, oid);
    } catch {
      return; // a have we lack, or a missing parent: nothing to walk
    }
    if (r.type === 'tag') {
      let target: string;
      try {
        target = parseTag(r.body).object;
      } catch {
        return;
      }
      return push(target, uninteresting);
    }
    if (r.type !== 'commit') return;
    if (st === 'i-queued') interestingQueued--; // its heap entry goes stale
    state.set(oid, uninteresting ? 'u-queued' : 'i-queued');
    if (!uninteresting) interestingQueued++;
    heap.push({ oid, time: parseCommit(r.body).time, uninteresting });
  };
  for (const h of haves) await push(h, true);
  for (const w of wants) await push(w, false);
  while (heap.size && interestingQueued > 0) {
    const e = heap.pop()!;
    if (state.get(e.oid) !== (e.uninteresting ? 'u-queued' : 'i-queued')) continue; // stale entry
    const { parents } = parseCommit((await readRaw(s, e.oid)).body);
    if (e.uninteresting) {
      state.set(e.oid, 'u-done');
      if (clientShallows.has(e.oid)) continue;
      for (const p of parents) await push(p, true);
    } else {
      state.set(e.oid, 'i-done');
      interestingQueued--;
      for (const p of parents) await push(p, false);
    }
  }
  for (const [oid, st] of state) if (st === 'u-queued' || st === 'u-done') have.add(oid);
  return have;
}

/** Max-heap on commit time: newest first. */
class CommitHeap {
  private a: { oid: string; time: number; uninteresting: boolean }[] = [];
  get size(): number {
    return this.a.length;
  }
  push(e: { oid: string; time: number; uninteresting: boolean }): void {
    const a = this.a;
    a.push(e);
    let i = a.length - 1;
    while (i > 0) {
      const p = (i - 1) >> 1;
      if (a[p].time >= a[i].time) break;
      [a[p], a[i]] = [a[i], a[p]];
      i = p;
    }
  }
  pop(): { oid: string; time: number; uninteresting: boolean } | undefined {
    const a = this.a;
    if (a.length === 0) return undefined;
    const top = a[0];
    const last = a.pop()!;
    if (a.length) {
      a[0] = last;
      let i = 0;
      for (;;) {
        const l = 2 * i + 1;
        const r = l + 1;
        let m = i;
        if (l < a.length && a[l].time > a[m].time) m = l;
        if (r < a.length && a[r].time > a[m].time) m = r;
        if (m === i) break;
        [a[m], a[i]] = [a[i], a[m]];
        i = m;
      }
    }
    return top;
  }
}

/** Every tree and blob reachable from `tree`, added to `into` (subtrees already there are skipped). */
async function markTree(s: Store, tree: string, into: Set<string>): Promise<void> {
  if (into.has(tree)) return;
  into.add(tree);
  const { body } = await readRaw(s, tree);
  for (const e of parseTree(body)) {
    if (e.mode === '160000') continue; // gitlink: the commit lives in another repository
    if (e.mode === '40000' || e.mode === '040000') await markTree(s, e.oid, into);
    else into.add(e.oid);
  }
}

async function addTree(s: Store, tree: string, excluded: Set<string>, sent: Set<string>, out: string[]): Promise<void> {
  if (excluded.has(tree) || sent.has(tree)) return;
  sent.add(tree);
  out.push(tree);
  memoryCheckpoint();
  const { body } = await readRaw(s, tree);
  for (const e of parseTree(body)) {
    if (e.mode === '160000') continue;
    if (e.mode === '40000' || e.mode === '040000') await addTree(s, e.oid, excluded, sent, out);
    else if (!excluded.has(e.oid) && !sent.has(e.oid)) {
      sent.add(e.oid);
      out.push(e.oid);
    }
  }
}

export async function enumerateObjects(s: Store, input: EnumerateInput): Promise<EnumerateResult> {
  const clientShallows = new Set(input.clientShallows);
  const sent = new Set<string>();
  const out: string[] = [];
  const trees: string[] = [];
  const boundary = new Set<string>();

  // Resolve wants: tags are sent and peeled; commits start the walk.
  const starts: string[] = [];
  for (const w of input.wants) {
    let oid = w;
    for (let i = 0; i < 16; i++) {
      const { type, body } = await readRaw(s, oid);
      if (type === 'tag') {
        if (!sent.has(oid)) { sent.add(oid); out.push(oid); }
        oid = parseTag(body).object;
        continue;
      }
      if (type === 'commit') starts.push(oid);
      else if (type === 'tree') trees.push(oid);
      else if (!sent.has(oid)) { sent.add(oid); out.push(oid); }
      break;
    }
  }

  const have = await haveClosure(s, starts, input.commonHaves, clientShallows);

  // Depth cut and shallow/unshallow lines depend on the wants and depth only, not
  // on the haves: fetch-pack takes them from the first stateless round.
  const info = input.depth > 0 ? await shallowInfo(s, starts, input.depth, clientShallows, input.relative) : null;
  const unshallowSet = new Set(info?.unshallow ?? []);

  // Unshallowed commits start the walk too: the client has them (so a walk from the
  // wants may stop above them), but not their parents.
  const queued = new Set<string>([...starts, ...unshallowSet]);
  let queue = [...queued];
  while (queue.length) {
    const next: string[] = [];
    for (const oid of queue) {
      const clientHas = have.has(oid);
      if (clientHas && !unshallowSet.has(oid)) {
        boundary.add(oid);
        continue;
      }
      const { body } = await readRaw(s, oid);
      const c = parseCommit(body);
      if (!clientHas) {
        sent.add(oid);
        out.push(oid);
        trees.push(c.tree);
      }
      // Commits the depth walk never met (deepen-relative: above the old boundary) go on down.
      const d = info?.depthOf.get(oid);
      if (info && d !== undefined && d >= info.limit) continue;
      for (const p of c.parents) {
        if (queued.has(p)) continue;
        queued.add(p);
        next.push(p);
      }
    }
    queue = next;
  }

  // Trees/blobs the client has: those of the commits where our walk stopped.
  const excluded = new Set<string>();
  for (const b of boundary) {
    const { body } = await readRaw(s, b);
    await markTree(s, parseCommit(body).tree, excluded);
  }
  for (const t of trees) await addTree(s, t, excluded, sent, out);

  // include-tag: annotated tags whose target is in the pack ride along.
  for (const t of input.includeTags ?? []) {
    if (!t.peeled || sent.has(t.oid) || !OID_RE.test(t.oid)) continue;
    if (sent.has(t.peeled)) {
      sent.add(t.oid);
      out.push(t.oid);
    }
  }
  return { oids: out, shallow: info?.shallow ?? [], unshallow: info?.unshallow ?? [] };
}

/** Peels wanted tags down to commits (non-commits are dropped). */
export async function wantedCommits(s: Store, wants: string[]): Promise<string[]> {
  const out: string[] = [];
  for (let oid of wants) {
    for (let i = 0; i < 16; i++) {
      const { type, body } = await readRaw(s, oid);
      if (type === 'tag') { oid = parseTag(body).object; continue; }
      if (type === 'commit') out.push(oid);
      break;
    }
  }
  return out;
}

/**
 * The shallow boundary for `deepen depth` (gitprotocol-pack(5) "Shallow Clones"):
 * commits at exactly `depth` that have parents become shallow; the client's shallow
 * commits found above that depth become unshallow.
 */
export async function shallowInfo(
  s: Store,
  startCommits: string[],
  depth: number,
  clientShallows: Set<string>,
  relative = false,
): Promise<{ shallow: string[]; unshallow: string[]; depthOf: Map<string, number>; limit: number }> {
  // deepen-relative: the walk starts at the client's shallow commits, one deeper
  // (as upload-pack.c does with get_shallow_commits(..., depth + 1)).
  if (relative) {
    startCommits = [...clientShallows];
    depth = depth + 1;
  }
  const depthOf = new Map<string, number>();
  const shallow: string[] = [];
  const unshallow: string[] = [];
  let queue: string[] = [];
  for (const c of startCommits) if (!depthOf.has(c)) { depthOf.set(c, 1); queue.push(c); }
  while (queue.length) {
    const next: string[] = [];
    for (const oid of queue) {
      const d = depthOf.get(oid)!;
      const { body } = await readRaw(s, oid);
      const parents = parseCommit(body).parents;
      if (d >= depth) {
        if (parents.length && !clientShallows.has(oid)) shallow.push(oid);
        continue;
      }
      if (clientShallows.has(oid) && parents.length) unshallow.push(oid);
      for (const p of parents) {
        if (depthOf.has(p)) continue;
        depthOf.set(p, d + 1);
        next.push(p);
      }
    }
    queue = next;
  }
  return { shallow, unshallow, depthOf, limit: depth };
}
