// Smart HTTP transport for git (gitprotocol-http(5)): routes, auth seam, gzip
// request bodies, and error mapping. The protocol engines live in upload-pack.ts
// and receive-pack.ts; this file is the thin I/O shell around them.
import fs from 'node:fs';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { promises as fsp } from 'node:fs';
import { createGunzip, createInflate, gunzip, inflate } from 'node:zlib';
import { promisify } from 'node:util';
import { ClientGone, HttpError, catchErrors, compose, readBody, renderText } from '../http/kit.ts';
import * as git from 'isomorphic-git';
import { closeStore, openStore } from './objects.ts';
import { readPushBody, type PushBody, type ReceivedPack } from './push-body.ts';
import { FLUSH, PktLineError, pktLine } from './pktline.ts';
import { V0_RECEIVE_CAPS, receivePack, refusePush, type ReceiveHooks } from './receive-pack.ts';
import type { InflateLimits } from './index-pack.ts';
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
  /** Largest accepted (decompressed) push body, read at each push (a config change applies to the next one). Default 256 MiB. */
  maxPushBytes?: number | (() => number);
  /** Where the push limits are set, for messages (e.g. "storage/storage.yaml"). */
  limitsFile?: string;
  /** The largest a repository may grow on disk, read at each push (the pack is refused past it). */
  maxRepoBytes?(): number;
  /** Inflated-size limits of pushed objects, read at each push. Default: index-pack.ts's. */
  inflateLimits?(): InflateLimits;
  /** Largest accepted (decompressed) fetch request body. Default 16 MiB. */
  maxRequestBytes?: number;
  /** Called on unexpected errors (bugs), for logging. */
  onError?(err: unknown, info: { repo?: string; path: string }): void;
}

const gunzipAsync = promisify(gunzip);
const inflateAsync = promisify(inflate);

const ROUTE = /^\/([A-Za-z0-9_][A-Za-z0-9._-]*?)(?:\.git)?\/(info\/refs|git-upload-pack|git-receive-pack)$/;

const NO_CACHE = {
  'Cache-Control': 'no-cache, max-age=0, must-revalidate',
  Pragma: 'no-cache',
  Expires: 'Fri, 01 Jan 1980 00:00:00 GMT',
};

/** The request body, decompressed (git sends gzip), at most `limit` bytes either way. */
async function readGitBody(req: IncomingMessage, limit: number, limitName: string): Promise<Buffer> {
  const enc = (req.headers['content-encoding'] ?? 'identity').toLowerCase();
  if (!['identity', 'gzip', 'x-gzip', 'deflate'].includes(enc)) throw new HttpError(415, 'bad-encoding', `unsupported Content-Encoding: ${enc}`);
  const raw = await readBody(req, limit, limitName);
  if (enc === 'identity') return raw;
  try {
    const opts = { maxOutputLength: limit };
    return enc === 'deflate' ? await inflateAsync(raw, opts) : await gunzipAsync(raw, opts);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ERR_BUFFER_TOO_LARGE') throw new HttpError(413, 'too-large', `the request body inflates to more than ${limit} bytes, over the limit ${limitName}`);
    throw new HttpError(400, 'bad-body', `bad ${enc} request body`);
  }
}

/**
 * A push body as it arrives: the command list in memory, the pack streamed to a temp file
 * (push-body.ts), decompressed on the way when git sent it gzipped. Over the limit, the
 * answer refusing it, made from its first bytes (the command list) after the rest was read
 * and dropped: git reads no answer before it has sent everything, and then prints ours as
 * `remote:` lines.
 */
async function readPush(req: IncomingMessage, gitdir: string, limit: number, reason: string): Promise<{ head: Buffer; pack?: ReceivedPack } | { refused: Buffer }> {
  const enc = (req.headers['content-encoding'] ?? 'identity').toLowerCase();
  if (!['identity', 'gzip', 'x-gzip', 'deflate'].includes(enc)) throw new HttpError(415, 'bad-encoding', `unsupported Content-Encoding: ${enc}`);
  const body: AsyncIterable<Buffer> = enc === 'identity' ? req : req.pipe(enc === 'deflate' ? createInflate() : createGunzip());
  let got: PushBody;
  try {
    // Past the limit the rest is read and dropped so git reads our answer; not a compressed
    // body, whose rest could inflate without end.
    got = await readPushBody(body, gitdir, limit, { drainCap: enc === 'identity' ? Math.max(limit * 16, 1 << 30) : limit });
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code?.startsWith('Z_')) throw new HttpError(400, 'bad-body', `bad ${enc} request body`);
    if (req.destroyed || req.readableAborted || (err as NodeJS.ErrnoException).code === 'ECONNRESET') throw new ClientGone('the client went away during the upload');
    throw err;
  }
  if ('refused' in got) {
    if (!req.readableEnded) req.destroy();
    return { refused: refusePush(got.head.subarray(0, 1 << 20), reason.replace('{size}', String(got.size)), 'push too large') };
  }
  return got;
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
    if (Buffer.isBuffer(chunk)) res.write(chunk);
    else {
      // Corked, the pieces leave as one HTTP chunk in one writev, not copied together.
      res.cork();
      for (const b of chunk) res.write(b);
      res.uncork();
    }
    if (res.writableNeedDrain) {
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
  const maxPush = (): number => (typeof opts.maxPushBytes === 'function' ? opts.maxPushBytes() : (opts.maxPushBytes ?? 256 * 1024 * 1024));
  const maxReq = opts.maxRequestBytes ?? 16 * 1024 * 1024;

  async function handle(req: IncomingMessage, res: ServerResponse, info: { repo?: string; path: string }): Promise<void> {
    const url = new URL(req.url ?? '/', 'http://localhost');
    const m = ROUTE.exec(url.pathname);
    if (!m) throw new HttpError(404, 'not-found', 'not found');
    const [, repo, action] = m;
    info.repo = repo;
    if (!isValidRepoName(repo)) throw new HttpError(400, 'bad-repo', 'invalid repository name');
    let service: GitService;
    if (action === 'info/refs') {
      if (req.method !== 'GET' && req.method !== 'HEAD') throw new HttpError(405, 'method-not-allowed', 'use GET', { Allow: 'GET' });
      const s = url.searchParams.get('service');
      if (s !== 'git-upload-pack' && s !== 'git-receive-pack') throw new HttpError(403, 'dumb-http', 'dumb HTTP is not supported: use a smart git client');
      service = s;
    } else {
      if (req.method !== 'POST') throw new HttpError(405, 'method-not-allowed', 'use POST', { Allow: 'POST' });
      service = action as GitService;
    }
    if (opts.authorize && !(await opts.authorize(req, { repo, service }))) {
      throw new HttpError(401, 'unauthorized', 'authentication required', { 'WWW-Authenticate': 'Basic realm="kith", charset="UTF-8"' });
    }
    if (!(await repoExists(opts.root, repo))) throw new HttpError(404, 'no-such-repo', `repository ${repo} not found`);
    const gitdir = repoPath(opts.root, repo);
    const store = openStore(gitdir);
    // The pack files it opens are closed whatever happens.
    try {
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
      if (ctype !== `application/x-${service}-request`) throw new HttpError(415, 'bad-content-type', `expected Content-Type application/x-${service}-request`);
      const out = responseSink(res, `application/x-${service}-result`);
      let body: Buffer | undefined;
      let push: { head: Buffer; pack?: ReceivedPack } | undefined;
      if (service === 'git-receive-pack') {
        const limit = maxPush();
        const where = opts.limitsFile ? ` (${opts.limitsFile}: maxPushBytes)` : '';
        const got = await readPush(req, gitdir, limit, `this push is {size} bytes, over the limit maxPushBytes = ${limit} bytes${where}; nothing changed: push fewer commits at a time, or raise the limit`);
        if ('refused' in got) {
          await out(got.refused);
          res.end();
          return;
        }
        push = got;
      } else body = await readGitBody(req, maxReq, 'maxRequestBytes');
      try {
        if (body) {
          if (v2) await uploadPackV2(store, body, out);
          else await uploadPackV0(store, body, out);
        } else {
          const allow = await nonFastForwardAllowed(opts, repo, gitdir);
          await receivePack({
            repo,
            store,
            hooks: opts.hooks,
            allowNonFastForward: allow,
            limits: opts.inflateLimits?.(),
            repoLimit: opts.maxRepoBytes ? { max: opts.maxRepoBytes(), name: opts.limitsFile ? `maxRepoBytes (${opts.limitsFile}: maxRepoBytes)` : 'maxRepoBytes' } : undefined,
            onError: (err) => opts.onError?.(err, { repo, path: req.url ?? '' }),
          }, push!.head, push!.pack, out);
        }
      } catch (err) {
        // Semantic errors become an ERR packet the client prints as "remote error: ...".
        if (err instanceof ProtocolError && !res.headersSent) await out(pktLine(`ERR ${err.message}`));
        else if (err instanceof PktLineError && !res.headersSent) throw new HttpError(400, 'malformed', `malformed request: ${err.message}`);
        else throw err;
      } finally {
        if (push?.pack) await fsp.rm(push.pack.file, { force: true }); // kept only if stored (renamed)
      }
      if (!res.headersSent) res.writeHead(200, { 'Content-Type': `application/x-${service}-result`, ...NO_CACHE });
      res.end();
    } finally {
      await closeStore(store);
    }
  }

  const chain = compose(
    catchErrors((c, err) => {
      renderText(c, err);
      // Drain what's left of a refused upload so the connection can be reused.
      c.req.resume();
    }, (err, c) => opts.onError?.(err, { path: c.req.url ?? '' })),
    async ({ req, res }) => handle(req, res, { path: req.url ?? '' }),
  );
  return (req, res) => void chain({ req, res });
}
