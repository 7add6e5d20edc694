/**
 * Watching a branch: every watcher in this process hears each new commit, oldest first —
 * at once for commits made through any Store of the process, within `pollMs` for commits
 * made by others (git push, other processes) while someone watches.
 */
import { commitsSince } from './history.ts';
import { headOf, type HistoryEntry, type Repo } from './repo.ts';

function emit(r: Repo, entry: HistoryEntry) {
  for (const w of [...r.S.watchers]) {
    try {
      w(entry);
    } catch {
      // a watcher's bug must not break the writer
    }
  }
}

/** Tell watchers about commits up to `newHead` (serialised, oldest first). */
export function advance(r: Repo, newHead: string | undefined): Promise<void> {
  const S = r.S;
  S.emitting = S.emitting.then(async () => {
    if (S.watchers.size === 0 || !S.lastHeadKnown) return; // watch() sets the start point
    if (newHead === S.lastHead) return;
    if (newHead) {
      const { commits } = await commitsSince(r, S.lastHead, 100, newHead).catch(() => ({ commits: [] as HistoryEntry[] }));
      for (const e of commits) emit(r, e);
    }
    S.lastHead = newHead;
  }).catch(() => {}); // never leave the chain rejected: later links would not run
  return S.emitting;
}

function ensurePolling(r: Repo) {
  const S = r.S;
  if (S.timer || r.pollMs <= 0 || S.watchers.size === 0) return;
  S.timer = setInterval(() => {
    headOf(r).then((h) => advance(r, h), () => {});
  }, r.pollMs);
  S.timer.unref?.();
}

/** Call `onCommit` for every new commit on the branch, oldest first. Returns unsubscribe. */
export function watch(r: Repo, onCommit: (entry: HistoryEntry) => void): () => void {
  const S = r.S;
  S.watchers.add(onCommit);
  if (!S.lastHeadKnown) {
    // Start from the current head: watchers hear about commits made after they subscribed.
    S.emitting = S.emitting.then(async () => {
      if (S.lastHeadKnown) return;
      S.lastHead = await headOf(r).catch(() => undefined);
      S.lastHeadKnown = true;
    }).catch(() => {});
  }
  ensurePolling(r);
  return () => {
    S.watchers.delete(onCommit);
    if (S.watchers.size === 0 && S.timer) {
      clearInterval(S.timer);
      S.timer = undefined;
      S.lastHeadKnown = false; // nobody tracks the head any more
    }
  };
}
