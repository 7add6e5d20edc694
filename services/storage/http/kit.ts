/**
 * The storage service's small HTTP kit, shared by its node:http handlers (git smart HTTP,
 * the store API, and the server's router): one error type that knows its status and how to
 * become a response (Hono's HTTPException), one body reader with a limit, one JSON writer,
 * and middleware in Hono's shape — `(c, next) => Promise<void>` — so authentication and the
 * body limit are applied once, before any handler runs (RFC 9110 §15.5.2 401 with
 * WWW-Authenticate, §15.5.14 413).
 *
 * Per-request values a middleware sets (the principal, the live body limit) travel with the
 * request (a WeakMap, like Hono's `c.set`/`c.get`), so handlers that take plain
 * `(req, res)` read them without new parameters.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';

/** An error with its HTTP status, a stable code, and a message that says what to do. */
export class HttpError extends Error {
  override name = 'HttpError';
  readonly status: number;
  readonly code: string;
  readonly headers: Record<string, string>;
  readonly details: Record<string, unknown>;
  constructor(status: number, code: string, message: string, headers: Record<string, string> = {}, details: Record<string, unknown> = {}) {
    super(message);
    this.status = status;
    this.code = code;
    this.headers = headers;
    this.details = details;
  }
  toJSON(): Record<string, unknown> {
    return { error: this.code, message: this.message, ...this.details };
  }
}

export function sendJson(res: ServerResponse, status: number, body: unknown, headers: Record<string, string | number> = {}): void {
  if (res.headersSent) {
    res.destroy();
    return;
  }
  const text = JSON.stringify(body) + '\n';
  res.writeHead(status, { 'content-type': 'application/json; charset=utf-8', 'content-length': Buffer.byteLength(text), 'cache-control': 'no-store', ...headers });
  res.end(text);
}

export function sendText(res: ServerResponse, status: number, text: string, headers: Record<string, string | number> = {}): void {
  if (res.headersSent) {
    res.destroy();
    return;
  }
  res.writeHead(status, { 'content-type': 'text/plain; charset=utf-8', ...headers });
  res.end(text.endsWith('\n') ? text : text + '\n');
}

// ---- per-request values set by middleware ----

interface RequestState {
  principal?: unknown;
  maxBody?: number;
  /** Name of the setting that sets maxBody, for error messages (e.g. "storage/storage.yaml: maxPushBytes"). */
  maxBodyName?: string;
}
const state = new WeakMap<IncomingMessage, RequestState>();
const stateOf = (req: IncomingMessage): RequestState => {
  let s = state.get(req);
  if (!s) state.set(req, (s = {}));
  return s;
};

/** Who the authentication middleware found (undefined: nobody, or no middleware ran). */
export function principalOf<P>(req: IncomingMessage): P | undefined {
  return state.get(req)?.principal as P | undefined;
}
export function setPrincipal(req: IncomingMessage, p: unknown): void {
  stateOf(req).principal = p;
}

/** The body limit the bodyLimit middleware set for this request, and the setting's name. */
export function bodyLimitOf(req: IncomingMessage): { max: number; name: string } | undefined {
  const s = state.get(req);
  return s?.maxBody === undefined ? undefined : { max: s.maxBody, name: s.maxBodyName ?? 'maxBody' };
}

/**
 * The request body, streamed into memory up to `max` bytes (default: the limit the
 * bodyLimit middleware set). Over the limit: 413 naming the limit, without reading the rest.
 */
export async function readBody(req: IncomingMessage, max?: number, limitName?: string): Promise<Buffer> {
  const set = bodyLimitOf(req);
  const limit = max ?? set?.max ?? 8 << 20;
  const name = limitName ?? set?.name ?? 'maxBody';
  const tooLarge = (what: string) => new HttpError(413, 'too-large', `${what}, over the limit ${name} = ${limit} bytes: send less, or raise ${name}`, { connection: 'close' }, { limit: name, max: limit });
  const declared = req.headers['content-length'];
  if (declared !== undefined && Number(declared) > limit) throw tooLarge(`the body is ${declared} bytes`);
  const chunks: Buffer[] = [];
  let size = 0;
  try {
    for await (const chunk of req as AsyncIterable<Buffer>) {
      size += chunk.length;
      if (size > limit) throw tooLarge(`the body is over ${limit} bytes`);
      chunks.push(chunk);
    }
  } catch (err) {
    if (err instanceof HttpError) throw err;
    throw new ClientGone('the client went away during the upload');
  }
  return Buffer.concat(chunks);
}

/** The client closed the connection mid-request or mid-response: not a server fault, nothing to log. */
export class ClientGone extends Error {
  override name = 'ClientGone';
}

// ---- middleware, in Hono's shape ----

export interface Ctx {
  req: IncomingMessage;
  res: ServerResponse;
}
export type Middleware = (c: Ctx, next: () => Promise<void>) => Promise<void>;

/** One handler from a chain of middleware; the last one usually does not call next. */
export function compose(...chain: Middleware[]): (c: Ctx) => Promise<void> {
  return (c) => {
    const run = async (i: number): Promise<void> => {
      const mw = chain[i];
      if (mw) await mw(c, () => run(i + 1));
    };
    return run(0);
  };
}

/** Errors thrown further down become responses: `render` for HttpError, 500 (and `onError`) for the rest. */
export function catchErrors(render: (c: Ctx, err: HttpError) => void, onError?: (err: unknown, c: Ctx) => void): Middleware {
  return async (c, next) => {
    try {
      await next();
    } catch (err) {
      const e = err instanceof HttpError ? err : toHttpError(err);
      if (!e) {
        if (err instanceof ClientGone) return void c.res.destroy();
        onError?.(err, c);
        if (!c.res.headersSent) render(c, new HttpError(500, 'internal', 'the request failed inside the server; it was logged'));
        else c.res.destroy();
        return;
      }
      render(c, e);
      // A refused upload: don't read the rest of a large body; close once answered.
      if (!c.req.complete) c.res.on('finish', () => c.req.destroy());
    }
  };
}

/** Errors of lower layers that carry an HTTP status (StoreError) map here, without importing them. */
function toHttpError(err: unknown): HttpError | undefined {
  const e = err as { status?: unknown; code?: unknown; message?: unknown; toJSON?: () => Record<string, unknown> };
  if (err instanceof Error && typeof e.status === 'number' && typeof e.code === 'string' && typeof e.toJSON === 'function') {
    const { error: _code, message: _msg, ...details } = e.toJSON();
    return new HttpError(e.status, e.code, String(e.message), e.code === 'locked' ? { 'retry-after': '1' } : {}, details);
  }
  return undefined;
}

/** JSON errors `{ error, message, ...details }` (the store API). */
export const renderJson = (c: Ctx, err: HttpError): void => sendJson(c.res, err.status, err.toJSON(), err.headers);
/** Plain-text errors (git clients print the body). */
export const renderText = (c: Ctx, err: HttpError): void => sendText(c.res, err.status, err.message, { ...err.headers, 'cache-control': 'no-cache, max-age=0, must-revalidate' });

export const unauthorized = (realm = 'kith'): HttpError =>
  new HttpError(401, 'unauthorized', 'authenticate: send the access token (HTTP Basic password, as git does with http://kith:TOKEN@host/, or Bearer) or a client certificate', {
    'www-authenticate': `Basic realm="${realm}", charset="UTF-8"`,
  });

/** Find who is asking, once per request; anonymous requests are refused with 401. */
export function authenticate<P>(who: (req: IncomingMessage) => P | undefined): Middleware {
  return async (c, next) => {
    const p = who(c.req);
    if (p === undefined) throw unauthorized();
    setPrincipal(c.req, p);
    await next();
  };
}

/**
 * The largest body a request may send, read at each request (so a limit changed in config
 * applies to the very next request), checked against Content-Length at once and enforced
 * again by readBody while the body streams. `answeredByHandler`: requests whose handler
 * refuses an oversize body itself, in its protocol (a git push: `remote:` lines).
 */
export function bodyLimit(max: () => number, name: string, answeredByHandler?: (req: IncomingMessage) => boolean): Middleware {
  return async (c, next) => {
    const limit = max();
    const s = stateOf(c.req);
    s.maxBody = limit;
    s.maxBodyName = name;
    const declared = c.req.headers['content-length'];
    if (declared !== undefined && Number(declared) > limit && !answeredByHandler?.(c.req)) {
      throw new HttpError(413, 'too-large', `the body is ${declared} bytes, over the limit ${name} = ${limit} bytes: send less, or raise ${name}`, { connection: 'close' }, { limit: name, max: limit });
    }
    await next();
  };
}
