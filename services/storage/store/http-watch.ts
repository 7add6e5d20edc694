/**
 * GET /store/<repo>[/<path>]?watch: the commits after `since` — a long-poll (200 with
 * `{ head, commits, complete }` once there is one, 204 after the timeout) or, with
 * `Accept: text/event-stream`, a server-sent event stream (one `commit` event per commit,
 * `id:` = the commit, so Last-Event-ID resumes; WHATWG HTML §9.2).
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { HttpError, sendJson } from '../http/kit.ts';
import type { HistoryEntry, Store } from './store.ts';
import type { Target } from './http-target.ts';

const OID_RE = /^[0-9a-f]{40}$/;

export interface WatchOptions {
  /** Long-poll timeout, ms; `timeout=S` may ask for less, up to 60 s. */
  timeoutMs: number;
  heartbeatMs: number;
  /** Closers of pending long-polls and SSE streams (the handler's close() runs them). */
  open: Set<() => void>;
}

export async function handleWatch(req: IncomingMessage, res: ServerResponse, store: Store, t: Target, q: URLSearchParams, o: WatchOptions): Promise<void> {
  const sinceRaw = q.get('since') || (req.headers['last-event-id'] as string | undefined) || undefined;
  if (sinceRaw !== undefined && !OID_RE.test(sinceRaw)) throw new HttpError(400, 'bad-since', 'since must be a 40 hex digit commit id (the head you last saw)');
  const sse = (req.headers.accept ?? '').includes('text/event-stream');
  if (sse) return streamEvents(res, store, t, sinceRaw, o);
  const timeoutRaw = q.get('timeout');
  let timeoutMs = o.timeoutMs;
  if (timeoutRaw !== null && timeoutRaw !== '') {
    const s = Number(timeoutRaw);
    if (!Number.isFinite(s) || s < 0 || s > 60) throw new HttpError(400, 'bad-timeout', 'timeout is in seconds, from 0 to 60');
    timeoutMs = Math.min(s * 1000, o.timeoutMs);
  }
  return longPoll(res, store, sinceRaw, timeoutMs, o);
}

async function streamEvents(res: ServerResponse, store: Store, t: Target, since: string | undefined, o: WatchOptions): Promise<void> {
  res.writeHead(200, { 'content-type': 'text/event-stream; charset=utf-8', 'cache-control': 'no-store', connection: 'keep-alive' });
  const send = (e: HistoryEntry) => {
    if (!t.path || e.changes?.some((c) => c.path === t.path || c.path.startsWith(t.path + '/'))) res.write(`id: ${e.commit}\nevent: commit\ndata: ${JSON.stringify(e)}\n\n`);
  };
  const queue: HistoryEntry[] = [];
  let caughtUp = false;
  const unsubscribe = store.watch((e) => (caughtUp ? send(e) : queue.push(e)));
  const beat = setInterval(() => res.write(': ping\n\n'), o.heartbeatMs);
  beat.unref?.();
  const close = () => {
    unsubscribe();
    clearInterval(beat);
    o.open.delete(close);
    res.end();
  };
  o.open.add(close);
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
}

function longPoll(res: ServerResponse, store: Store, sinceArg: string | undefined, timeoutMs: number, o: WatchOptions): Promise<void> {
  let since = sinceArg;
  return new Promise<void>((resolve) => {
    let done = false;
    let timer: ReturnType<typeof setTimeout> | undefined;
    const finish = (fn: () => void) => {
      if (done) return;
      done = true;
      unsubscribe();
      if (timer) clearTimeout(timer);
      o.open.delete(closeNow);
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
        finish(() => sendJson(res, 500, { error: 'internal', message: String(err) }));
      }
    };
    const unsubscribe = store.watch((e) => {
      if (done) return;
      if (!since) since = e.parents[0]; // no `since`: from the commit before this one
      void reply();
    });
    const closeNow = () => finish(() => sendJson(res, 503, { error: 'shutting-down', message: 'the server is stopping: retry' }));
    o.open.add(closeNow);
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
