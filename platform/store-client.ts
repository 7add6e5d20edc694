/**
 * A typed client for the storage service's versioned store API (`/store/`, see
 * services/storage/store/README.md), over a provisioned link (platform/links.ts:
 * `{ url, token }`, and a client certificate for mutual TLS when one was provisioned). Services use it to keep data in a repository of their own and to change
 * config.git through its validation (DNS dynamic updates; mail and calendar next); the
 * installer uses it with the owner's token.
 *
 *   const store = createStoreClient(link);
 *   const f = await store.read('config', 'dns/zones/home.arpa.zone');      // undefined when absent
 *   await store.write('config', 'dns/zones/home.arpa.zone', text, { expectedBlob: f?.blob ?? null, message });
 *   for await (const c of store.changes('calendar', { since, signal })) ...
 *   await store.batch('calendar', [{ path: 'a.ics', content }, { path: 'b.ics', content: null }], { ifMatch: head });
 *
 * Compare-and-swap, the same on every repository: `ifMatch: <commit>` writes only if the
 * branch head is that commit (the `commit` of a read: RFC 9110 If-Match on the ETag);
 * `expectedBlob: <blob> | null` only if that one file is unchanged (null: absent), which is
 * what a CalDAV ETag needs. A lost race is a StoreClientError with code 'conflict' (HTTP 412)
 * and `expected` / `actual` in its details: read again, re-apply, retry. A config write that
 * does not validate is code 'invalid' (422) with `issues` (file:line: problem).
 *
 * Node's fetch; no dependency on the storage service's code.
 */
import type { StorageLink } from './links.ts';
import { tlsFetch } from './tls-fetch.ts';

export interface StoreFile {
  content: Uint8Array;
  /** The branch head the file was read at (the ETag). */
  commit: string;
  /** The file's blob id (for expectedBlob). */
  blob: string;
}

export interface StoreWriteOptions {
  /** Only if the branch head is this commit (If-Match). */
  ifMatch?: string;
  /** Only if the file's blob is this one; null: only if the file does not exist. */
  expectedBlob?: string | null;
  /** The commit message (default "write <path>" / "delete <path>"). */
  message?: string;
}

export interface StoreWriteResult {
  commit: string;
  /** False when the content was already there: no commit was made. */
  changed: boolean;
  /** PUT only: the file's new blob, and whether it did not exist before. */
  blob?: string;
  created?: boolean;
}

/** One file of a batch: new content, or null to delete it; expectedBlob as in StoreWriteOptions. */
export interface StoreBatchChange {
  path: string;
  content: Uint8Array | string | null;
  expectedBlob?: string | null;
}

export interface StoreBatchResult {
  commit: string;
  /** False when every change was already there: no commit was made. */
  changed: boolean;
  /** The new blob of each written path. */
  blobs: Record<string, string>;
  /** The written paths that did not exist before. */
  created?: string[];
}

export interface StoreListEntry {
  path: string;
  blob: string;
  mode: string;
  type: 'blob' | 'tree' | 'commit';
}

export interface StoreChange {
  path: string;
  type: 'add' | 'modify' | 'delete';
  blob: string;
}

export interface StoreHistoryEntry {
  commit: string;
  parents: string[];
  message: string;
  author: { name: string; email: string };
  /** ISO 8601 UTC. */
  time: string;
  changes?: StoreChange[];
}

export interface StoreWatchResult {
  head: string | null;
  /** Oldest first. */
  commits: StoreHistoryEntry[];
  /** False when more than 100 commits came after `since` (only the newest are here). */
  complete: boolean;
}

/** An answer other than success: `code` is the store's error code ('conflict', 'invalid', 'not-found', ...). */
export class StoreClientError extends Error {
  override name = 'StoreClientError';
  readonly status: number;
  readonly code: string;
  readonly details: Record<string, unknown>;
  constructor(status: number, code: string, message: string, details: Record<string, unknown> = {}) {
    super(message);
    this.status = status;
    this.code = code;
    this.details = details;
  }
}

export interface StoreClientOptions {
  /** Per-request timeout, ms (default 10000; watch adds its own wait). */
  timeoutMs?: number;
  fetch?: typeof fetch;
}

export interface StoreClient {
  /** The repositories (owner only). */
  repos(): Promise<string[]>;
  /** Create a repository (owner only); false when it existed already. */
  createRepo(name: string): Promise<boolean>;
  /** Delete a repository and all its history (owner only; config cannot be deleted). */
  deleteRepo(name: string): Promise<void>;
  /** A file at the head (or at commit `at`); undefined when absent. */
  read(repo: string, path: string, opts?: { at?: string }): Promise<StoreFile | undefined>;
  /** A file's blob and the head it was seen at, without its content (HEAD); undefined when absent. */
  stat(repo: string, path: string): Promise<{ commit: string; blob: string } | undefined>;
  write(repo: string, path: string, content: Uint8Array | string, opts?: StoreWriteOptions): Promise<StoreWriteResult>;
  delete(repo: string, path: string, opts?: StoreWriteOptions): Promise<StoreWriteResult>;
  /**
   * Many files as ONE commit (POST ?batch, at most the store's limit of changes): a bulk load
   * costs one commit and one sync, not one per file. `ifMatch` as on write.
   */
  batch(repo: string, changes: StoreBatchChange[], opts?: { ifMatch?: string; message?: string }): Promise<StoreBatchResult>;
  /** Files under `prefix` (recursive unless told), at the head or at `at`. */
  list(repo: string, prefix?: string, opts?: { recursive?: boolean; at?: string }): Promise<{ commit: string | null; entries: StoreListEntry[] }>;
  /** Newest first; with a path, only commits that changed it. */
  history(repo: string, path?: string, opts?: { limit?: number }): Promise<StoreHistoryEntry[]>;
  /** One long-poll: the commits after `since` (no since: the next commit), or undefined after `timeoutS` (≤ 60). */
  watch(repo: string, opts?: { since?: string; timeoutS?: number; signal?: AbortSignal }): Promise<StoreWatchResult | undefined>;
  /** Every commit after `since`, oldest first, as it happens, until `signal` aborts. */
  changes(repo: string, opts?: { since?: string; signal?: AbortSignal }): AsyncIterable<StoreHistoryEntry>;
}

const encodePath = (p: string) => p.split('/').map(encodeURIComponent).join('/');

/**
 * How to reach storage over a link: with a provisioned certificate, its https listener by
 * mutual TLS, the certificate naming the service (no token sent); otherwise plain HTTP with
 * the token. For code that calls storage's HTTP API itself: `fetch(url + '/store/…', { headers })`.
 */
export function storageAccess(link: StorageLink): { url: string; fetch: typeof fetch; headers: Record<string, string> } {
  if (link.tls) return { url: link.tls.url.replace(/\/+$/, ''), fetch: tlsFetch(link.tls), headers: {} };
  return { url: link.url.replace(/\/+$/, ''), fetch, headers: { authorization: `Bearer ${link.token}` } };
}

export function createStoreClient(link: StorageLink, options: StoreClientOptions = {}): StoreClient {
  const access = storageAccess(link);
  const base = access.url + '/store/';
  const doFetch = options.fetch ?? access.fetch;
  const timeoutMs = options.timeoutMs ?? 10_000;
  const auth = access.headers;

  async function call(method: string, urlPath: string, init: { headers?: Record<string, string>; body?: Uint8Array | string; waitMs?: number; signal?: AbortSignal } = {}): Promise<Response> {
    const timeout = AbortSignal.timeout(timeoutMs + (init.waitMs ?? 0));
    const signal = init.signal ? AbortSignal.any([timeout, init.signal]) : timeout;
    return doFetch(base + urlPath, { method, headers: { ...auth, ...init.headers }, body: init.body as string | Uint8Array<ArrayBuffer> | undefined, signal });
  }

  async function fail(res: Response): Promise<never> {
    const text = await res.text().catch(() => '');
    let body: Record<string, unknown> = {};
    try {
      body = JSON.parse(text) as Record<string, unknown>;
    } catch {
      body = { message: text.trim() };
    }
    const { error, message, ...details } = body;
    throw new StoreClientError(res.status, typeof error === 'string' ? error : `http-${res.status}`, typeof message === 'string' && message ? message : `storage answered ${res.status}`, details);
  }

  async function json<T>(res: Response): Promise<T> {
    if (!res.ok) return fail(res);
    return (await res.json()) as T;
  }

  function writeHeaders(opts: StoreWriteOptions): Record<string, string> {
    const h: Record<string, string> = {};
    if (opts.ifMatch !== undefined) h['if-match'] = `"${opts.ifMatch}"`;
    if (opts.expectedBlob !== undefined) h['x-kith-expected-blob'] = opts.expectedBlob ?? 'none';
    if (opts.message !== undefined) h['x-kith-message'] = encodeURIComponent(opts.message);
    return h;
  }

  const client: StoreClient = {
    async repos() {
      return (await json<{ repos: string[] }>(await call('GET', ''))).repos;
    },
    async createRepo(name) {
      return (await json<{ created: boolean }>(await call('POST', encodeURIComponent(name)))).created;
    },
    async deleteRepo(name) {
      await json(await call('DELETE', `${encodeURIComponent(name)}?repository`));
    },
    async read(repo, path, opts = {}) {
      const q = opts.at ? `?at=${opts.at}` : '';
      const res = await call('GET', `${encodeURIComponent(repo)}/${encodePath(path)}${q}`);
      if (res.status === 404) {
        const body = (await res.json().catch(() => ({}))) as { error?: string; message?: string };
        if (body.error === 'not-found') return undefined;
        throw new StoreClientError(404, body.error ?? 'not-found', body.message ?? 'not found');
      }
      if (!res.ok) return fail(res);
      return { content: new Uint8Array(await res.arrayBuffer()), commit: res.headers.get('x-kith-commit')!, blob: res.headers.get('x-kith-blob')! };
    },
    async stat(repo, path) {
      const res = await call('HEAD', `${encodeURIComponent(repo)}/${encodePath(path)}`);
      if (res.status === 404) return undefined;
      if (!res.ok) throw new StoreClientError(res.status, `http-${res.status}`, `storage answered ${res.status} to HEAD ${repo}/${path}`);
      return { commit: res.headers.get('x-kith-commit')!, blob: res.headers.get('x-kith-blob')! };
    },
    async write(repo, path, content, opts = {}) {
      const res = await call('PUT', `${encodeURIComponent(repo)}/${encodePath(path)}`, { headers: { 'content-type': 'application/octet-stream', ...writeHeaders(opts) }, body: content });
      return json<StoreWriteResult>(res);
    },
    async delete(repo, path, opts = {}) {
      if (!path) throw new StoreClientError(400, 'bad-path', 'delete needs a file path (deleteRepo deletes a repository)');
      return json<StoreWriteResult>(await call('DELETE', `${encodeURIComponent(repo)}/${encodePath(path)}`, { headers: writeHeaders(opts) }));
    },
    async batch(repo, changes, opts = {}) {
      const body = JSON.stringify({
        ...(opts.message !== undefined ? { message: opts.message } : {}),
        changes: changes.map((c) => ({
          path: c.path,
          ...(c.content === null ? { delete: true } : { content: Buffer.from(c.content).toString('base64') }),
          ...(c.expectedBlob !== undefined ? { expectedBlob: c.expectedBlob } : {}),
        })),
      });
      const headers: Record<string, string> = { 'content-type': 'application/json' };
      if (opts.ifMatch !== undefined) headers['if-match'] = `"${opts.ifMatch}"`;
      // A big batch is one large commit: give it the time of several writes.
      return json<StoreBatchResult>(await call('POST', `${encodeURIComponent(repo)}?batch`, { headers, body, waitMs: 50_000 }));
    },
    async list(repo, prefix = '', opts = {}) {
      const q = new URLSearchParams({ list: '' });
      if (opts.recursive === false) q.set('recursive', '0');
      if (opts.at) q.set('at', opts.at);
      const dir = prefix.replace(/^\/+|\/+$/g, '');
      const r = await json<{ commit: string | null; entries: StoreListEntry[] }>(await call('GET', `${encodeURIComponent(repo)}/${dir ? encodePath(dir) + '/' : ''}?${q}`));
      return { commit: r.commit, entries: r.entries };
    },
    async history(repo, path, opts = {}) {
      const q = `?history${opts.limit ? `&limit=${opts.limit}` : ''}`;
      const res = await call('GET', `${encodeURIComponent(repo)}${path ? '/' + encodePath(path) : ''}${q}`);
      return (await json<{ entries: StoreHistoryEntry[] }>(res)).entries;
    },
    async watch(repo, opts = {}) {
      const timeoutS = Math.min(Math.max(opts.timeoutS ?? 25, 0), 60);
      const q = `?watch&timeout=${timeoutS}${opts.since ? `&since=${opts.since}` : ''}`;
      const res = await call('GET', `${encodeURIComponent(repo)}${q}`, { waitMs: timeoutS * 1000, signal: opts.signal });
      if (res.status === 204) return undefined;
      return json<StoreWatchResult>(res);
    },
    async *changes(repo, opts = {}) {
      let since = opts.since;
      while (!opts.signal?.aborted) {
        let r: StoreWatchResult | undefined;
        try {
          r = await client.watch(repo, { since, signal: opts.signal });
        } catch (err) {
          if (opts.signal?.aborted) return;
          throw err;
        }
        if (!r) continue;
        for (const c of r.commits) yield c;
        if (r.head) since = r.head;
      }
    },
  };
  return client;
}
