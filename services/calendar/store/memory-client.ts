/**
 * An in-memory StoreClient for unit tests and fuzzing of the DAV handler: the same
 * contract as the HTTP client (one commit per batch, If-Match on the head, commits with
 * their changes), with git-like ids from SHA-1 of the content. Not used by the service.
 */
import { createHash } from 'node:crypto';
import { StoreHttpError, type StoreClient, type StoreCommit } from './store-client.ts';

export function memoryStoreClient(repo = 'calendar'): StoreClient & { commits: StoreCommit[] } {
  const files = new Map<string, { content: Buffer; blob: string }>();
  const snapshots = new Map<string, Map<string, { content: Buffer; blob: string }>>();
  const commits: StoreCommit[] = [];
  const head = () => commits[commits.length - 1]?.commit;
  const sha = (b: Buffer | string) => createHash('sha1').update(b).digest('hex');
  return {
    repo,
    commits,
    async head() {
      return head();
    },
    async list(prefix, at) {
      const snap = at ? snapshots.get(at) : files;
      if (!snap) throw new StoreHttpError(404, 'not-found', 'no such commit');
      const entries = [...snap].filter(([p]) => !prefix || p.startsWith(prefix + '/')).map(([p, f]) => ({ path: p, blob: f.blob }));
      return { commit: at ?? head() ?? null, entries };
    },
    async read(p, at) {
      const snap = at ? snapshots.get(at) : files;
      const f = snap?.get(p);
      return f ? { content: Buffer.from(f.content), blob: f.blob, commit: at ?? head()! } : undefined;
    },
    async batch(changes, opts) {
      if (opts.expectedHead !== undefined && opts.expectedHead !== (head() ?? null) && !(opts.expectedHead === null && head() === undefined)) throw new StoreHttpError(412, 'conflict', 'head moved');
      const out: StoreCommit = { commit: '', parents: head() ? [head()!] : [], message: opts.message, author: { name: 'test', email: 't@x' }, time: new Date().toISOString(), changes: [] };
      const blobs: Record<string, string> = {};
      for (const c of changes) {
        if (c.content === null) {
          if (!files.delete(c.path)) throw new StoreHttpError(404, 'not-found', `${c.path} does not exist`);
          out.changes!.push({ path: c.path, type: 'delete' });
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
    async history(_p, limit) {
      return commits.slice(-limit).reverse();
    },
    async watch(since) {
      const i = since ? commits.findIndex((c) => c.commit === since) : commits.length - 2;
      const after = commits.slice(i + 1);
      if (after.length === 0) return undefined;
      return { head: head() ?? null, commits: after, complete: true };
    },
  };
}
