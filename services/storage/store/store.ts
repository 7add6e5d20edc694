/**
 * The versioned store: files kept in one branch of a bare git repository, Irmin-style.
 * Every write is a commit whose parent is the branch head, so history, diff and rollback
 * come from git, and the owner can `git clone` the data. config.git is a store too, with a
 * validating pre-commit hook (../config/config-repo.ts).
 *
 * `openStore` assembles the operations, one module each:
 * - read.ts-style lookups below (read, list): trees walked along one path, never the whole;
 * - commit.ts: the one compare-and-swap commit (write, delete, writeMany), pre-commit hook;
 * - history.ts: history and commitsSince (first parent, like `git log --first-parent`);
 * - watch.ts: watchers of the branch.
 * Only isomorphic-git's public API touches the repository.
 */
import * as fs from 'node:fs';
import { promises as fsp } from 'node:fs';
import * as path from 'node:path';
import * as git from 'isomorphic-git';
import { privateGitFs as durableGitFs } from '../git/private-fs.ts';
import { NotFoundError, StoreError } from './errors.ts';
import type { FileLockOptions } from './lock.ts';
import { DEFAULT_PATH_LIMITS, validatePath, validatePrefix } from './paths.ts';
import { removeDeadTemps } from './cleanup.ts';
import { commitOid, entryAt, headOf, sharedFor, treeIO, treeOf, type Author, type HistoryEntry, type Repo, type StoreLimits } from './repo.ts';
import { commitChanges, type PreCommit, type WriteOptions, type WriteResult } from './commit.ts';
import { commitsSince, history, type HistoryOptions } from './history.ts';
import { watch } from './watch.ts';

export type { Change } from './trees.ts';
export type { Author, HistoryEntry, StoreLimits } from './repo.ts';
export type { PreCommit, PreCommitInput, WriteOptions, WriteResult } from './commit.ts';
export type { HistoryOptions } from './history.ts';

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
  /** Fixed, or read at each operation (limits from a live config apply to the next write). */
  limits?: Partial<StoreLimits> | (() => Partial<StoreLimits>);
  lock?: FileLockOptions;
  /** While someone watches, look for commits made by others (git push, other processes) this often (default 1000 ms; 0 = never). */
  pollMs?: number;
  /** Runs on each new commit before the ref moves; throwing refuses the write (config.git validates here). */
  preCommit?: PreCommit;
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

export interface ListEntry {
  path: string;
  blob: string;
  mode: string;
  type: 'blob' | 'tree' | 'commit';
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

const BRANCH_RE = /^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$/;
const enc = new TextEncoder();
const toBytes = (content: Uint8Array | string): Uint8Array => (typeof content === 'string' ? enc.encode(content) : content);

export async function openStore(options: StoreOptions): Promise<Store> {
  const branch = options.branch ?? 'main';
  if (!BRANCH_RE.test(branch) || branch.endsWith('.lock') || branch.includes('..')) {
    throw new StoreError('bad-branch', 400, `bad branch name ${JSON.stringify(branch)}: use letters, digits, '.', '_' or '-'`);
  }
  const gitdir = path.resolve(options.dir);
  const exists = await fsp.stat(path.join(gitdir, 'HEAD')).then(() => true, () => false);
  if (!exists) {
    if (!options.create) throw new NotFoundError(`the repository ${gitdir}`, 'create it first (openStore with create: true)');
    await fsp.mkdir(gitdir, { recursive: true, mode: 0o700 });
    await git.init({ fs: durableGitFs, dir: gitdir, bare: true, defaultBranch: 'main' });
  }
  const real = await fsp.realpath(gitdir);
  const key = `${real}#${branch}`;
  const S = sharedFor(key);
  // Dead writers' temp files (a crash between write and rename): cheap, so on every open.
  await removeDeadTemps(real);
  const r: Repo = {
    real,
    branch,
    ref: `refs/heads/${branch}`,
    key,
    lockFile: path.join(real, 'refs', 'heads', `${branch}.lock`),
    lock: options.lock,
    get limits(): StoreLimits {
      return { ...DEFAULT_LIMITS, ...(typeof options.limits === 'function' ? options.limits() : options.limits) };
    },
    now: options.now ?? Date.now,
    defaultAuthor: options.author ?? { name: 'kith', email: 'kith@localhost' },
    pollMs: options.pollMs ?? 1000,
    S,
    io: treeIO(real, S),
  };
  const pre = options.preCommit;
  const at = async (commit: string | undefined) => (commit === undefined ? headOf(r) : commitOid(r, commit));

  return {
    dir: real,
    branch,
    get limits() {
      return r.limits;
    },
    head: () => headOf(r),

    async read(p, opts = {}) {
      const segs = validatePath(p, r.limits);
      const h = await at(opts.at);
      const e = await entryAt(r, await treeOf(r, h), segs);
      if (!h || !e || e.type !== 'blob') return undefined;
      const { blob } = await git.readBlob({ fs, gitdir: real, oid: e.oid, cache: S.cache });
      return { content: blob, commit: h, blob: e.oid };
    },

    async list(prefix = '', opts = {}) {
      const segs = validatePrefix(prefix, r.limits);
      const found = await entryAt(r, await treeOf(r, await at(opts.at)), segs);
      if (!found || found.type !== 'tree') return [];
      const out: ListEntry[] = [];
      const recursive = opts.recursive ?? true;
      const visit = async (oid: string, pre_: string) => {
        for (const e of await r.io.readTree(oid)) {
          if (e.type === 'tree' && recursive) await visit(e.oid, `${pre_}${e.path}/`);
          else out.push({ path: pre_ + e.path, blob: e.oid, mode: e.mode, type: e.type });
        }
      };
      await visit(found.oid, segs.length ? segs.join('/') + '/' : '');
      return out;
    },

    async write(p, content, opts) {
      const segs = validatePath(p, r.limits);
      return commitChanges(r, [{ path: p, segs, bytes: toBytes(content), expectedBlob: opts?.expectedBlob }], opts, `write ${p}`, pre);
    },

    async delete(p, opts) {
      const segs = validatePath(p, r.limits);
      return commitChanges(r, [{ path: p, segs, bytes: null, expectedBlob: opts?.expectedBlob }], opts, `delete ${p}`, pre);
    },

    async writeMany(list, opts) {
      if (!Array.isArray(list)) throw new StoreError('bad-change', 400, 'writeMany takes an array of { path, content }');
      const items = list.map((c) => ({ path: c.path, segs: validatePath(c.path, r.limits), bytes: c.content === null ? null : toBytes(c.content), expectedBlob: c.expectedBlob }));
      const n = items.length;
      return commitChanges(r, items, opts, n === 1 ? `${items[0]!.bytes ? 'write' : 'delete'} ${items[0]!.path}` : `change ${n} files`, pre);
    },

    history: (p, opts) => history(r, p, opts),
    commitsSince: (since, limit = 100) => commitsSince(r, since, limit),
    watch: (onCommit) => watch(r, onCommit),
  };
}

/** Create (if needed) and open `<root>/<name>.git`. */
export function openNamedStore(root: string, name: string, options: Omit<StoreOptions, 'dir'> = {}): Promise<Store> {
  return openStore({ ...options, dir: path.join(root, `${name}.git`) });
}

/** Is `dir` a bare repository (has HEAD and objects/)? */
export function isRepository(dir: string): boolean {
  return fs.existsSync(path.join(dir, 'HEAD')) && fs.existsSync(path.join(dir, 'objects'));
}
