/**
 * One opened repository + branch of the versioned store: the state every operation
 * (read.ts, commit.ts, history.ts, watch.ts) shares — its real path, the ref, the limits,
 * a tree cache over isomorphic-git, and the watchers shared by every Store over the same
 * branch in this process.
 */
import * as fs from 'node:fs';
import * as git from 'isomorphic-git';
import { privateGitFs as durableGitFs } from '../git/private-fs.ts';
import { NotFoundError, StoreError } from './errors.ts';
import type { PathLimits } from './paths.ts';
import type { TreeEntry, TreeIO } from './trees.ts';
import type { Change } from './trees.ts';
import type { FileLockOptions } from './lock.ts';

export interface Author {
  name: string;
  email: string;
}

export interface StoreLimits extends PathLimits {
  /** Largest file content, bytes (default 8 MiB). */
  maxFileBytes: number;
  /** Largest repository on disk, bytes (default 256 MiB): writes past it are refused. */
  maxRepoBytes: number;
  /** Files changed by one writeMany (default 1000). */
  maxChanges: number;
  /** Commit message, bytes (default 4096). */
  maxMessageBytes: number;
}

export interface HistoryEntry {
  commit: string;
  parents: string[];
  message: string;
  author: Author;
  /** Author time, ISO 8601 UTC. */
  time: string;
  changes?: Change[];
}

/** State shared by every Store over the same repository and branch in this process. */
export interface Shared {
  watchers: Set<(e: HistoryEntry) => void>;
  lastHead: string | undefined;
  lastHeadKnown: boolean;
  emitting: Promise<void>;
  timer?: ReturnType<typeof setInterval>;
  repoBytes?: { bytes: number; at: number };
  cache: object; // isomorphic-git's pack cache
}
const shared = new Map<string, Shared>();

export function sharedFor(key: string): Shared {
  let s = shared.get(key);
  if (!s) {
    s = { watchers: new Set(), lastHead: undefined, lastHeadKnown: false, emitting: Promise.resolve(), cache: {} };
    shared.set(key, s);
  }
  return s;
}

export interface Repo {
  /** The repository's real path. */
  real: string;
  branch: string;
  /** refs/heads/<branch> */
  ref: string;
  /** Mutex key: `<real>#<branch>` (receive-pack's withRefLocks uses the same). */
  key: string;
  lockFile: string;
  lock?: FileLockOptions;
  limits: StoreLimits;
  now: () => number;
  defaultAuthor: Author;
  pollMs: number;
  S: Shared;
  io: TreeIO;
}

/** A tree cache (trees are immutable: by oid, bounded) over isomorphic-git. */
export function treeIO(real: string, S: Shared): TreeIO {
  const treeCache = new Map<string, TreeEntry[]>();
  return {
    async readTree(oid) {
      const hit = treeCache.get(oid);
      if (hit) return hit;
      const { tree } = await git.readTree({ fs, gitdir: real, oid, cache: S.cache });
      const entries = tree.map((e) => ({ mode: e.mode, path: e.path, oid: e.oid, type: e.type }) as TreeEntry);
      if (treeCache.size > 5000) treeCache.delete(treeCache.keys().next().value!);
      treeCache.set(oid, entries);
      return entries;
    },
    async writeTree(entries) {
      return git.writeTree({ fs: durableGitFs, gitdir: real, tree: entries });
    },
  };
}

export async function headOf(r: Repo): Promise<string | undefined> {
  try {
    return await git.resolveRef({ fs, gitdir: r.real, ref: r.ref });
  } catch (err) {
    if ((err as { code?: string }).code === 'NotFoundError') return undefined;
    throw err;
  }
}

/** `oid` if it names a commit in this repository; NotFoundError otherwise. */
export async function commitOid(r: Repo, oid: string): Promise<string> {
  if (typeof oid !== 'string' || !/^[0-9a-f]{40}$/.test(oid)) throw new StoreError('bad-commit', 400, 'a commit id is 40 hex digits');
  try {
    await git.readCommit({ fs, gitdir: r.real, oid, cache: r.S.cache });
    return oid;
  } catch {
    throw new NotFoundError(`the commit ${oid}`, 'take a commit id from the history');
  }
}

export async function treeOf(r: Repo, commit: string | undefined): Promise<string | undefined> {
  if (!commit) return undefined;
  const { commit: c } = await git.readCommit({ fs, gitdir: r.real, oid: commit, cache: r.S.cache });
  return c.tree;
}

/** The entry at `segs` inside tree `tree` ([] = the tree itself, as a tree entry). */
export async function entryAt(r: Repo, tree: string | undefined, segs: string[]): Promise<TreeEntry | undefined> {
  if (!tree) return undefined;
  let cur: TreeEntry = { mode: '040000', path: '', oid: tree, type: 'tree' };
  for (const seg of segs) {
    if (cur.type !== 'tree') return undefined;
    const next = (await r.io.readTree(cur.oid)).find((e) => e.path === seg);
    if (!next) return undefined;
    cur = next;
  }
  return cur;
}
