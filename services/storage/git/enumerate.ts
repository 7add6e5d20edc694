// Which objects a fetch must send: commits reachable from the wants but not from
// what the client already has, cut at --depth, plus the trees/blobs those commits
// introduce. Mirrors the rev-list --objects walk of gitprotocol-pack(5) "Packfile
// Negotiation" and the shallow rules of gitprotocol-v2(5) "fetch" (shallow-info).
import { OID_RE, parseCommit, parseTag, parseTree, readRaw, type Store } from './objects.ts';

export interface EnumerateInput {
  wants: string[];
  commonHaves: string[]; // haves we have (commits or any object)
  clientShallows: string[]; // commits the client has without their parents
  depth: number; // 0 = unlimited
  includeTags?: { oid: string; peeled?: string }[]; // tag refs for include-tag
}

export interface EnumerateResult {
  oids: string[];
  shallow: string[]; // new shallow boundary to tell the client
  unshallow: string[];
}

/** Commits the client has: reachable from its haves, not past its shallow commits. */
async function haveClosure(s: Store, haves: string[], clientShallows: Set<string>): Promise<Set<string>> {
  const seen = new Set<string>();
  const queue: string[] = [];
  for (const h of haves) {
    const { type, body } = await readRaw(s, h).catch(() => ({ type: 'missing', body: Buffer.alloc(0) }) as const);
    if (type === 'commit') queue.push(h);
    else if (type === 'tag') {
      try {
        queue.push(parseTag(body).object);
      } catch {
        /* ignore a malformed have */
      }
    }
  }
  while (queue.length) {
    const oid = queue.pop()!;
    if (seen.has(oid)) continue;
    let r;
    try {
      r = await readRaw(s, oid);
    } catch {
      continue;
    }
    if (r.type !== 'commit') continue;
    seen.add(oid);
    if (clientShallows.has(oid)) continue;
    for (const p of parseCommit(r.body).parents) if (!seen.has(p)) queue.push(p);
  }
  return seen;
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
  const have = await haveClosure(s, input.commonHaves, clientShallows);
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

  // Depth cut and shallow/unshallow lines depend on the wants and depth only, not
  // on the haves: fetch-pack takes them from the first stateless round.
  const info = input.depth > 0 ? await shallowInfo(s, starts, input.depth, clientShallows) : null;
  const unshallowSet = new Set(info?.unshallow ?? []);

  const queued = new Set<string>(starts);
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
      if (info && (info.depthOf.get(oid) ?? input.depth) >= input.depth) continue;
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
): Promise<{ shallow: string[]; unshallow: string[]; depthOf: Map<string, number> }> {
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
  return { shallow, unshallow, depthOf };
}
