/**
 * Reading a branch's history: entries with the files each commit changed (first parent,
 * like `git log --first-parent`), optionally only commits that touched a path, and the
 * commits after a given one (what watchers and long-polls are sent).
 */
import * as fs from 'node:fs';
import * as git from 'isomorphic-git';
import { validatePrefix } from './paths.ts';
import { entryAt, headOf, treeOf, type HistoryEntry, type Repo } from './repo.ts';
import { diffTrees, type TreeEntry } from './trees.ts';

export interface HistoryOptions {
  /** Most entries returned (default 50, at most 1000). */
  limit?: number;
  /** Include the changed files of each commit (default true). */
  changes?: boolean;
}

export async function toEntry(r: Repo, oid: string, parentOid: string | undefined | null, withChanges: boolean, c?: git.CommitObject): Promise<HistoryEntry> {
  const commit = c ?? (await git.readCommit({ fs, gitdir: r.real, oid, cache: r.S.cache })).commit;
  const entry: HistoryEntry = {
    commit: oid,
    parents: commit.parent,
    message: commit.message.replace(/\n$/, ''),
    author: { name: commit.author.name, email: commit.author.email },
    time: new Date(commit.author.timestamp * 1000).toISOString(),
  };
  if (withChanges) {
    const parent = parentOid === null ? undefined : (parentOid ?? commit.parent[0]);
    entry.changes = await diffTrees(r.io, await treeOf(r, parent), commit.tree);
  }
  return entry;
}

/** Commits after `since` up to `at` (default: the head), oldest first, at most `limit`. */
export async function commitsSince(r: Repo, since: string | undefined, limit = 100, at?: string): Promise<{ head: string | undefined; commits: HistoryEntry[]; complete: boolean }> {
  const h = at ?? (await headOf(r));
  const commits: HistoryEntry[] = [];
  let complete = false;
  let cur = h;
  while (cur && commits.length < limit) {
    if (cur === since) {
      complete = true;
      break;
    }
    const e = await toEntry(r, cur, undefined, true);
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

export async function history(r: Repo, p: string | undefined, opts: HistoryOptions = {}): Promise<HistoryEntry[]> {
  const segs = p === undefined || p === '' ? [] : validatePrefix(p, r.limits);
  const limit = Math.max(1, Math.min(opts.limit ?? 50, 1000));
  const withChanges = opts.changes ?? true;
  const out: HistoryEntry[] = [];
  let cur = await headOf(r);
  // With a path filter, look at most 10000 commits back (bounded work per request).
  for (let scanned = 0; cur && out.length < limit && scanned < 10_000; scanned++) {
    const { commit } = await git.readCommit({ fs, gitdir: r.real, oid: cur, cache: r.S.cache });
    const parent = commit.parent[0];
    if (segs.length === 0) {
      out.push(await toEntry(r, cur, parent, withChanges, commit));
    } else {
      const now_ = await entryAt(r, commit.tree, segs);
      const before = await entryAt(r, await treeOf(r, parent), segs);
      if (now_?.oid !== before?.oid) {
        const e = await toEntry(r, cur, parent, false, commit);
        if (withChanges) {
          const pre = segs.join('/');
          const sub = (x?: TreeEntry) => (x?.type === 'tree' ? x.oid : undefined);
          const changes = await diffTrees(r.io, sub(before), sub(now_), pre + '/');
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
}
