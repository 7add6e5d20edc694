/**
 * The pairing endpoint the supervisor serves (`kith up`, later PID 1): POST /pair/start and
 * /pair/finish with small JSON bodies (at most 16 KiB), answered by PairingServer
 * (pairing.ts). Plain HTTP: CPace protects the exchange. Errors are JSON
 * `{ error }` with the status PairingServer chose (400 bad input, 403 wrong code, 404 no
 * such session, 409 name taken, 410 code expired, 429 throttled with Retry-After).
 */
import { createServer, type Server } from 'node:http';
import { PairingError, type PairingServer } from './pairing.ts';

const LIMIT = 16 * 1024;

export async function startPairServer(pairing: PairingServer, host: string, port: number): Promise<{ server: Server; port: number; close(): Promise<void> }> {
  const server = createServer((req, res) => {
    const reply = (status: number, body: object, headers: Record<string, string> = {}) => res.writeHead(status, { 'content-type': 'application/json', ...headers }).end(JSON.stringify(body) + '\n');
    const route = req.url === '/pair/start' ? 'start' : req.url === '/pair/finish' ? 'finish' : undefined;
    if (req.method !== 'POST' || !route) return reply(404, { error: 'POST /pair/start or /pair/finish' });
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (c: Buffer) => {
      size += c.length;
      if (size > LIMIT) {
        reply(413, { error: `body over ${LIMIT} bytes` });
        req.destroy();
      } else chunks.push(c);
    });
    req.on('end', () => {
      if (res.headersSent) return;
      let body: Record<string, unknown>;
      try {
        const v = JSON.parse(Buffer.concat(chunks).toString('utf8')) as unknown;
        if (typeof v !== 'object' || v === null || Array.isArray(v)) throw new Error('not an object');
        body = v as Record<string, unknown>;
      } catch {
        return reply(400, { error: 'expected a JSON object' });
      }
      Promise.resolve()
        .then((): Promise<object> | object => (route === 'start' ? pairing.start(body) : pairing.finish(body)))
        .then((r) => reply(200, r), (err: unknown) => {
          if (err instanceof PairingError) {
            const retry: Record<string, string> = err.retryAfterMs !== undefined ? { 'retry-after': String(Math.ceil(err.retryAfterMs / 1000)) } : {};
            return reply(err.status, { error: err.message, ...(err.retryAfterMs !== undefined ? { retryAfterMs: err.retryAfterMs } : {}) }, retry);
          }
          reply(500, { error: 'internal error' });
        });
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => resolve());
  });
  const actual = (server.address() as { port: number }).port;
  return { server, port: actual, close: () => new Promise((r) => server.close(() => r())) };
}
