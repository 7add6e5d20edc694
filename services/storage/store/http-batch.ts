/**
 * POST /store/<repo>?batch: several files as ONE commit (Store.writeMany), what a CalDAV
 * collection delete or move needs. The body is JSON
 *   { changes: [{ path, content (base64) | delete: true, expectedBlob?: oid | null }], message? }
 * `If-Match: "<commit>"` is compare-and-swap on the head, as on every write; each change's
 * expectedBlob is the per-file swap. Answers 200 { commit, blobs, changed, created }.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { HttpError, readBody, sendJson } from '../http/kit.ts';
import type { Author, ManyChange, Store, WriteResult } from './store.ts';
import type { Target } from './http-target.ts';
import { OID_RE, parseEtagHeader } from './http-write.ts';

const SHAPE = '{ changes: [{ path, content (base64) | delete: true, expectedBlob? }], message? }';

export async function handleBatch(req: IncomingMessage, res: ServerResponse, store: Store, t: Target, author: Author | undefined, maxBody: number | undefined, after?: (r: WriteResult) => Promise<void>): Promise<void> {
  if (t.path !== '' || t.dirForm) throw new HttpError(400, 'bad-path', `a batch goes to the repository itself: POST /store/${t.repo}?batch`);
  const ifMatch = parseEtagHeader(req.headers['if-match'], 'If-Match');
  if (ifMatch === '*') throw new HttpError(400, 'bad-precondition', 'on a batch, If-Match is the head commit, "<40 hex digits>"');
  // base64 grows the content by a third; the JSON around it is small.
  const raw = await readBody(req, Math.ceil(((maxBody ?? store.limits.maxFileBytes) * 4) / 3) + 65_536, 'maxPushBytes');
  let body: { changes?: unknown; message?: unknown };
  try {
    body = JSON.parse(raw.toString('utf8')) as typeof body;
  } catch {
    throw new HttpError(400, 'bad-json', `the body must be JSON: ${SHAPE}`);
  }
  if (!Array.isArray(body.changes) || body.changes.length === 0) throw new HttpError(400, 'bad-changes', `changes must be a non-empty list: ${SHAPE}`);
  const changes = body.changes.map((c: unknown, i: number): ManyChange => {
    const o = (c ?? {}) as { path?: unknown; content?: unknown; delete?: unknown; expectedBlob?: unknown };
    if (typeof o.path !== 'string') throw new HttpError(400, 'bad-changes', `changes.${i}.path must be a string`);
    if (o.delete !== true && typeof o.content !== 'string') throw new HttpError(400, 'bad-changes', `changes.${i}: give content (base64) or delete: true`);
    if (o.expectedBlob !== undefined && o.expectedBlob !== null && !(typeof o.expectedBlob === 'string' && OID_RE.test(o.expectedBlob))) throw new HttpError(400, 'bad-changes', `changes.${i}.expectedBlob must be a blob id or null`);
    return { path: o.path, content: o.delete === true ? null : new Uint8Array(Buffer.from(o.content as string, 'base64')), ...(o.expectedBlob !== undefined ? { expectedBlob: o.expectedBlob as string | null } : {}) };
  });
  const r = await store.writeMany(changes, { ...(typeof body.message === 'string' ? { message: body.message } : {}), ...(author ? { author } : {}), ...(ifMatch ? { expectedHead: ifMatch } : {}) });
  if (after) await after(r);
  sendJson(res, 200, { commit: r.commit, blobs: r.blobs, changed: r.changed, created: r.created }, { etag: `"${r.commit}"`, 'x-kith-commit': r.commit });
}
