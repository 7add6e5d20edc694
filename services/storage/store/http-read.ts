/**
 * GET / HEAD under /store/<repo>/: a file (ETag = the head commit it was read at, RFC 9110
 * §8.8.3; 304 on a matching If-None-Match, §13.1.2), a folder listing (`?list`), a history
 * (`?history`). `?watch` goes to http-watch.ts.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { HttpError, sendJson } from '../http/kit.ts';
import type { Store } from './store.ts';
import type { Target } from './http-target.ts';

const OID_RE = /^[0-9a-f]{40}$/;

export async function handleRead(req: IncomingMessage, res: ServerResponse, store: Store, t: Target, q: URLSearchParams): Promise<void> {
  const head = req.method === 'HEAD';
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
    return sendJson(res, 200, { repo: t.repo, path: t.path, commit: commit ?? null, entries }, commit ? { etag: `"${commit}"`, 'x-kith-commit': commit } : {});
  }
  const r = await store.read(t.path, { at });
  if (!r) {
    const isDir = (await store.list(t.path, { recursive: false })).length > 0;
    const h = await store.head();
    throw new HttpError(404, 'not-found', isDir ? `${t.path} is a folder: list it with GET ${t.path}/?list` : `${t.path} does not exist`, h ? { etag: `"${h}"`, 'x-kith-commit': h } : {}, { commit: h ?? null });
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
