// Smart HTTP transport for git (gitprotocol-http(5)): routes, auth seam, gzip
// request bodies, and error mapping. The protocol engines live in upload-pack.ts
// and receive-pack.ts; this file is the thin I/O shell around them.
import fs from 'node:fs';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { gunzip, inflate } from 'node:zlib';
import { promisify } from 'node:util';
import * as git from 'isomorphic-git';
import { openStore } from './objects.ts';
import { FLUSH, PktLineError, pktLine } from './pktline.ts';
import { V0_RECEIVE_CAPS, receivePack, type ReceiveHooks } from './receive-pack.ts';
import { isValidRepoName, repoExists, repoPath } from './repos.ts';
import { ProtocolError, V0_UPLOAD_CAPS, advertiseRefsV0, advertiseV2, uploadPackV0, uploadPackV2, type Sink } from './upload-pack.ts';

export type GitService = 'git-upload-pack' | 'git-receive-pack';

export interface GitHttpOptions {
  root: string;
  /** Return false to answer 401 with a Basic challenge. Default: allow. */
  authorize?(req: IncomingMessage, info: { repo: string; service: GitService }): boolean | Promise<boolean>;
  hooks?: ReceiveHooks;
  /**
   * Whether a push may rewrite history. Default: the repository's git config
   * `receive.denyNonFastForwards` must be explicitly false; otherwise refused.
   */
  allowNonFastForward?(repo: string): boolean | Promise<boolean>;
  /** Largest accepted (decompressed) push body. Default 256 MiB. */
  maxPushBytes?: number;
  /** Largest accepted (decompressed) fetch request body. Default 16 MiB. */
  maxRequestBytes?: number;
  /** Called on unexpected errors (bugs), for logging. */
  onError?(err: unknown, info: { repo?: string; path: string }): void;
}

const gunzipAsync = promisify(gunzip);
const inflateAsync = promisify(inflate);

class HttpError extends Error {
  override name = 'HttpError';
  status: number;
  headers: Record<string, string>;
  constructor(status: number, message: string, headers: Record<string, string> = {}) {
    super(message);
    this.status = status;
    this.headers = headers;
  }
}

/** The client closed the connection mid-request or mid-response: not a server fault, nothing to log. */
class ClientGone extends Error {
  override name = 'ClientGone';
}

const ROUTE = /^\/([A-Za-z0-9_][A-Za-z0-9._-]*?)(?:\.git)?\/(info\/refs|git-upload-pack|git-receive-pack)$/;

const NO_CACHE = {
  'Cache-Control': 'no-cache, max-age=0, must-revalidate',
  Pragma: 'no-cache',
  Expires: 'Fri, 01 Jan 1980 00:00:00 GMT',
};

async function readBody(req: IncomingMessage, limit: number): Promise<Buffer> {
  const enc = (req.headers['content-encoding'] ?? 'identity').toLowerCase();
  if (!['identity', 'gzip', 'x-gzip', 'deflate'].includes(enc)) throw new HttpError(415, `unsupported Content-Encoding: ${enc}`);
  const chunks: Buffer[] = [];
  let size = 0;
  try {
    for await (const chunk of req) {
      size += (chunk as Buffer).length;
      if (size > limit) throw new HttpError(413, `request body larger than ${limit} bytes`);
      chunks.push(chunk as Buffer);
    }
  } catch (err) {
    if (err instanceof HttpError) throw err;
    throw new ClientGone('client went away during the upload'); // aborted / ECONNRESET
  }
  const raw = Buffer.concat(chunks);
  if (enc === 'identity') return raw;
  try {
    const opts = { maxOutputLength: limit };
    return enc === 'deflate' ? await inflateAsync(raw, opts) : await gunzipAsync(raw, opts);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ERR_BUFFER_TOO_LARGE') throw new HttpError(413, `request body larger than ${limit} bytes`);
    throw new HttpError(400, `bad ${enc} request body`);
  }
}

function gitProtocolV2(req: IncomingMessage): boolean {
  const h = req.headers['git-protocol'];
  const v = Array.isArray(h) ? h.join(':') : (h ?? '');
  return v.split(':').includes('version=2');
}

async function nonFastForwardAllowed(opts: GitHttpOptions, repo: string, gitdir: string): Promise<boolean> {
  if (opts.allowNonFastForward) return opts.allowNonFastForward(repo);
  try {
    const v: unknown = await git.getConfig({ fs, gitdir, path: 'receive.denyNonFastForwards' });
    return v === false || v === 'false';
  } catch {
    return false;
  }
}

/** A Sink over the response: headers go out with the first chunk; honours backpressure. */
function responseSink(res: ServerResponse, contentType: string): Sink {
  return async (chunk) => {
    if (res.destroyed) throw new ClientGone('client went away');
    if (!res.headersSent) res.writeHead(200, { 'Content-Type': contentType, ...NO_CACHE });
    if (!res.write(chunk)) {
      await new Promise<void>((resolve) => {
        const done = () => {
          res.off('drain', done);
          res.off('close', done);
          resolve();
        };
        res.on('drain', done);
        res.on('close', done);
      });
    }
  };
}

export function createGitHttpHandler(opts: GitHttpOptions): (req: IncomingMessage, res: ServerResponse) => void {
  const maxPush = opts.maxPushBytes ?? 256 * 1024 * 1024;
  const maxReq = opts.maxRequestBytes ?? 16 * 1024 * 1024;

  async function handle(req: IncomingMessage, res: ServerResponse, info: { repo?: string; path: string }): Promise<void> {
    const url = new URL(req.url ?? '/', 'http://localhost');
    const m = ROUTE.exec(url.pathname);
    if (!m) throw new HttpError(404, 'not found');
    const [, repo, action] = m;
    info.repo = repo;
    if (!isValidRepoName(repo)) throw new HttpError(400, 'invalid repository name');
    let service: GitService;
    if (action === 'info/refs') {
      if (req.method !== 'GET' && req.method !== 'HEAD') throw new HttpError(405, 'use GET', { Allow: 'GET' });
      const s = url.searchParams.get('service');
      if (s !== 'git-upload-pack' && s !== 'git-receive-pack') throw new HttpError(403, 'dumb HTTP is not supported: use a smart git client');
      service = s;
    } else {
      if (req.method !== 'POST') throw new HttpError(405, 'use POST', { Allow: 'POST' });
      service = action as GitService;
    }
    if (opts.authorize && !(await opts.authorize(req, { repo, service }))) {
      throw new HttpError(401, 'authentication required', { 'WWW-Authenticate': 'Basic realm="kith", charset="UTF-8"' });
    }
    if (!(await repoExists(opts.root, repo))) throw new HttpError(404, `repository ${repo} not found`);
    const gitdir = repoPath(opts.root, repo);
    const store = openStore(gitdir);
    const v2 = gitProtocolV2(req) && service === 'git-upload-pack';

    if (action === 'info/refs') {
      const parts = v2
        ? advertiseV2()
        : [
            pktLine(`# service=${service}`),
            FLUSH,
            ...(await advertiseRefsV0(
              store,
              service === 'git-upload-pack' ? V0_UPLOAD_CAPS : V0_RECEIVE_CAPS,
              service === 'git-upload-pack',
            )),
          ];
      const body = Buffer.concat(parts);
      res.writeHead(200, { 'Content-Type': `application/x-${service}-advertisement`, 'Content-Length': body.length, ...NO_CACHE });
      res.end(req.method === 'HEAD' ? undefined : body);
      return;
    }

    const ctype = (req.headers['content-type'] ?? '').split(';')[0].trim().toLowerCase();
    if (ctype !== `application/x-${service}-request`) throw new HttpError(415, `expected Content-Type application/x-${service}-request`);
    const body = await readBody(req, service === 'git-receive-pack' ? maxPush : maxReq);
    const out = responseSink(res, `application/x-${service}-result`);
    try {
      if (service === 'git-upload-pack') {
        if (v2) await uploadPackV2(store, body, out);
        else await uploadPackV0(store, body, out);
      } else {
        const allow = await nonFastForwardAllowed(opts, repo, gitdir);
        await receivePack({ repo, store, hooks: opts.hooks, allowNonFastForward: allow }, body, out);
      }
    } catch (err) {
      // Semantic errors become an ERR packet the client prints as "remote error: ...".
      if (err instanceof ProtocolError && !res.headersSent) await out(pktLine(`ERR ${err.message}`));
      else if (err instanceof PktLineError && !res.headersSent) throw new HttpError(400, `malformed request: ${err.message}`);
      else throw err;
    }
    if (!res.headersSent) res.writeHead(200, { 'Content-Type': `application/x-${service}-result`, ...NO_CACHE });
    res.end();
  }

  return (req, res) => {
    const info: { repo?: string; path: string } = { path: req.url ?? '' };
    handle(req, res, info).catch((err: unknown) => {
      if (err instanceof HttpError) {
        if (!res.headersSent) {
          res.writeHead(err.status, { 'Content-Type': 'text/plain; charset=utf-8', ...err.headers, ...NO_CACHE });
          res.end(err.message + '\n');
        } else res.destroy();
        // Drain what's left of a refused upload so the connection can be reused.
        req.resume();
        return;
      }
      if (!(err instanceof ClientGone)) opts.onError?.(err, info);
      if (!res.headersSent) {
        res.writeHead(500, { 'Content-Type': 'text/plain; charset=utf-8' });
        res.end('internal error\n');
      } else res.destroy();
    });
  };
}
