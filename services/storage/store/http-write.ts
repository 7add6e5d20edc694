/**
 * PUT and DELETE under /store/<repo>/<path>: each one commit. Preconditions (RFC 9110
 * §13.1), the same on every repository, config.git included:
 *   If-Match: "<commit>"       write only if the branch head is that commit (the ETag of a GET)
 *   If-Match: *                only if the file exists
 *   If-None-Match: *           only if it does not
 *   X-Kith-Expected-Blob: <oid> | none
 *                              per-file compare-and-swap: only if the file's blob is <oid>
 *                              (none: the file must not exist) — what a CalDAV ETag needs,
 *                              where other files may change in between
 * A false precondition is 412 `{ error: 'conflict', expected, actual }`.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { HttpError, readBody, sendJson, bodyLimitOf } from '../http/kit.ts';
import { ConflictError } from './errors.ts';
import type { Author, Store, WriteOptions, WriteResult } from './store.ts';
import type { Target } from './http-target.ts';

export const OID_RE = /^[0-9a-f]{40}$/;

/** `"<oid>"` → oid, `*` → '*', absent → undefined. Anything else is a 400. */
export function parseEtagHeader(value: string | undefined, name: string): string | undefined {
  if (value === undefined) return undefined;
  const v = value.trim();
  if (v === '*') return '*';
  const m = /^"([^"]*)"$/.exec(v);
  if (!m || !OID_RE.test(m[1]!)) {
    throw new HttpError(400, 'bad-precondition', `${name} must be one ETag of this store, "<40 hex digit commit>" (quotes included), or *; got ${JSON.stringify(v.slice(0, 100))}`);
  }
  return m[1];
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

/** The write options the request's headers ask for. */
export function writePreconditions(req: IncomingMessage): WriteOptions & { needExisting: boolean } {
  const ifMatch = parseEtagHeader(req.headers['if-match'], 'If-Match');
  const ifNone = req.headers['if-none-match'];
  if (ifNone !== undefined && ifNone.trim() !== '*') throw new HttpError(400, 'bad-precondition', 'on PUT and DELETE, If-None-Match may only be * (create only)');
  const opts: WriteOptions & { needExisting: boolean } = { message: messageHeader(req), needExisting: ifMatch === '*' };
  if (ifMatch && ifMatch !== '*') opts.expectedHead = ifMatch;
  if (ifNone !== undefined) opts.expectedBlob = null;
  const blob = req.headers['x-kith-expected-blob'];
  if (blob !== undefined) {
    const v = String(blob).trim();
    if (v !== 'none' && !OID_RE.test(v)) throw new HttpError(400, 'bad-precondition', 'X-Kith-Expected-Blob is the file\'s blob id (40 hex digits, X-Kith-Blob of a GET) or none');
    const want = v === 'none' ? null : v;
    if (opts.expectedBlob !== undefined && opts.expectedBlob !== want) throw new HttpError(400, 'bad-precondition', 'If-None-Match: * and X-Kith-Expected-Blob disagree: send one');
    opts.expectedBlob = want;
  }
  return opts;
}

export async function handleWrite(req: IncomingMessage, res: ServerResponse, store: Store, t: Target, author: Author | undefined, maxBody: number | undefined, after?: (r: WriteResult) => Promise<void>): Promise<void> {
  if (t.path === '' || t.dirForm) throw new HttpError(400, 'bad-path', `${req.method} needs a file path: /store/${t.repo}/<path>, without a trailing "/"`);
  const { needExisting, ...opts } = writePreconditions(req);
  opts.author = author;
  if (req.method === 'PUT') {
    const max = maxBody ?? bodyLimitOf(req)?.max ?? store.limits.maxFileBytes;
    const body = await readBody(req, max, maxBody !== undefined ? 'maxBody' : undefined);
    if (needExisting) {
      // If-Match: * — the file must exist: pin its current blob, so the check is atomic.
      const cur = await store.read(t.path);
      if (!cur) throw new ConflictError('*', null, 'blob', t.path);
      if (opts.expectedBlob === undefined) opts.expectedBlob = cur.blob;
    }
    const r = await store.write(t.path, body, opts);
    await after?.(r);
    const created = r.created.includes(t.path);
    const blob = r.blobs[t.path]!;
    sendJson(res, created ? 201 : 200, { commit: r.commit, blob, changed: r.changed, created }, {
      etag: `"${r.commit}"`,
      'x-kith-commit': r.commit,
      'x-kith-blob': blob,
      ...(created ? { location: req.url!.split('?')[0]! } : {}),
    });
  } else {
    req.resume();
    if (needExisting && opts.expectedBlob === undefined) {
      const cur = await store.read(t.path);
      if (cur) opts.expectedBlob = cur.blob;
    }
    const r = await store.delete(t.path, opts);
    await after?.(r);
    sendJson(res, 200, { commit: r.commit, changed: r.changed }, { etag: `"${r.commit}"`, 'x-kith-commit': r.commit });
  }
}
