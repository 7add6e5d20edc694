/**
 * An in-memory store for unit tests and fuzzing of the DAV handler: the part of the
 * platform store client the calendar uses (platform/store-client.ts: list, read, batch,
 * watch), with the same contract (one commit per batch, If-Match on the head, commits
 * with their changes) and git-like ids from SHA-1 of the content. Not used by the service.
 */
import { createHash } from 'node:crypto';
import { StoreClientError, type StoreHistoryEntry } from '../../../platform/store-client.ts';
import type { CalendarStore } from './repository.ts';

export function memoryStoreClient(): CalendarStore & { commits: StoreHistoryEntry[] } {
  const files = new Map<string, { content: Buffer; blob: string }>();
  const snapshots = new Map<string, Map<string, { content: Buffer; blob: string }>>();
  const commits: StoreHistoryEntry[] = [];
  const head = () => commits[commits.length - 1]?.commit;
  const sha = (b: Buffer | string) => createHash('sha1').update(b).digest('hex');
  return {
    commits,
    async list(_repo, prefix = '', opts = {}) {
      const snap = opts.at ? snapshots.get(opts.at) : files;
      if (!snap) throw new StoreClientError(404, 'not-found', 'no such commit');
      const entries = [...snap].filter(([p]) => !prefix || p.startsWith(prefix + '/')).map(([p, f]) => ({ path: p, blob: f.blob, mode: '100644', type: 'blob' as const }));
      return { commit: opts.at ?? head() ?? null, entries };
    },
    async read(_repo, p, opts = {}) {
      const snap = opts.at ? snapshots.get(opts.at) : files;
      const f = snap?.get(p);
      return f ? { content: new Uint8Array(f.content), blob: f.blob, commit: opts.at ?? head()! } : undefined;
    },
    async batch(_repo, changes, opts = {}) {
      if (opts.ifMatch !== undefined && opts.ifMatch !== head()) throw new StoreClientError(412, 'conflict', 'head moved');
      const out: StoreHistoryEntry = { commit: '', parents: head() ? [head()!] : [], message: opts.message ?? 'batch', author: { name: 'test', email: 't@x' }, time: new Date().toISOString(), changes: [] };
      const blobs: Record<string, string> = {};
      for (const c of changes) {
        if (c.content === null) {
          const old = files.get(c.path);
          if (!old) throw new StoreClientError(404, 'not-found', `${c.path} does not exist`);
          files.delete(c.path);
          out.changes!.push({ path: c.path, type: 'delete', blob: old.blob });
        } else {
          const content = Buffer.from(c.content);
          const blob = sha(content);
          out.changes!.push({ path: c.path, type: files.has(c.path) ? 'modify' : 'add', blob });
          files.set(c.path, { content, blob });
          blobs[c.path] = blob;
        }
      }
      out.commit = sha(`${out.parents[0] ?? ''}${JSON.stringify(out.changes)}${commits.length}`);
      commits.push(out);
      snapshots.set(out.commit, new Map(files));
      return { commit: out.commit, blobs, changed: true };
    },
    async watch(_repo, opts = {}) {
      // As the store: without `since`, only a commit made from now on (none here), and a
      // short wait before "nothing new" so a watch loop does not spin.
      const i = opts.since ? commits.findIndex((c) => c.commit === opts.since) : commits.length;
      const after = commits.slice(i + 1);
      if (after.length === 0) {
        await new Promise((r) => setTimeout(r, Math.min((opts.timeoutS ?? 25) * 1000, 20)));
        return undefined;
      }
      return { head: head() ?? null, commits: after, complete: true };
    },
  };
}
