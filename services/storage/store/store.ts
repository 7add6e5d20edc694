/**
 * The versioned store: files kept in one branch of a bare git repository, Irmin-style.
 * Every write is a commit whose parent is the branch head, so history, diff and rollback
 * come from git, and the owner can `git clone` the data.
 *
 * - Trees are rewritten only along the changed paths (trees.ts); no working tree, no index.
 * - Writers are serialised by a per-repository mutex in the process and by git's lock file
 *   `refs/heads/<branch>.lock` across processes (lock.ts); the ref is re-read just before it
 *   moves (compare-and-swap), and `expectedHead` / `expectedBlob` let callers ask for CAS.
 * - Durability: every object and the ref go through platform/durable-fs.ts (temp file,
 *   O_DSYNC, rename), objects before the ref, all before `write` resolves. A crash leaves
 *   the branch at the old or the new commit, never a torn one.
 * - History follows the first parent (a merge pushed with git counts as one change against
 *   its first parent, like `git log --first-parent`).
 * - `list(prefix)` is recursive by default: files only, full paths; `{ recursive: false }`
 *   gives one level, with folders as `type: 'tree'` entries.
 * Only isomorphic-git's public API touches the repository.
 */
import * as fs from 'node:fs';
import { promises as fsp } from 'node:fs';
import * as path from 'node:path';
import * as git from 'isomorphic-git';
import { durableGitFs } from '../../../platform/durable-fs.ts';
import { ConflictError, LimitError, NotFoundError, StoreError } from './errors.ts';
import { withFileLock, withMutex, type FileLockOptions } from './lock.ts';
import { DEFAULT_PATH_LIMITS, validatePath, validatePrefix, type PathLimits } from './paths.ts';
import { applyChanges, diffTrees, type Change, type FileChange, type TreeEntry, type TreeIO } from './trees.ts';
import { diskBytes, removeDeadTemps } from './cleanup.ts';

export type { Change } from './trees.ts';

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

export const DEFAULT_LIMITS: StoreLimits = {
  ...DEFAULT_PATH_LIMITS,
  maxFileBytes: 8 * 1024 * 1024,
  maxRepoBytes: 256 * 1024 * 1024,
  maxChanges: 1000,
  maxMessageBytes: 4096,
};

export interface StoreOptions {
  /** The bare repository, e.g. `<root>/calendar.git`. */
  dir: string;
  /** Branch the store reads and writes (default 'main'); one plain name, no '/'. */
  branch?: string;
  /** Clock in ms since the epoch, for commit times (default Date.now). */
  now?: () => number;
  /** Default commit author (default kith <kith@localhost>). */
  author?: Author;
  /** Create the bare repository when it does not exist (default false: NotFoundError). */
  create?: boolean;
  limits?: Partial<StoreLimits>;
  lock?: FileLockOptions;
  /** While someone watches, look for commits made by others (git push, other processes) this often (default 1000 ms; 0 = never). */
  pollMs?: number;
}

export interface WriteOptions {
  /** CAS on the branch: the head must be this commit (null: the branch must not exist yet). */
  expectedHead?: string | null;
  /** CAS on the file: its blob must be this oid (null: the file must not exist). */
  expectedBlob?: string | null;
  message?: string;
  author?: Author;
}

export interface ManyChange {
  path: string;
  /** New content, or null to delete the file. */
  content: Uint8Array | string | null;
  expectedBlob?: string | null;
}

export interface ReadResult {
  content: Uint8Array;
  /** The branch head the file was read at. */
  commit: string;
  blob: string;
}

export interface WriteResult {
  /** The new branch head (the old one when nothing changed). */
  commit: string;
  /** False when the content was already there: no commit was made. */
  changed: boolean;
  /** Blob oid of each written path (deleted paths are absent). */
  blobs: Record<string, string>;
  /** Written paths that did not exist before. */
  created: string[];
}

export interface ListEntry {
  path: string;
  blob: string;
  mode: string;
  type: 'blob' | 'tree' | 'commit';
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

export interface HistoryOptions {
  /** Most entries returned (default 50, at most 1000). */
  limit?: number;
  /** Include the changed files of each commit (default true). */
  changes?: boolean;
}

export interface Store {
  readonly dir: string;
  readonly branch: string;
  readonly limits: StoreLimits;
  /** The branch head, or undefined while the branch has no commit. */
  head(): Promise<string | undefined>;
  /** The file at the head (or at commit `at`); undefined when absent or a folder. */
  read(path: string, opts?: { at?: string }): Promise<ReadResult | undefined>;
  write(path: string, content: Uint8Array | string, opts?: WriteOptions): Promise<WriteResult>;
  delete(path: string, opts?: WriteOptions): Promise<WriteResult>;
  writeMany(changes: ManyChange[], opts?: Omit<WriteOptions, 'expectedBlob'>): Promise<WriteResult>;
  list(prefix?: string, opts?: { recursive?: boolean; at?: string }): Promise<ListEntry[]>;
  history(path?: string, opts?: HistoryOptions): Promise<HistoryEntry[]>;
  /** Commits after `since` up to the head, oldest first (first parent, at most `limit`). */
  commitsSince(since: string | undefined, limit?: number): Promise<{ head: string | undefined; commits: HistoryEntry[]; complete: boolean }>;
  /** Call `onCommit` for every new commit on the branch, oldest first. Returns unsubscribe. */
  watch(onCommit: (entry: HistoryEntry) => void): () => void;
}

/** State shared by every Store over the same repository and branch in this process. */
interface Shared {
  watchers: Set<(e: HistoryEntry) => void>;
  lastHead: string | undefined;
  lastHeadKnown: boolean;
  emitting: Promise<void>;
  timer?: ReturnType<typeof setInterval>;
  repoBytes?: { bytes: number; at: number };
  cache: object; // isomorphic-git's pack cache
}
const shared = new Map<string, Shared>();

const BRANCH_RE = /^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$/;
const enc = new TextEncoder();

function sanitizeIdent(s: string, fallback: string): string {
  // fsck --strict rejects '<', '>' and newlines inside a name or an email.
  const clean = String(s ?? '').replace(/[<>\u0000-\u001f\u007f]/g, '').trim();
  return clean === '' ? fallback : clean.slice(0, 200);
}

function toBytes(content: Uint8Array | string): Uint8Array {
  return typeof content === 'string' ? enc.encode(content) : content;
}

export async function openStore(options: StoreOptions): Promise<Store> {
  const branch = options.branch ?? 'main';
  if (!BRANCH_RE.test(branch) || branch.endsWith('.lock') || branch.includes('..')) {
    throw new StoreError('bad-branch', 400, `bad branch name ${JSON.stringify(branch)}: use letters, digits, '.', '_' or '-'`);
  }
  const limits: StoreLimits = { ...DEFAULT_LIMITS, ...options.limits };
  const now = options.now ?? Date.now;
  const defaultAuthor: Author = options.author ?? { name: 'kith', email: 'kith@localhost' };
  const pollMs = options.pollMs ?? 1000;
  const gitdir = path.resolve(options.dir);
  const ref = `refs/heads/${branch}`;

  const exists = await fsp.stat(path.join(gitdir, 'HEAD')).then(() => true, () => false);
  if (!exists) {
    if (!options.create) throw new NotFoundError(`the repository ${gitdir}`, 'create it first (openStore with create: true)');
    await fsp.mkdir(gitdir, { recursive: true });
    await git.init({ fs: durableGitFs, dir: gitdir, bare: true, defaultBranch: 'main' });
  }
  const real = await fsp.realpath(gitdir);
  const key = `${real}#${branch}`;
  let sh = shared.get(key);
  if (!sh) {
    sh = { watchers: new Set(), lastHead: undefined, lastHeadKnown: false, emitting: Promise.resolve(), cache: {} };
    shared.set(key, sh);
  }
  const S = sh;
  // Dead writers' temp files (a crash between write and rename): cheap, so on every open.
  await removeDeadTemps(real);
  const lockFile = path.join(real, 'refs', 'heads', `${branch}.lock`);

  // Trees are immutable: cache their entries by oid (bounded).
  const treeCache = new Map<string, TreeEntry[]>();
  const io: TreeIO = {
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

  async function head(): Promise<string | undefined> {
    try {
      return await git.resolveRef({ fs, gitdir: real, ref });
    } catch (err) {
      if ((err as { code?: string }).code === 'NotFoundError') return undefined;
      throw err;
    }
  }

  /** `oid` if it names a commit in this repository; NotFoundError otherwise. */
  async function commitOid(oid: string): Promise<string> {
    if (typeof oid !== 'string' || !/^[0-9a-f]{40}$/.test(oid)) throw new StoreError('bad-commit', 400, 'a commit id is 40 hex digits');
    try {
      await git.readCommit({ fs, gitdir: real, oid, cache: S.cache });
      return oid;
    } catch {
      throw new NotFoundError(`the commit ${oid}`, 'take a commit id from the history');
    }
  }

  async function treeOf(commit: string | undefined): Promise<string | undefined> {
    if (!commit) return undefined;
    const { commit: c } = await git.readCommit({ fs, gitdir: real, oid: commit, cache: S.cache });
    return c.tree;
  }

  /** The entry at `segs` inside tree `tree` ([] = the tree itself, as a tree entry). */
  async function entryAt(tree: string | undefined, segs: string[]): Promise<TreeEntry | undefined> {
    if (!tree) return undefined;
    let cur: TreeEntry = { mode: '040000', path: '', oid: tree, type: 'tree' };
    for (const seg of segs) {
      if (cur.type !== 'tree') return undefined;
      const next = (await io.readTree(cur.oid)).find((e) => e.path === seg);
      if (!next) return undefined;
      cur = next;
    }
    return cur;
  }

  async function toEntry(oid: string, parentOid: string | undefined | null, withChanges: boolean, c?: git.CommitObject): Promise<HistoryEntry> {
    const commit = c ?? (await git.readCommit({ fs, gitdir: real, oid, cache: S.cache })).commit;
    const entry: HistoryEntry = {
      commit: oid,
      parents: commit.parent,
      message: commit.message.replace(/\n$/, ''),
      author: { name: commit.author.name, email: commit.author.email },
      time: new Date(commit.author.timestamp * 1000).toISOString(),
    };
    if (withChanges) {
      const parent = parentOid === null ? undefined : (parentOid ?? commit.parent[0]);
      entry.changes = await diffTrees(io, await treeOf(parent), commit.tree);
    }
    return entry;
  }

  async function repoBytes(): Promise<number> {
    const t = Date.now();
    if (!S.repoBytes || t - S.repoBytes.at > 60_000) S.repoBytes = { bytes: await diskBytes(real), at: t };
    return S.repoBytes.bytes;
  }

  function message(opts: WriteOptions | undefined, fallback: string): string {
    const m = (opts?.message ?? fallback).replace(/\r\n?/g, '\n').trim();
    if (m.includes('\u0000')) throw new StoreError('bad-message', 400, 'the commit message contains a NUL byte: remove it');
    const bytes = Buffer.byteLength(m, 'utf8');
    if (bytes > limits.maxMessageBytes) throw new LimitError('maxMessageBytes', limits.maxMessageBytes, bytes, 'the commit message');
    return (m === '' ? fallback : m) + '\n';
  }

  function emit(entry: HistoryEntry) {
    for (const w of [...S.watchers]) {
      try {
        w(entry);
      } catch {
        // a watcher's bug must not break the writer
      }
    }
  }

  /** Tell watchers about commits up to `newHead` (serialised, oldest first). */
  function advance(newHead: string | undefined): Promise<void> {
    S.emitting = S.emitting.then(async () => {
      if (S.watchers.size === 0 || !S.lastHeadKnown) return; // watch() sets the start point
      if (newHead === S.lastHead) return;
      if (newHead) {
        const { commits } = await commitsSince(S.lastHead, 100, newHead).catch(() => ({ commits: [] as HistoryEntry[] }));
        for (const e of commits) emit(e);
      }
      S.lastHead = newHead;
    }).catch(() => {}); // never leave the chain rejected: later links would not run
    return S.emitting;
  }

  async function commitsSince(since: string | undefined, limit = 100, at?: string) {
    const h = at ?? (await head());
    const commits: HistoryEntry[] = [];
    let complete = false;
    let cur = h;
    while (cur && commits.length < limit) {
      if (cur === since) {
        complete = true;
        break;
      }
      const e = await toEntry(cur, undefined, true);
      commits.push(e);
      cur = e.parents[0];
      if (!since && commits.length >= 1) {
        complete = true; // no `since`: just the newest commit
        break;
      }
    }
    if (!cur || cur === since) complete = true;
    return { head: h, commits: commits.reverse(), complete };
  }

  async function commitChanges(items: Array<{ path: string; segs: string[]; bytes: Uint8Array | null; expectedBlob?: string | null }>, opts: WriteOptions | undefined, fallbackMessage: string): Promise<WriteResult> {
    if (items.length === 0) throw new StoreError('empty-change', 400, 'nothing to write: give at least one path');
    if (items.length > limits.maxChanges) throw new LimitError('maxChanges', limits.maxChanges, items.length, 'the number of changed files');
    const msg = message(opts, fallbackMessage);
    const who = opts?.author ?? defaultAuthor;
    const ident = { name: sanitizeIdent(who.name, 'unknown'), email: sanitizeIdent(who.email, 'unknown@localhost') };
    let incoming = 0;
    for (const it of items) {
      if (it.bytes && it.bytes.length > limits.maxFileBytes) throw new LimitError('maxFileBytes', limits.maxFileBytes, it.bytes.length, it.path);
      incoming += it.bytes?.length ?? 0;
    }
    if (incoming > 0) {
      const size = await repoBytes();
      if (size + incoming > limits.maxRepoBytes) throw new LimitError('maxRepoBytes', limits.maxRepoBytes, size + incoming, 'the repository with this write');
    }
    // Blobs first, outside the locks: content-addressed, so harmless if the commit fails.
    const blobs: Record<string, string> = {};
    const changes: FileChange[] = [];
    for (const it of items) {
      let blob: string | null = null;
      if (it.bytes) blob = blobs[it.path] = await git.writeBlob({ fs: durableGitFs, gitdir: real, blob: it.bytes });
      changes.push({ segs: it.segs, blob });
    }
    if (S.repoBytes) S.repoBytes.bytes += incoming;

    return withMutex(key, () =>
      withFileLock(
        lockFile,
        async () => {
          const base = await head();
          if (opts?.expectedHead !== undefined && (opts.expectedHead ?? undefined) !== base) {
            throw new ConflictError(opts.expectedHead, base ?? null, 'head');
          }
          const baseTree = await treeOf(base);
          const created: string[] = [];
          for (const it of items) {
            const e = await entryAt(baseTree, it.segs);
            const actual = e && e.type !== 'tree' ? e.oid : null;
            if (it.expectedBlob !== undefined && actual !== it.expectedBlob) throw new ConflictError(it.expectedBlob, actual, 'blob', it.path);
            if (it.bytes && !e) created.push(it.path);
          }
          const tree = await applyChanges(io, baseTree, changes);
          if (base && tree === baseTree) return { commit: base, changed: false, blobs, created };
          const t = now();
          const person = { ...ident, timestamp: Math.floor(t / 1000), timezoneOffset: 0 };
          const commit = await git.writeCommit({
            fs: durableGitFs,
            gitdir: real,
            commit: { tree, parent: base ? [base] : [], author: person, committer: person, message: msg },
          });
          // Compare-and-swap: a writer that ignores the lock file may have moved the branch.
          const current = await head();
          if (current !== base) throw new ConflictError(base ?? null, current ?? null, 'head');
          await git.writeRef({ fs: durableGitFs, gitdir: real, ref, value: commit, force: true });
          void advance(commit);
          return { commit, changed: true, blobs, created };
        },
        options.lock,
      ),
    );
  }

  function ensurePolling() {
    if (S.timer || pollMs <= 0 || S.watchers.size === 0) return;
    S.timer = setInterval(() => {
      head().then((h) => advance(h), () => {});
    }, pollMs);
    S.timer.unref?.();
  }

  const store: Store = {
    dir: real,
    branch,
    limits,
    head,

    async read(p, opts = {}) {
      const segs = validatePath(p, limits);
      const h = opts.at === undefined ? await head() : await commitOid(opts.at);
      const e = await entryAt(await treeOf(h), segs);
      if (!h || !e || e.type !== 'blob') return undefined;
      const { blob } = await git.readBlob({ fs, gitdir: real, oid: e.oid, cache: S.cache });
      return { content: blob, commit: h, blob: e.oid };
    },

    async write(p, content, opts) {
      const segs = validatePath(p, limits);
      const bytes = toBytes(content);
      return commitChanges([{ path: p, segs, bytes, expectedBlob: opts?.expectedBlob }], opts, `write ${p}`);
    },

    async delete(p, opts) {
      const segs = validatePath(p, limits);
      return commitChanges([{ path: p, segs, bytes: null, expectedBlob: opts?.expectedBlob }], opts, `delete ${p}`);
    },

    async writeMany(list, opts) {
      if (!Array.isArray(list)) throw new StoreError('bad-change', 400, 'writeMany takes an array of { path, content }');
      const items = list.map((c) => ({
        path: c.path,
        segs: validatePath(c.path, limits),
        bytes: c.content === null ? null : toBytes(c.content),
        expectedBlob: c.expectedBlob,
      }));
      const n = items.length;
      return commitChanges(items, opts, n === 1 ? `${items[0].bytes ? 'write' : 'delete'} ${items[0].path}` : `change ${n} files`);
    },

    async list(prefix = '', opts = {}) {
      const segs = validatePrefix(prefix, limits);
      const root = await treeOf(opts.at === undefined ? await head() : await commitOid(opts.at));
      const at = await entryAt(root, segs);
      if (!at || at.type !== 'tree') return [];
      const out: ListEntry[] = [];
      const base = segs.length ? segs.join('/') + '/' : '';
      const recursive = opts.recursive ?? true;
      const visit = async (oid: string, pre: string) => {
        for (const e of await io.readTree(oid)) {
          if (e.type === 'tree' && recursive) await visit(e.oid, `${pre}${e.path}/`);
          else out.push({ path: pre + e.path, blob: e.oid, mode: e.mode, type: e.type });
        }
      };
      await visit(at.oid, base);
      return out;
    },

    async history(p, opts = {}) {
      const segs = p === undefined || p === '' ? [] : validatePrefix(p, limits);
      const limit = Math.max(1, Math.min(opts.limit ?? 50, 1000));
      const withChanges = opts.changes ?? true;
      const out: HistoryEntry[] = [];
      let cur = await head();
      // With a path filter, look at most 10000 commits back (bounded work per request).
      for (let scanned = 0; cur && out.length < limit && scanned < 10_000; scanned++) {
        const { commit } = await git.readCommit({ fs, gitdir: real, oid: cur, cache: S.cache });
        const parent = commit.parent[0];
        if (segs.length === 0) {
          out.push(await toEntry(cur, parent, withChanges, commit));
        } else {
          const now_ = await entryAt(commit.tree, segs);
          const before = await entryAt(await treeOf(parent), segs);
          if (now_?.oid !== before?.oid) {
            const e = await toEntry(cur, parent, false, commit);
            if (withChanges) {
              const pre = segs.join('/');
              const sub = (x?: TreeEntry) => (x?.type === 'tree' ? x.oid : undefined);
              const changes = await diffTrees(io, sub(before), sub(now_), pre + '/');
              if (before && before.type !== 'tree') changes.push(now_ && now_.type !== 'tree' ? { path: pre, type: 'modify', blob: now_.oid } : { path: pre, type: 'delete', blob: before.oid });
              else if (now_ && now_.type !== 'tree') changes.push({ path: pre, type: 'add', blob: now_.oid });
              e.changes = changes;
            }
            out.push(e);
          }
        }
        cur = parent;
      }
      return out;
    },

    commitsSince(since, limit = 100) {
      return commitsSince(since, limit);
    },

    watch(onCommit) {
      S.watchers.add(onCommit);
      if (!S.lastHeadKnown) {
        // Start from the current head: watchers hear about commits made after they subscribed.
        S.emitting = S.emitting.then(async () => {
          if (S.lastHeadKnown) return;
          S.lastHead = await head().catch(() => undefined);
          S.lastHeadKnown = true;
        }).catch(() => {});
      }
      ensurePolling();
      return () => {
        S.watchers.delete(onCommit);
        if (S.watchers.size === 0 && S.timer) {
          clearInterval(S.timer);
          S.timer = undefined;
          S.lastHeadKnown = false; // nobody tracks the head any more
        }
      };
    },
  };
  return store;
}

/** Create (if needed) and open `<root>/<name>.git`. */
export function openNamedStore(root: string, name: string, options: Omit<StoreOptions, 'dir'> = {}): Promise<Store> {
  return openStore({ ...options, dir: path.join(root, `${name}.git`) });
}

/** Is `dir` a bare repository (has HEAD and objects/)? */
export function isRepository(dir: string): boolean {
  return fs.existsSync(path.join(dir, 'HEAD')) && fs.existsSync(path.join(dir, 'objects'));
}
