/**
 * HTTP API of the versioned store, for Node's http server, under `/store/` — one set of
 * rules for every repository, config.git included (see README.md for the whole API):
 *
 *   GET /store/                            JSON { repos } (the repositories)
 *   POST /store/<repo>                     create the repository (201; 200 if it exists)
 *   DELETE /store/<repo>?repository        delete it and all its history
 *   GET|HEAD /store/<repo>/<path>          the file (http-read.ts); ?list, ?history
 *   GET /store/<repo>[/<path>]?watch       long-poll or SSE (http-watch.ts)
 *   PUT|DELETE /store/<repo>/<path>        one commit each, with preconditions (http-write.ts)
 *   POST /store/<repo>?batch               several files as one commit (http-batch.ts)
 *
 * ETag = the branch head commit everywhere; If-Match on a write is compare-and-swap on
 * that commit; X-Kith-Expected-Blob is the per-file swap. A false precondition is 412
 * (RFC 9110 §13.1.1). Errors are JSON `{ error, message }` whose message says what to do;
 * nothing a client sends can crash the handler.
 *
 * The handler is a chain of middleware (../http/kit.ts): errors → authorize → route. The
 * storage server puts authentication and the live body limit in front, once, for git and
 * the store alike.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import * as path from 'node:path';
import { promises as fsp } from 'node:fs';
import { HttpError, catchErrors, compose, renderJson, sendJson, type Ctx } from '../http/kit.ts';
import { ConflictError, StoreError } from './errors.ts';
import { openStore, type Author, type Store, type StoreOptions, type WriteResult } from './store.ts';
import { PREFIX, parseTarget } from './http-target.ts';
import { handleRead } from './http-read.ts';
import { handleWrite } from './http-write.ts';
import { handleBatch } from './http-batch.ts';
import { handleWatch } from './http-watch.ts';
import { createRepo, deleteRepo, listRepos, repoExists } from '../git/repos.ts';

export interface StoreAccess {
  repo: string;
  /** The file or folder path ('' for the repository itself). */
  path: string;
  write: boolean;
  /** Listing, creating or deleting repositories. */
  admin?: boolean;
}

/** false: 401. 'forbidden': 403. true: allowed. An object: allowed, and writes are authored by `author`. */
export type AuthorizeResult = boolean | 'forbidden' | { author?: Author };

export interface StoreHttpOptions {
  /** Folder holding `<name>.git` bare repositories. */
  root: string;
  authorize?: (req: IncomingMessage, access: StoreAccess) => AuthorizeResult | Promise<AuthorizeResult>;
  /** Largest request body, bytes (default: the limit a bodyLimit middleware set, else the store's maxFileBytes, 8 MiB). */
  maxBody?: number;
  /** Long-poll timeout, ms (default 25000); `timeout=S` may ask for less, up to 60 s. */
  watchTimeoutMs?: number;
  /** SSE heartbeat period, ms (default 15000). */
  heartbeatMs?: number;
  /** Repositories readable here but never writable (default ['config']: config.git changes only by validated git push). */
  readOnly?: string[];
  /** Repositories that cannot be deleted (default ['config']). */
  protectedRepos?: string[];
  /** Passed to openStore for every repository. */
  store?: Omit<StoreOptions, 'dir' | 'create'>;
  /** Extra openStore options for one repository (config.git: its validating preCommit). */
  storeOptions?: (repo: string) => Partial<Omit<StoreOptions, 'dir' | 'create'>> | undefined;
  /** Runs after a write committed, before the answer (config.git: publish the new tree). */
  afterWrite?: (repo: string, result: WriteResult) => Promise<void>;
  onError?: (err: unknown, info: { method?: string; url?: string }) => void;
}

export interface StoreHttpHandler {
  /** Handle a request under /store/; resolves false (without answering) for any other URL. */
  (req: IncomingMessage, res: ServerResponse): Promise<boolean>;
  /** End every long-poll and SSE stream (call before server.close()). */
  close(): void;
  /** The Store the handler uses for a repository (one per repository, shared). */
  storeFor(repo: string): Promise<Store>;
}

/** StoreErrors to HTTP: a failed compare-and-swap is 412 (RFC 9110 §13.1.1), the rest keep their status. */
function toHttp(err: unknown): unknown {
  if (!(err instanceof StoreError)) return err;
  const { error: _e, message: _m, ...details } = err.toJSON();
  const status = err instanceof ConflictError ? 412 : err.status;
  return new HttpError(status, err.code, err.message, err.code === 'locked' ? { 'retry-after': '1' } : {}, details);
}

export function createStoreHttpHandler(options: StoreHttpOptions): StoreHttpHandler {
  const root = path.resolve(options.root);
  const stores = new Map<string, Promise<Store>>();
  const readOnly = new Set(options.readOnly ?? ['config']);
  const protectedRepos = new Set(options.protectedRepos ?? ['config']);
  const watchOptions = { timeoutMs: options.watchTimeoutMs ?? 25_000, heartbeatMs: options.heartbeatMs ?? 15_000, open: new Set<() => void>() };

  async function storeFor(repo: string): Promise<Store> {
    const dir = path.join(root, `${repo}.git`);
    const ok = await fsp.stat(path.join(dir, 'HEAD')).then((s) => s.isFile(), () => false);
    if (!ok) {
      stores.delete(repo);
      throw new HttpError(404, 'no-such-repo', `there is no repository "${repo}": create it first (POST /store/${repo}, kith repo create, or a first git push)`);
    }
    let s = stores.get(repo);
    if (!s) {
      s = openStore({ ...options.store, ...options.storeOptions?.(repo), dir });
      stores.set(repo, s);
      s.catch(() => stores.delete(repo));
    }
    return s;
  }

  async function authorize(req: IncomingMessage, access: StoreAccess): Promise<Author | undefined> {
    if (!options.authorize) return undefined;
    const r = await options.authorize(req, access);
    if (r === false) throw new HttpError(401, 'unauthorized', 'authenticate: send the access token (HTTP Basic password or Bearer) or a client certificate', { 'www-authenticate': 'Basic realm="kith store", charset="UTF-8"' });
    if (r === 'forbidden') throw new HttpError(403, 'forbidden', `you may not ${access.admin ? 'manage repositories' : access.write ? 'change' : 'read'} ${access.repo}${access.path ? '/' + access.path : ''}: ask the owner for that grant`);
    return typeof r === 'object' ? r.author : undefined;
  }

  /** GET /store/, POST /store/<repo>, DELETE /store/<repo>?repository. */
  async function admin(req: IncomingMessage, res: ServerResponse, repo: string | undefined): Promise<void> {
    await authorize(req, { repo: repo ?? '', path: '', write: req.method !== 'GET', admin: true });
    req.resume();
    if (repo === undefined) return sendJson(res, 200, { repos: await listRepos(root) });
    if (req.method === 'POST') {
      const existed = await repoExists(root, repo);
      if (!existed) await createRepo(root, repo);
      return sendJson(res, existed ? 200 : 201, { repo, created: !existed });
    }
    if (protectedRepos.has(repo)) throw new HttpError(403, 'protected', `${repo} cannot be deleted: it holds the live configuration`);
    stores.delete(repo);
    if (!(await deleteRepo(root, repo))) throw new HttpError(404, 'no-such-repo', `there is no repository "${repo}"`);
    return sendJson(res, 200, { repo, deleted: true });
  }

  async function route(c: Ctx): Promise<void> {
    const { req, res } = c;
    const url = req.url ?? '/';
    const qi = url.indexOf('?');
    const pathname = qi === -1 ? url : url.slice(0, qi);
    const q = new URLSearchParams(qi === -1 ? '' : url.slice(qi + 1));
    const method = req.method ?? 'GET';
    if (pathname === PREFIX) {
      if (method !== 'GET') throw new HttpError(405, 'method-not-allowed', 'GET /store/ lists the repositories', { allow: 'GET' });
      return admin(req, res, undefined);
    }
    const t = parseTarget(pathname);
    const batch = method === 'POST' && q.has('batch');
    if (t.path === '' && !t.dirForm && ((method === 'POST' && !batch) || (method === 'DELETE' && q.has('repository')))) return admin(req, res, t.repo);
    const write = method === 'PUT' || method === 'DELETE' || batch;
    if (!write && method !== 'GET' && method !== 'HEAD') {
      throw new HttpError(405, 'method-not-allowed', `${method} is not supported: use GET, HEAD, PUT or DELETE`, { allow: 'GET, HEAD, PUT, DELETE' });
    }
    const author = await authorize(req, { repo: t.repo, path: t.path, write });
    if (write && readOnly.has(t.repo)) throw new HttpError(403, 'read-only', `${t.repo} is read-only here: change it with git push, where it is validated`);
    const store = await storeFor(t.repo);
    if (batch) return handleBatch(req, res, store, t, author, options.maxBody, options.afterWrite && ((r) => options.afterWrite!(t.repo, r)));
    if (write) return handleWrite(req, res, store, t, author, options.maxBody, options.afterWrite && ((r) => options.afterWrite!(t.repo, r)));
    if (q.has('watch')) return handleWatch(req, res, store, t, q, watchOptions);
    return handleRead(req, res, store, t, q);
  }

  const chain = compose(
    catchErrors(renderJson, (err, c) => options.onError?.(err, { method: c.req.method, url: c.req.url })),
    async (c, next) => {
      try {
        await next();
      } catch (err) {
        throw toHttp(err);
      }
    },
    (c) => route(c),
  );
  const handler = (async (req: IncomingMessage, res: ServerResponse) => {
    if (!(req.url ?? '/').startsWith(PREFIX)) return false;
    await chain({ req, res });
    return true;
  }) as StoreHttpHandler;
  handler.close = () => {
    for (const c of [...watchOptions.open]) c();
  };
  handler.storeFor = storeFor;
  return handler;
}
