// Object-store access over isomorphic-git's public API, plus tiny parsers of the
// raw commit/tree/tag formats (gitformat-* / Documentation/technical: object formats)
// so graph walks don't pay for isomorphic-git's full parse.
import './native-zlib.ts';
import * as git from 'isomorphic-git';
import { requestFs } from './store-fs.ts';
import { PackSet } from './pack-reuse.ts';

export type ObjectType = 'commit' | 'tree' | 'blob' | 'tag';

export interface Store {
  gitdir: string;
  /** isomorphic-git cache object: one per request keeps pack indexes loaded. */
  cache: object;
  /** File-system client with per-request listings (see store-fs.ts). */
  fs: ReturnType<typeof requestFs>;
  /** The repository's packs, opened on first use (objects read without isomorphic-git). */
  packs?: Promise<PackSet>;
  /** Commits and trees already read in this request: walks read them twice. */
  memo: Map<string, { type: ObjectType; body: Buffer }>;
  memoBytes: number;
}

const MEMO_LIMIT = 32 * 1024 * 1024;

export function openStore(gitdir: string): Store {
  return { gitdir, cache: {}, fs: requestFs(), memo: new Map(), memoBytes: 0 };
}

/** Forget listings after objects were added (a new pack), keeping loaded indexes. */
export function refreshStore(s: Store): void {
  s.fs = requestFs();
  const old = s.packs;
  s.packs = undefined;
  void old?.then((p) => p.close(), () => {});
}

/** Close what the request opened (the pack files). */
export async function closeStore(s: Store): Promise<void> {
  const old = s.packs;
  s.packs = undefined;
  await old?.then((p) => p.close(), () => {});
}

/**
 * Forget the bodies this request has read (the memo and the packs' delta-base cache): once
 * a clone's walk is done, its pack is copied from the stored entries as they are, and the
 * walk's commits and trees (tens of thousands of small Buffers) would otherwise stay live
 * through the whole transfer, raising storage's peak (bench/storage, issue 16).
 */
export async function forgetBodies(s: Store): Promise<void> {
  s.memo.clear();
  s.memoBytes = 0;
  (await s.packs?.catch(() => undefined))?.forgetBodies();
}

export const packsOf = (s: Store): Promise<PackSet> => (s.packs ??= PackSet.open(s.gitdir));

export const ZERO_OID = '0'.repeat(40);
export const OID_RE = /^[0-9a-f]{40}$/;

/** Keep a commit, tree or tag of this request in memory (within the memo's budget). */
export function rememberObject(s: Store, oid: string, o: { type: ObjectType; body: Buffer }): void {
  if ((o.type === 'commit' || o.type === 'tree' || o.type === 'tag') && !s.memo.has(oid) && s.memoBytes + o.body.length < MEMO_LIMIT) {
    s.memo.set(oid, o);
    s.memoBytes += o.body.length;
  }
}

export async function readRaw(s: Store, oid: string): Promise<{ type: ObjectType; body: Buffer }> {
  const hit = s.memo.get(oid);
  if (hit) return hit;
  const packed = await (await packsOf(s)).read(oid);
  if (packed) {
    rememberObject(s, oid, packed);
    return packed;
  }
  const r = await git.readObject({ fs: s.fs, gitdir: s.gitdir, oid, format: 'content', cache: s.cache });
  const u8 = r.object as Uint8Array;
  const o = { type: r.type as ObjectType, body: Buffer.from(u8.buffer, u8.byteOffset, u8.byteLength) };
  rememberObject(s, oid, o);
  return o;
}

export async function hasObject(s: Store, oid: string): Promise<boolean> {
  try {
    if (s.memo.has(oid)) return true;
    // Packed objects from the pack indexes (isomorphic-git would load the whole pack).
    if ((await packsOf(s)).has(oid)) return true;
    await git.readObject({ fs: s.fs, gitdir: s.gitdir, oid, format: 'deflated', cache: s.cache });
    return true;
  } catch {
    return false;
  }
}

export async function typeOf(s: Store, oid: string): Promise<ObjectType | null> {
  try {
    const hit = s.memo.get(oid);
    if (hit) return hit.type;
    const packed = await (await packsOf(s)).typeOf(oid);
    if (packed) return packed;
    return (await readRaw(s, oid)).type;
  } catch {
    return null;
  }
}

export function parseCommit(body: Buffer): { tree: string; parents: string[]; time: number } {
  let tree = '';
  let time = 0;
  const parents: string[] = [];
  let start = 0;
  while (start < body.length) {
    let end = body.indexOf(0x0a, start);
    if (end < 0) end = body.length;
    if (end === start) break; // blank line: headers done
    const line = body.toString('latin1', start, end);
    if (line.startsWith('tree ')) tree = line.slice(5);
    else if (line.startsWith('parent ')) parents.push(line.slice(7));
    else if (line.startsWith('committer ')) {
      const m = /> (\d+) [+-]\d{4}$/.exec(line);
      if (m) time = Number(m[1]);
    }
    start = end + 1;
  }
  if (!OID_RE.test(tree)) throw new Error('malformed commit: no tree');
  return { tree, parents, time };
}

export function parseTag(body: Buffer): { object: string; type: string } {
  const text = body.toString('latin1', 0, Math.min(body.length, 512));
  const m = /^object ([0-9a-f]{40})\ntype (\w+)\n/.exec(text);
  if (!m) throw new Error('malformed tag');
  return { object: m[1], type: m[2] };
}

export interface TreeEntry {
  mode: string;
  oid: string;
}

export function parseTree(body: Buffer): TreeEntry[] {
  const out: TreeEntry[] = [];
  let i = 0;
  while (i < body.length) {
    const sp = body.indexOf(0x20, i);
    const nul = body.indexOf(0, sp);
    if (sp < 0 || nul < 0 || nul + 21 > body.length) throw new Error('malformed tree');
    const mode = body.toString('latin1', i, sp);
    const oid = body.toString('hex', nul + 1, nul + 21);
    out.push({ mode, oid });
    i = nul + 21;
  }
  return out;
}

/** Follows annotated tags down to the first non-tag object. */
export async function peel(s: Store, oid: string): Promise<{ oid: string; type: ObjectType }> {
  for (let i = 0; i < 16; i++) {
    const { type, body } = await readRaw(s, oid);
    if (type !== 'tag') return { oid, type };
    oid = parseTag(body).object;
  }
  throw new Error('tag chain too long');
}
