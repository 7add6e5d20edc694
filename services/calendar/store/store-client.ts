/**
 * The calendar's one way to the versioned store (services/storage/store/README.md),
 * over the storage service's /store HTTP API with the provisioned link (platform/links.ts).
 * Everything the calendar keeps goes through here, so it can move to the shared
 * platform store client without touching the rest.
 *
 * Writes are batches (POST /store/<repo>?batch: one commit for any number of files) made
 * conditional on the branch head the caller last saw (If-Match), which is how the
 * calendar's ETag checks stay atomic: the index it checked against is that head.
 */
import type { StorageLink } from '../../../platform/links.ts';
import { storageAccess } from '../../../platform/store-client.ts';

export interface StoreEntry {
  path: string;
  blob: string;
}

export interface StoreChange {
  path: string;
  type: 'add' | 'modify' | 'delete';
  blob?: string;
}

export interface StoreCommit {
  commit: string;
  parents: string[];
  message: string;
  author: { name: string; email: string };
  time: string;
  changes?: StoreChange[];
}

export interface BatchChange {
  path: string;
  /** New content, or null to delete. */
  content: Uint8Array | string | null;
}

export class StoreHttpError extends Error {
  override name = 'StoreHttpError';
  readonly status: number;
  readonly code: string;
  constructor(status: number, code: string, message: string) {
    super(message);
    this.status = status;
    this.code = code;
  }
}

export interface StoreClient {
  readonly repo: string;
  head(): Promise<string | undefined>;
  list(prefix: string, at?: string): Promise<{ commit: string | null; entries: StoreEntry[] }>;
  read(path: string, at?: string): Promise<{ content: Buffer; blob: string; commit: string } | undefined>;
  /** One commit; `expectedHead` undefined: unconditional, null: the branch must be empty. */
  batch(changes: BatchChange[], opts: { expectedHead?: string | null; message: string }): Promise<{ commit: string; blobs: Record<string, string>; changed: boolean }>;
  history(path: string | undefined, limit: number): Promise<StoreCommit[]>;
  /** Long-poll: commits after `since` (oldest first), or undefined after `timeoutS` with none. */
  watch(since: string | undefined, timeoutS: number, signal?: AbortSignal): Promise<{ head: string | null; commits: StoreCommit[]; complete: boolean } | undefined>;
}

const enc = (p: string) => p.split('/').map(encodeURIComponent).join('/');

export function storeClient(link: StorageLink, repo: string): StoreClient {
  // Mutual TLS with the certificate the supervisor issued, when it did; else the token.
  const { url: storageUrl, fetch, headers: auth } = storageAccess(link);
  const base = `${storageUrl}/store/${encodeURIComponent(repo)}`;

  async function call(url: string, init: RequestInit & { timeoutMs?: number } = {}): Promise<Response> {
    const signal = init.signal ?? AbortSignal.timeout(init.timeoutMs ?? 30_000);
    const res = await fetch(url, { ...init, headers: { ...auth, ...(init.headers as Record<string, string> | undefined) }, signal });
    return res;
  }
  async function fail(res: Response): Promise<never> {
    let body: { error?: string; message?: string } = {};
    try {
      body = (await res.json()) as typeof body;
    } catch {
      // not JSON
    }
    throw new StoreHttpError(res.status, body.error ?? 'error', body.message ?? `storage answered ${res.status}`);
  }

  return {
    repo,
    async head() {
      const r = await this.list('');
      return r.commit ?? undefined;
    },
    async list(prefix, at) {
      const q = `?list${at ? `&at=${at}` : ''}`;
      const res = await call(`${base}/${prefix ? enc(prefix) + '/' : ''}${q}`);
      if (res.status === 404 && prefix) return { commit: null, entries: [] };
      if (!res.ok) return fail(res);
      const body = (await res.json()) as { commit: string | null; entries: Array<{ path: string; blob: string; type: string }> };
      return { commit: body.commit, entries: body.entries.filter((e) => e.type === 'blob').map((e) => ({ path: e.path, blob: e.blob })) };
    },
    async read(path, at) {
      const res = await call(`${base}/${enc(path)}${at ? `?at=${at}` : ''}`);
      if (res.status === 404) {
        await res.body?.cancel();
        return undefined;
      }
      if (!res.ok) return fail(res);
      return { content: Buffer.from(await res.arrayBuffer()), blob: res.headers.get('x-kith-blob') ?? '', commit: res.headers.get('x-kith-commit') ?? '' };
    },
    async batch(changes, opts) {
      const body = JSON.stringify({
        message: opts.message,
        changes: changes.map((c) => (c.content === null ? { path: c.path, delete: true } : { path: c.path, content: Buffer.from(c.content).toString('base64') })),
      });
      const headers: Record<string, string> = { 'content-type': 'application/json' };
      if (opts.expectedHead) headers['if-match'] = `"${opts.expectedHead}"`;
      const res = await call(`${base}?batch`, { method: 'POST', headers, body, timeoutMs: 60_000 });
      if (!res.ok) return fail(res);
      const r = (await res.json()) as { commit: string; blobs: Record<string, string>; changed: boolean };
      return r;
    },
    async history(path, limit) {
      const res = await call(`${base}${path ? '/' + enc(path) : ''}?history&limit=${limit}`);
      if (!res.ok) return fail(res);
      return ((await res.json()) as { entries: StoreCommit[] }).entries;
    },
    async watch(since, timeoutS, signal) {
      const res = await call(`${base}?watch&timeout=${timeoutS}${since ? `&since=${since}` : ''}`, { signal: signal ? AbortSignal.any([signal, AbortSignal.timeout((timeoutS + 15) * 1000)]) : AbortSignal.timeout((timeoutS + 15) * 1000) });
      if (res.status === 204) return undefined;
      if (!res.ok) return fail(res);
      return (await res.json()) as { head: string | null; commits: StoreCommit[]; complete: boolean };
    },
  };
}
