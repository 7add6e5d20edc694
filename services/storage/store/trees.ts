/**
 * Tree surgery without a working tree or an index: apply a set of file changes to a root
 * tree by rewriting only the trees along the changed paths (every other subtree keeps its
 * oid), and diff two trees by descending only where oids differ. Object I/O is injected
 * (`TreeIO`), so this module has no file system of its own.
 */
import { NotFoundError, PathConflictError, PathError } from './errors.ts';

export interface TreeEntry {
  mode: string;
  path: string;
  oid: string;
  type: 'blob' | 'tree' | 'commit';
}

export interface TreeIO {
  readTree(oid: string): Promise<TreeEntry[]>;
  writeTree(entries: TreeEntry[]): Promise<string>;
}

/** A file to set (`blob` = its blob oid) or remove (`blob` = null). */
export interface FileChange {
  segs: string[];
  blob: string | null;
}

export interface Change {
  path: string;
  type: 'add' | 'modify' | 'delete';
  /** The blob after the change (before it, for a delete). */
  blob: string;
}

interface Node {
  leaf?: string | null; // set: this name is a file to write (oid) or delete (null)
  leafSet?: boolean;
  kids?: Map<string, Node>;
}

function buildPlan(changes: FileChange[]): Node {
  const root: Node = { kids: new Map() };
  for (const c of changes) {
    let node = root;
    const full = c.segs.join('/');
    c.segs.forEach((seg, i) => {
      const last = i === c.segs.length - 1;
      if (node.leafSet) throw new PathConflictError(full, `${c.segs.slice(0, i).join('/')} is written as a file in the same change`);
      node.kids ??= new Map();
      let next = node.kids.get(seg);
      if (!next) node.kids.set(seg, (next = {}));
      if (last) {
        if (next.leafSet) throw new PathError(full, 'the same path is listed twice in one change');
        if (next.kids) throw new PathConflictError(full, 'is used as a folder in the same change');
        next.leaf = c.blob;
        next.leafSet = true;
      }
      node = next;
    });
  }
  return root;
}

/** Apply `changes` to the tree `root` (undefined: empty). Returns the new root tree oid. */
export async function applyChanges(io: TreeIO, root: string | undefined, changes: FileChange[]): Promise<string> {
  const plan = buildPlan(changes);
  const oid = await edit(io, root, plan, []);
  return oid ?? (await io.writeTree([]));
}

async function edit(io: TreeIO, treeOid: string | undefined, plan: Node, at: string[]): Promise<string | undefined> {
  const entries = new Map<string, TreeEntry>();
  if (treeOid) for (const e of await io.readTree(treeOid)) entries.set(e.path, e);
  for (const [name, node] of plan.kids ?? []) {
    const here = [...at, name];
    const existing = entries.get(name);
    if (node.leafSet) {
      if (existing?.type === 'tree') throw new PathConflictError(here.join('/'), 'is a folder, not a file');
      if (node.leaf === null) {
        if (!existing) throw new NotFoundError(here.join('/'), 'nothing to delete');
        entries.delete(name);
      } else {
        entries.set(name, { mode: '100644', path: name, oid: node.leaf!, type: 'blob' });
      }
    } else {
      if (existing && existing.type !== 'tree') throw new PathConflictError(here.join('/'), 'is a file, not a folder');
      const sub = await edit(io, existing?.oid, node, here);
      if (sub === undefined) entries.delete(name); // a folder left empty disappears, as in git
      else entries.set(name, { mode: '040000', path: name, oid: sub, type: 'tree' });
    }
  }
  if (entries.size === 0) return undefined;
  return io.writeTree([...entries.values()]);
}

/** Files that differ between two trees (either may be undefined = empty), sorted by path. */
export async function diffTrees(io: TreeIO, a: string | undefined, b: string | undefined, prefix = ''): Promise<Change[]> {
  if (a === b) return [];
  const left = new Map<string, TreeEntry>();
  const right = new Map<string, TreeEntry>();
  if (a) for (const e of await io.readTree(a)) left.set(e.path, e);
  if (b) for (const e of await io.readTree(b)) right.set(e.path, e);
  const out: Change[] = [];
  const names = [...new Set([...left.keys(), ...right.keys()])].sort();
  for (const name of names) {
    const l = left.get(name);
    const r = right.get(name);
    const p = prefix + name;
    if (l && r && l.oid === r.oid && l.type === r.type) continue;
    const lt = l?.type === 'tree' ? l.oid : undefined;
    const rt = r?.type === 'tree' ? r.oid : undefined;
    if (lt || rt) out.push(...(await diffTrees(io, lt, rt, p + '/')));
    if (l && l.type !== 'tree' && r && r.type !== 'tree') out.push({ path: p, type: 'modify', blob: r.oid });
    else {
      if (l && l.type !== 'tree') out.push({ path: p, type: 'delete', blob: l.oid });
      if (r && r.type !== 'tree') out.push({ path: p, type: 'add', blob: r.oid });
    }
  }
  return out;
}
