/**
 * HTTP API of the versioned store, for Node's http server, under `/store/<repo>/<path...>`
 * (`<repo>` is `<root>/<repo>.git`; a trailing `.git` in the URL is accepted).
 *
 *   GET|HEAD /store/<repo>/<path>          the file: 200 + ETag "<head commit>", X-Kith-Commit,
 *                                          X-Kith-Blob; 304 for a matching If-None-Match; 404;
 *                                          `?at=<commit>`: as it was at that commit
 *   GET /store/<repo>/<dir>/?list          JSON { commit, entries: [{ path, blob, mode, type }] }
 *                                          (recursive; `&recursive=0` for one level; `&at=<commit>`)
 *   GET /store/<repo>[/<path>]?history[&limit=N]   JSON { entries: [{ commit, message, author, time, changes }] }
 *   PUT /store/<repo>/<path>               body = content → 201 (new file) or 200, JSON { commit, blob, changed }
 *   DELETE /store/<repo>/<path>            → 200 JSON { commit }; 404 when absent
 *   POST /store/<repo>                     several files as ONE commit (writeMany): JSON
 *                                          { changes: [{ path, content (base64) | delete: true,
 *                                          expectedBlob?: oid | null }], message? } → 200
 *                                          { commit, blobs, changed, created }
 *   GET /store/<repo>?watch[&since=C][&timeout=S]  long-poll: 200 { head, commits, complete } once
 *                                          there is a commit after C (no C: the next one), 204 after
 *                                          the timeout (default 25 s). With `Accept: text/event-stream`:
 *                                          an SSE stream, one `commit` event per commit (id = commit;
 *                                          Last-Event-ID or since= catches up first).
 *
 * Compare-and-swap (RFC 9110 §13.1.1, §13.1.2): `If-Match: "<commit>"` on PUT/DELETE writes only
 * if the branch head is that commit; `If-Match: *` only if the file exists; `If-None-Match: *`
 * only if it does not. A failed precondition is **412 Precondition Failed** (what RFC 9110
 * requires for If-Match) with `{ error: 'conflict', expected, actual }`; 409 is kept for
 * path clashes (writing a file where a folder is). `X-Kith-Message` (percent-encoded UTF-8)
 * sets the commit message.
 *
 * Every error is JSON `{ error, message }`, where message says what to do; nothing a client
 * sends can crash the handler.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import * as path from 'node:path';
import { promises as fsp } from 'node:fs';
import { StoreError, ConflictError } from './errors.ts';
import { openStore, type Author, type HistoryEntry, type ManyChange, type Store, type StoreOptions, type WriteOptions } from './store.ts';

export interface StoreAccess {
  repo: string;
  /** The file or folder path ('' for the repository itself). */
  path: string;
  write: boolean;
}

/** false: 401. true: allowed. An object: allowed, and writes are authored by `author`. */
export type AuthorizeResult = boolean | { author?: Author };

export interface StoreHttpOptions {
  /** Folder holding `<name>.git` bare repositories. */
  root: string;
  authorize?: (req: IncomingMessage, access: StoreAccess) => AuthorizeResult | Promise<AuthorizeResult>;
  /** Largest request body, bytes (default: the store's maxFileBytes, 8 MiB). */
  maxBody?: number;
  /** Long-poll timeout, ms (default 25000); `timeout=S` may ask for less, up to 60 s. */
  watchTimeoutMs?: number;
  /** SSE heartbeat period, ms (default 15000). */
  heartbeatMs?: number;
  /** Repositories readable here but never writable (default ['config']: config.git changes only by validated git push). */
  readOnly?: string[];
  /** Passed to openStore for every repository. */
  store?: Omit<StoreOptions, 'dir' | 'create'>;
  onError?: (err: unknown, info: { method?: string; url?: string }) => void;
}

export interface StoreHttpHandler {
  /** Handle a request under /store/; resolves false (without answering) for any other URL. */
  (req: IncomingMessage, res: ServerResponse): Promise<boolean>;
  /** End every long-poll and SSE stream (call before server.close()). */
  close(): void;
}

const PREFIX = '/store/';
const REPO_RE = /^[A-Za-z0-9_][A-Za-z0-9._-]{0,63}$/;
const OID_RE = /^[0-9a-f]{40}$/;

class HttpError extends Error {
  readonly status: number;
  readonly code: string;
  readonly headers: Record<string, string>;
  constructor(status: number, code: string, message: string, headers: Record<string, string> = {}) {
    super(message);
    this.status = status;
    this.code = code;
    this.headers = headers;
  }
}

function sendJson(res: ServerResponse, status: number, body: unknown, headers: Record<string, string | number> = {}) {
  const text = JSON.stringify(body) + '\n';
  res.writeHead(status, { 'content-type': 'application/json; charset=utf-8', 'content-length': Buffer.byteLength(text), 'cache-control': 'no-store', ...headers });
  res.end(text);
}

function sendError(res: ServerResponse, status: number, body: Record<string, unknown>, headers: Record<string, string> = {}) {
  if (res.headersSent) {
    res.destroy();
    return;
  }
  sendJson(res, status, body, headers);
}

/** `"<oid>"` → oid, `*` → '*', absent → undefined. Anything else is a 400. */
function parseEtagHeader(value: string | undefined, name: string): string | undefined {
  if (value === undefined) return undefined;
  const v = value.trim();
  if (v === '*') return '*';
  const m = /^"([^"]*)"$/.exec(v);
  if (!m || !OID_RE.test(m[1]!)) {
    throw new HttpError(400, 'bad-precondition', `${name} must be one ETag of this store, "<40 hex digit commit>" (quotes included), or *; got ${JSON.stringify(v.slice(0, 100))}`);
  }
  return m[1];
}

interface Target {
  repo: string;
  path: string; // '' for the repository
  dirForm: boolean; // URL ended with '/'
}

function parseTarget(pathname: string): Target {
  const rest = pathname.slice(PREFIX.length);
  const parts = rest.split('/');
  const decode = (s: string) => {
    try {
      return decodeURIComponent(s);
    } catch {
      throw new HttpError(400, 'bad-path', `bad percent-encoding in ${JSON.stringify(s.slice(0, 100))}: encode bytes as %XX`);
    }
  };
  let repo = decode(parts[0] ?? '');
  if (repo.endsWith('.git')) repo = repo.slice(0, -4);
  if (!REPO_RE.test(repo) || repo.includes('..') || repo.endsWith('.lock')) {
    throw new HttpError(400, 'bad-repo', `bad repository name ${JSON.stringify(repo.slice(0, 100))}: use /store/<name>/<path>, name = letters, digits, '.', '_', '-'`);
  }
  const segs = parts.slice(1).map(decode);
  for (const s of segs) if (s.includes('/')) throw new HttpError(400, 'bad-path', 'an encoded "/" (%2F) inside a path segment is not allowed');
  const dirForm = segs.length > 0 && segs[segs.length - 1] === '';
  if (dirForm) segs.pop();
  return { repo, path: segs.join('/'), dirForm };
}

async function readBody(req: IncomingMessage, max: number): Promise<Uint8Array> {
  const declared = req.headers['content-length'];
  if (declared !== undefined && Number(declared) > max) {
    throw new HttpError(413, 'too-large', `the body is ${declared} bytes, over the limit maxBody = ${max} bytes: send a smaller file`, { connection: 'close' });
  }
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > max) throw new HttpError(413, 'too-large', `the body is over the limit maxBody = ${max} bytes: send a smaller file`, { connection: 'close' });
    chunks.push(chunk);
  }
  return new Uint8Array(Buffer.concat(chunks));
}

function messageHeader(req: IncomingMessage): string | undefined {
  const raw = req.headers['x-kith-message'];
  if (raw === undefined) return undefined;
  const v = Array.isArray(raw) ? raw.join(' ') : raw;
  try {
    return decodeURIComponent(v);
  } catch {
    throw new HttpError(400, 'bad-message', 'X-Kith-Message must be percent-encoded UTF-8 (encodeURIComponent)');
  }
}

export function createStoreHttpHandler(options: StoreHttpOptions): StoreHttpHandler {
  const root = path.resolve(options.root);
  const stores = new Map<string, Promise<Store>>();
  const readOnly = new Set(options.readOnly ?? ['config']);
  const watchTimeoutMs = options.watchTimeoutMs ?? 25_000;
  const heartbeatMs = options.heartbeatMs ?? 15_000;
  const open = new Set<() => void>(); // closers of pending long-polls and SSE streams

  async function storeFor(repo: string): Promise<Store> {
    const dir = path.join(root, `${repo}.git`);
    const ok = await fsp.stat(path.join(dir, 'HEAD')).then((s) => s.isFile(), () => false);
    if (!ok) {
      stores.delete(repo);
      throw new HttpError(404, 'no-such-repo', `there is no repository "${repo}": create it first (a service creates its own, or push to it with git)`);
    }
    let s = stores.get(repo);
    if (!s) {
      s = openStore({ ...options.store, dir });
      stores.set(repo, s);
      s.catch(() => stores.delete(repo));
    }
    return s;
  }

  async function authorize(req: IncomingMessage, access: StoreAccess): Promise<Author | undefined> {
    if (!options.authorize) return undefined;
    const r = await options.authorize(req, access);
    if (r === false) throw new HttpError(401, 'unauthorized', 'authenticate: send the access token (HTTP Basic password or Bearer) or a client certificate', { 'www-authenticate': 'Basic realm="kith store", charset="UTF-8"' });
    return typeof r === 'object' ? r.author : undefined;
  }

  function storeError(err: StoreError, res: ServerResponse) {
    // RFC 9110 §13.1.1: a false If-Match / If-None-Match precondition is 412.
    const status = err instanceof ConflictError ? 412 : err.status;
    const headers: Record<string, string> = err.code === 'locked' ? { 'retry-after': '1' } : {};
    sendError(res, status, err.toJSON(), headers);
  }

  async function handleGet(req: IncomingMessage, res: ServerResponse, store: Store, t: Target, q: URLSearchParams): Promise<void> {
    const head = req.method === 'HEAD';
    if (q.has('watch')) return watch(req, res, store, t, q);
    const at = q.get('at') ?? undefined;
    if (at !== undefined && !OID_RE.test(at)) throw new HttpError(400, 'bad-at', 'at must be a 40 hex digit commit id from the history');
    if (q.has('history')) {
      const limitRaw = q.get('limit');
      const limit = limitRaw === null || limitRaw === '' ? 50 : Number(limitRaw);
      if (!Number.isInteger(limit) || limit < 1 || limit > 1000) throw new HttpError(400, 'bad-limit', 'limit must be a whole number from 1 to 1000');
      const entries = await store.history(t.path || undefined, { limit });
      return sendJson(res, 200, { repo: t.repo, path: t.path, entries });
    }
    if (q.has('list') || t.dirForm || t.path === '') {
      const recursive = !['0', 'false', 'no'].includes(q.get('recursive') ?? '');
      const commit = at ?? (await store.head());
      const entries = commit ? await store.list(t.path, { recursive, at: commit }) : [];
      return sendJson(res, 200, { repo: t.repo, path: t.path, commit: commit ?? null, entries });
    }
    const r = await store.read(t.path, { at });
    if (!r) {
      const isDir = (await store.list(t.path, { recursive: false })).length > 0;
      throw new HttpError(404, 'not-found', isDir ? `${t.path} is a folder: list it with GET ${t.path}/?list` : `${t.path} does not exist`);
    }
    const etag = `"${r.commit}"`;
    const headers = { etag, 'x-kith-commit': r.commit, 'x-kith-blob': r.blob, 'cache-control': 'no-cache' };
    const inm = req.headers['if-none-match'];
    if (inm && inm.split(',').some((v) => v.trim() === etag || v.trim() === '*')) {
      res.writeHead(304, headers);
      res.end();
      return;
    }
    res.writeHead(200, { ...headers, 'content-type': 'application/octet-stream', 'content-length': r.content.length });
    res.end(head ? undefined : r.content);
  }

  async function handleWrite(req: IncomingMessage, res: ServerResponse, store: Store, t: Target, author: Author | undefined) {
    if (t.path === '' || t.dirForm) throw new HttpError(400, 'bad-path', `${req.method} needs a file path: /store/${t.repo}/<path>, without a trailing "/"`);
    const ifMatch = parseEtagHeader(req.headers['if-match'], 'If-Match');
    const ifNone = req.headers['if-none-match'];
    if (ifNone !== undefined && ifNone.trim() !== '*') throw new HttpError(400, 'bad-precondition', 'on PUT and DELETE, If-None-Match may only be * (create only)');
    const opts: WriteOptions = { message: messageHeader(req), author };
    if (ifMatch && ifMatch !== '*') opts.expectedHead = ifMatch;
    let needExisting = ifMatch === '*';
    if (ifNone !== undefined) opts.expectedBlob = null;
    if (req.method === 'PUT') {
      const max = options.maxBody ?? store.limits.maxFileBytes;
      const body = await readBody(req, max);
      if (needExisting) {
        // If-Match: * — the file must exist: pin its current blob, so the check is atomic.
        const cur = await store.read(t.path);
        if (!cur) throw new ConflictError('*', null, 'blob', t.path);
        opts.expectedBlob = cur.blob;
        needExisting = false;
      }
      const r = await store.write(t.path, body, opts);
      const created = r.created.includes(t.path);
      const blob = r.blobs[t.path]!;
      sendJson(res, created ? 201 : 200, { commit: r.commit, blob, changed: r.changed }, {
        etag: `"${r.commit}"`,
        'x-kith-commit': r.commit,
        'x-kith-blob': blob,
        ...(created ? { location: req.url!.split('?')[0]! } : {}),
      });
    } else {
      req.resume();
      const r = await store.delete(t.path, opts);
      sendJson(res, 200, { commit: r.commit }, { etag: `"${r.commit}"`, 'x-kith-commit': r.commit });
    }
  }

  /** POST /store/<repo>: several changes as one commit (what a collection delete or a move needs). */
  async function handleBatch(req: IncomingMessage, res: ServerResponse, store: Store, t: Target, author: Author | undefined) {
    if (t.path !== '') throw new HttpError(400, 'bad-path', `POST goes to the repository itself: /store/${t.repo}`);
    const ifMatch = parseEtagHeader(req.headers['if-match'], 'If-Match');
    if (ifMatch === '*') throw new HttpError(400, 'bad-precondition', 'on POST, If-Match is the head commit, "<40 hex digits>"');
    const raw = await readBody(req, Math.ceil(((options.maxBody ?? store.limits.maxFileBytes) * 4) / 3) + 65_536);
    let body: { changes?: unknown; message?: unknown };
    try {
      body = JSON.parse(Buffer.from(raw).toString('utf8')) as typeof body;
    } catch {
      throw new HttpError(400, 'bad-json', 'the body must be JSON: { changes: [{ path, content (base64) | delete: true, expectedBlob? }], message? }');
    }
    if (!Array.isArray(body.changes) || body.changes.length === 0) throw new HttpError(400, 'bad-changes', 'changes must be a non-empty list of { path, content (base64) | delete: true, expectedBlob? }');
    const changes = body.changes.map((c: unknown, i: number): ManyChange => {
      const o = (c ?? {}) as { path?: unknown; content?: unknown; delete?: unknown; expectedBlob?: unknown };
      if (typeof o.path !== 'string') throw new HttpError(400, 'bad-changes', `changes.${i}.path must be a string`);
      if (o.delete !== true && typeof o.content !== 'string') throw new HttpError(400, 'bad-changes', `changes.${i}: give content (base64) or delete: true`);
      if (o.expectedBlob !== undefined && o.expectedBlob !== null && !(typeof o.expectedBlob === 'string' && OID_RE.test(o.expectedBlob))) throw new HttpError(400, 'bad-changes', `changes.${i}.expectedBlob must be a blob id or null`);
      return { path: o.path, content: o.delete === true ? null : new Uint8Array(Buffer.from(o.content as string, 'base64')), ...(o.expectedBlob !== undefined ? { expectedBlob: o.expectedBlob as string | null } : {}) };
    });
    const r = await store.writeMany(changes, { message: typeof body.message === 'string' ? body.message : undefined, author, ...(ifMatch ? { expectedHead: ifMatch } : {}) });
    sendJson(res, 200, { commit: r.commit, blobs: r.blobs, changed: r.changed, created: r.created }, { etag: `"${r.commit}"`, 'x-kith-commit': r.commit });
  }

  async function watch(req: IncomingMessage, res: ServerResponse, store: Store, t: Target, q: URLSearchParams) {
    const sinceRaw = q.get('since') || (req.headers['last-event-id'] as string | undefined) || undefined;
    if (sinceRaw !== undefined && !OID_RE.test(sinceRaw)) throw new HttpError(400, 'bad-since', 'since must be a 40 hex digit commit id (the head you last saw)');
    let since = sinceRaw;
    const sse = (req.headers.accept ?? '').includes('text/event-stream');
    if (sse) {
      res.writeHead(200, { 'content-type': 'text/event-stream; charset=utf-8', 'cache-control': 'no-store', connection: 'keep-alive' });
      const send = (e: HistoryEntry) => {
        if (!t.path || e.changes?.some((c) => c.path === t.path || c.path.startsWith(t.path + '/'))) res.write(`id: ${e.commit}\nevent: commit\ndata: ${JSON.stringify(e)}\n\n`);
      };
      const queue: HistoryEntry[] = [];
      let caughtUp = false;
      const unsubscribe = store.watch((e) => (caughtUp ? send(e) : queue.push(e)));
      const beat = setInterval(() => res.write(': ping\n\n'), heartbeatMs);
      beat.unref?.();
      const close = () => {
        unsubscribe();
        clearInterval(beat);
        open.delete(close);
        res.end();
      };
      open.add(close);
      res.on('close', close);
      res.write(': kith store watch\n\n');
      if (since) {
        const back = await store.commitsSince(since, 100);
        if (!back.complete) res.write(`event: reset\ndata: ${JSON.stringify({ head: back.head ?? null })}\n\n`);
        const seen = new Set(back.commits.map((e) => e.commit));
        for (const e of back.commits) send(e);
        for (const e of queue) if (!seen.has(e.commit)) send(e);
      } else for (const e of queue) send(e);
      caughtUp = true;
      return;
    }
    const timeoutRaw = q.get('timeout');
    let timeoutMs = watchTimeoutMs;
    if (timeoutRaw !== null && timeoutRaw !== '') {
      const s = Number(timeoutRaw);
      if (!Number.isFinite(s) || s < 0 || s > 60) throw new HttpError(400, 'bad-timeout', 'timeout is in seconds, from 0 to 60');
      timeoutMs = Math.min(s * 1000, watchTimeoutMs);
    }
    await new Promise<void>((resolve) => {
      let done = false;
      let timer: ReturnType<typeof setTimeout> | undefined;
      const finish = (fn: () => void) => {
        if (done) return;
        done = true;
        unsubscribe();
        if (timer) clearTimeout(timer);
        open.delete(closeNow);
        try {
          fn();
        } finally {
          resolve();
        }
      };
      const reply = async () => {
        try {
          const r = await store.commitsSince(since, 100);
          finish(() => sendJson(res, 200, { head: r.head ?? null, commits: r.commits, complete: r.complete }, r.head ? { 'x-kith-commit': r.head } : {}));
        } catch (err) {
          finish(() => sendError(res, 500, { error: 'internal', message: String(err) }));
        }
      };
      const unsubscribe = store.watch((e) => {
        if (done) return;
        if (!since) since = e.parents[0]; // no `since`: from the commit before this one
        void reply();
      });
      const closeNow = () => finish(() => sendError(res, 503, { error: 'shutting-down', message: 'the server is stopping: retry' }));
      open.add(closeNow);
      res.on('close', () => finish(() => {}));
      timer = setTimeout(() => finish(() => {
        res.writeHead(204, { 'cache-control': 'no-store' });
        res.end();
      }), timeoutMs);
      if (since) {
        store.head().then((h) => {
          if (!done && h !== undefined && h !== since) void reply();
        }, () => {});
      }
    });
  }

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = req.url ?? '/';
    const qi = url.indexOf('?');
    const pathname = qi === -1 ? url : url.slice(0, qi);
    const q = new URLSearchParams(qi === -1 ? '' : url.slice(qi + 1));
    const t = parseTarget(pathname);
    const method = req.method ?? 'GET';
    const write = method === 'PUT' || method === 'DELETE' || method === 'POST';
    // POST is a batch on the repository itself; on a path it is no method of ours.
    if (method === 'POST' && (t.path !== '' || t.dirForm)) {
      throw new HttpError(405, 'method-not-allowed', `POST goes to the repository, /store/${t.repo}, with a JSON batch; a file takes GET, HEAD, PUT or DELETE`, { allow: 'GET, HEAD, PUT, DELETE' });
    }
    if (!write && method !== 'GET' && method !== 'HEAD') {
      throw new HttpError(405, 'method-not-allowed', `${method} is not supported: use GET, HEAD, PUT, DELETE or POST`, { allow: 'GET, HEAD, PUT, DELETE, POST' });
    }
    const author = await authorize(req, { repo: t.repo, path: t.path, write });
    if (write && readOnly.has(t.repo)) {
      throw new HttpError(403, 'read-only', `${t.repo} is read-only here: change it with git push, where it is validated`);
    }
    const store = await storeFor(t.repo);
    if (method === 'POST') await handleBatch(req, res, store, t, author);
    else if (write) await handleWrite(req, res, store, t, author);
    else await handleGet(req, res, store, t, q);
  }

  const handler = (async (req: IncomingMessage, res: ServerResponse) => {
    const url = req.url ?? '/';
    if (!url.startsWith(PREFIX)) return false;
    try {
      await handle(req, res);
    } catch (err) {
      if (err instanceof HttpError) sendError(res, err.status, { error: err.code, message: err.message }, err.headers);
      else if (err instanceof StoreError) storeError(err, res);
      else {
        options.onError?.(err, { method: req.method, url });
        sendError(res, 500, { error: 'internal', message: 'the store failed on this request; it was logged' });
      }
      // A refused upload: don't read the rest of a large body; close once answered.
      if (!req.complete) res.on('finish', () => req.destroy());
    }
    return true;
  }) as StoreHttpHandler;
  handler.close = () => {
    for (const c of [...open]) c();
  };
  return handler;
}
