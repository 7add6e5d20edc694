/**
 * The peer for the storage benchmark: Debian git's `git http-backend` run as a CGI script
 * (RFC 3875; git-http-backend(1)) behind a small Node HTTP server — what Apache or nginx +
 * fcgiwrap would do. Basic auth with the same token kith uses, so both sides pay the same
 * 401 round trip; gzip request bodies are inflated here; the CGI `Status:` header becomes
 * the HTTP status.
 */
import { spawn } from 'node:child_process';
import * as http from 'node:http';
import { createGunzip, createInflate } from 'node:zlib';
import { parseCgiHead } from './cgi.ts';

export const HTTP_BACKEND = '/usr/lib/git-core/git-http-backend';

export interface CgiHost {
  url: string;
  close(): Promise<void>;
}

export async function startCgiHost(projectRoot: string, user: string, password: string, backend = HTTP_BACKEND): Promise<CgiHost> {
  const expected = 'Basic ' + Buffer.from(`${user}:${password}`).toString('base64');
  const server = http.createServer((req, res) => {
    if (req.headers.authorization !== expected) {
      res.writeHead(401, { 'WWW-Authenticate': 'Basic realm="git"', 'content-type': 'text/plain' });
      res.end('authentication required\n');
      return;
    }
    const url = new URL(req.url ?? '/', 'http://host');
    const encoding = (req.headers['content-encoding'] ?? '').toLowerCase();
    const env: NodeJS.ProcessEnv = {
      PATH: process.env.PATH,
      GATEWAY_INTERFACE: 'CGI/1.1',
      SERVER_PROTOCOL: `HTTP/${req.httpVersion}`,
      GIT_PROJECT_ROOT: projectRoot,
      GIT_HTTP_EXPORT_ALL: '1',
      REMOTE_USER: user,
      REMOTE_ADDR: req.socket.remoteAddress ?? '127.0.0.1',
      AUTH_TYPE: 'Basic',
      REQUEST_METHOD: req.method ?? 'GET',
      PATH_INFO: decodeURIComponent(url.pathname),
      QUERY_STRING: url.search.slice(1),
      CONTENT_TYPE: req.headers['content-type'] ?? '',
      // git's own protocol v2 switch travels in this header (gitprotocol-http(5)).
      ...(req.headers['git-protocol'] ? { GIT_PROTOCOL: String(req.headers['git-protocol']) } : {}),
      // Pushes are off by default for http-backend; on, as for kith.
      GIT_CONFIG_COUNT: '1',
      GIT_CONFIG_KEY_0: 'http.receivepack',
      GIT_CONFIG_VALUE_0: 'true',
    };
    // Bodies are streamed (often chunked), so no CONTENT_LENGTH unless the client sent one
    // and we pass the bytes through untouched: http-backend then reads to EOF.
    if (!encoding && req.headers['content-length']) env.CONTENT_LENGTH = req.headers['content-length'];
    const cgi = spawn(backend, [], { env, stdio: ['pipe', 'pipe', 'pipe'] });
    let stderr = '';
    cgi.stderr.on('data', (d) => { stderr += d; });
    cgi.stdin.on('error', () => {}); // the script may exit before reading everything
    const fail = (status: number, msg: string) => {
      if (!res.headersSent) res.writeHead(status, { 'content-type': 'text/plain' });
      res.end(msg + '\n');
    };
    let body: NodeJS.ReadableStream = req;
    if (encoding === 'gzip' || encoding === 'x-gzip') body = req.pipe(createGunzip());
    else if (encoding === 'deflate') body = req.pipe(createInflate());
    else if (encoding && encoding !== 'identity') {
      cgi.kill();
      return fail(415, `unsupported Content-Encoding ${encoding}`);
    }
    body.on('error', () => { cgi.kill(); fail(400, 'bad request body'); });
    body.pipe(cgi.stdin);

    let head: Buffer | null = Buffer.alloc(0);
    cgi.stdout.on('data', (chunk: Buffer) => {
      if (head === null) {
        if (!res.write(chunk)) { cgi.stdout.pause(); res.once('drain', () => cgi.stdout.resume()); }
        return;
      }
      head = Buffer.concat([head, chunk]);
      let parsed;
      try {
        parsed = parseCgiHead(head);
      } catch (err) {
        cgi.kill();
        return fail(502, (err as Error).message);
      }
      if (!parsed) return;
      const rest = head.subarray(parsed.bodyOffset);
      head = null;
      res.writeHead(parsed.status, parsed.reason, parsed.headers.flat());
      if (rest.length) res.write(rest);
    });
    cgi.once('close', (code) => {
      if (head !== null) return fail(502, `http-backend exited with ${code} before its headers: ${stderr}`);
      res.end();
    });
    res.once('close', () => { if (cgi.exitCode === null) cgi.kill(); });
  });
  server.requestTimeout = 0;
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  return {
    url: `http://127.0.0.1:${port}`,
    close: () => new Promise((resolve) => { server.closeAllConnections(); server.close(() => resolve()); }),
  };
}
