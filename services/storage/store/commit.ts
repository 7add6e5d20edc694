/**
 * The one compare-and-swap commit of the versioned store (and of config.git, which is a
 * store with a validating pre-commit hook): blobs first, then under the branch's locks
 * (lock.ts: the in-process mutex and git's `refs/heads/<branch>.lock`, the same pair
 * receive-pack holds) read the head, check `expectedHead` / each `expectedBlob`, rewrite
 * the trees along the changed paths, write the commit, run the pre-commit hook on it, and
 * move the ref only if the head is still the one read (a writer that ignores the lock file
 * may have moved it). Objects and ref go through platform/durable-fs.ts: all on disk
 * before the commit resolves.
 */
import * as git from 'isomorphic-git';
import { privateGitFs as durableGitFs } from '../git/private-fs.ts';
import { diskBytes } from './cleanup.ts';
import { ConflictError, LimitError, StoreError } from './errors.ts';
import { withFileLock, withMutex } from './lock.ts';
import { entryAt, headOf, treeOf, type Author, type Repo } from './repo.ts';
import { applyChanges, type FileChange } from './trees.ts';
import { advance } from './watch.ts';

export interface WriteOptions {
  /** CAS on the branch: the head must be this commit (null: the branch must not exist yet). */
  expectedHead?: string | null;
  /** CAS on the file: its blob must be this oid (null: the file must not exist). */
  expectedBlob?: string | null;
  message?: string;
  author?: Author;
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

/** What a pre-commit hook sees: the commit is written, the ref has not moved. */
export interface PreCommitInput {
  dir: string;
  branch: string;
  base: string | undefined;
  commit: string;
  tree: string;
  /** Paths written or deleted. */
  paths: string[];
  author: Author;
}
/** Refuse by throwing a StoreError (RefusedError: 422 with the issues). */
export type PreCommit = (input: PreCommitInput) => void | Promise<void>;

export interface CommitItem {
  path: string;
  segs: string[];
  bytes: Uint8Array | null;
  expectedBlob?: string | null;
}

function sanitizeIdent(s: string, fallback: string): string {
  // fsck --strict rejects '<', '>' and newlines inside a name or an email.
  const clean = String(s ?? '').replace(/[<>\u0000-\u001f\u007f]/g, '').trim();
  return clean === '' ? fallback : clean.slice(0, 200);
}

function messageOf(r: Repo, opts: WriteOptions | undefined, fallback: string): string {
  const m = (opts?.message ?? fallback).replace(/\r\n?/g, '\n').trim();
  if (m.includes('\u0000')) throw new StoreError('bad-message', 400, 'the commit message contains a NUL byte: remove it');
  const bytes = Buffer.byteLength(m, 'utf8');
  if (bytes > r.limits.maxMessageBytes) throw new LimitError('maxMessageBytes', r.limits.maxMessageBytes, bytes, 'the commit message');
  return (m === '' ? fallback : m) + '\n';
}

async function repoBytes(r: Repo): Promise<number> {
  const t = Date.now();
  if (!r.S.repoBytes || t - r.S.repoBytes.at > 5_000) r.S.repoBytes = { bytes: await diskBytes(r.real), at: t };
  return r.S.repoBytes.bytes;
}

/** Forget the cached repository size (a push added a pack). */
export function repoSizeChanged(r: Repo): void {
  r.S.repoBytes = undefined;
}

export async function commitChanges(r: Repo, items: CommitItem[], opts: WriteOptions | undefined, fallbackMessage: string, preCommit?: PreCommit): Promise<WriteResult> {
  const { limits } = r;
  if (items.length === 0) throw new StoreError('empty-change', 400, 'nothing to write: give at least one path');
  if (items.length > limits.maxChanges) throw new LimitError('maxChanges', limits.maxChanges, items.length, 'the number of changed files');
  const msg = messageOf(r, opts, fallbackMessage);
  const who = opts?.author ?? r.defaultAuthor;
  const ident = { name: sanitizeIdent(who.name, 'unknown'), email: sanitizeIdent(who.email, 'unknown@localhost') };
  let incoming = 0;
  for (const it of items) {
    if (it.bytes && it.bytes.length > limits.maxFileBytes) throw new LimitError('maxFileBytes', limits.maxFileBytes, it.bytes.length, it.path);
    incoming += it.bytes?.length ?? 0;
  }
  if (incoming > 0) {
    const size = await repoBytes(r);
    if (size + incoming > limits.maxRepoBytes) throw new LimitError('maxRepoBytes', limits.maxRepoBytes, size + incoming, 'the repository with this write');
  }
  // Blobs first, outside the locks: content-addressed, so harmless if the commit fails.
  // Each blob is written durably (O_DSYNC): 16 at a time, so the disk takes their syncs
  // together, not one after another (a 1000-file batch went from minutes to seconds).
  const blobs: Record<string, string> = {};
  const changes: FileChange[] = items.map((it) => ({ segs: it.segs, blob: null as string | null }));
  for (let i = 0; i < items.length; i += 16) {
    await Promise.all(items.slice(i, i + 16).map(async (it, k) => {
      if (it.bytes) changes[i + k]!.blob = blobs[it.path] = await git.writeBlob({ fs: durableGitFs, gitdir: r.real, blob: it.bytes });
    }));
  }
  if (r.S.repoBytes) r.S.repoBytes.bytes += incoming;

  return withMutex(r.key, () =>
    withFileLock(
      r.lockFile,
      async () => {
        const base = await headOf(r);
        if (opts?.expectedHead !== undefined && (opts.expectedHead ?? undefined) !== base) {
          throw new ConflictError(opts.expectedHead, base ?? null, 'head');
        }
        const baseTree = await treeOf(r, base);
        const created: string[] = [];
        for (const it of items) {
          const e = await entryAt(r, baseTree, it.segs);
          const actual = e && e.type !== 'tree' ? e.oid : null;
          if (it.expectedBlob !== undefined && actual !== it.expectedBlob) throw new ConflictError(it.expectedBlob, actual, 'blob', it.path);
          if (it.bytes && !e) created.push(it.path);
        }
        const tree = await applyChanges(r.io, baseTree, changes);
        if (base && tree === baseTree) return { commit: base, changed: false, blobs, created };
        const t = r.now();
        const person = { ...ident, timestamp: Math.floor(t / 1000), timezoneOffset: 0 };
        const commit = await git.writeCommit({
          fs: durableGitFs,
          gitdir: r.real,
          commit: { tree, parent: base ? [base] : [], author: person, committer: person, message: msg },
        });
        if (preCommit) await preCommit({ dir: r.real, branch: r.branch, base, commit, tree, paths: items.map((i) => i.path), author: ident });
        // Compare-and-swap: a writer that ignores the lock file may have moved the branch.
        const current = await headOf(r);
        if (current !== base) throw new ConflictError(base ?? null, current ?? null, 'head');
        await git.writeRef({ fs: durableGitFs, gitdir: r.real, ref: r.ref, value: commit, force: true });
        void advance(r, commit);
        return { commit, changed: true, blobs, created };
      },
      r.lock,
    ),
  );
}
