/**
 * The pairing endpoint the supervisor serves (`kith up`, later PID 1): POST /pair/start and
 * /pair/finish with small JSON bodies (at most 16 KiB), answered by PairingServer
 * (pairing.ts). Plain HTTP: CPace protects the exchange. Errors are JSON
 * `{ error }` with the status PairingServer chose (400 bad input, 403 wrong code, 404 no
 * such session, 409 name taken, 410 code expired, 429 throttled with Retry-After).
 *
 * With the supervisor's certificate (`tls`), the port is gated (platform/peer-gate.ts): plain
 * HTTP stays open to anyone for pairing, and TLS from the network needs a client
 * certificate from the appliance CA. There `GET /status` (`status`) answers a paired device
 * (CN=owner, not revoked) or the box itself: how `kith status` and `kith config log` on the
 * owner's machine reach the appliance by mutual TLS, at the port `_kith._tcp` announces.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { TLSSocket } from 'node:tls';
import { isLoopback, listenGated, ownerCertificate } from '../peer-gate.ts';
import { PairingError, type PairingServer } from './pairing.ts';
import type { ServerTls } from './server-tls.ts';

const LIMIT = 16 * 1024;

export interface StatusAccess {
  tls: ServerTls;
  /** True for a revoked device's certificate serial (the supervisor's devices.json, read live). */
  isRevoked(serial: string): boolean;
  /** What GET /status answers. */
  status(): Promise<object>;
}

export async function startPairServer(pairing: PairingServer, host: string, port: number, access?: StatusAccess): Promise<{ port: number; close(): Promise<void> }> {
  const onRequest = (req: IncomingMessage, res: ServerResponse) => {
    const reply = (status: number, body: object, headers: Record<string, string> = {}) => res.writeHead(status, { 'content-type': 'application/json', ...headers }).end(JSON.stringify(body) + '\n');
    if (req.method === 'GET' && req.url === '/status' && access) {
      const serial = (req.socket as TLSSocket).encrypted ? (req.socket as TLSSocket).getPeerCertificate()?.serialNumber : undefined;
      const owner = ownerCertificate(req) && serial !== undefined && !access.isRevoked(serial);
      if (!owner && !isLoopback(req.socket.remoteAddress)) return reply(403, { error: 'GET /status needs a paired device: TLS with the client certificate `kith pair` gave this machine' });
      void access.status().then((b) => reply(200, b), (err: Error) => reply(500, { error: err.message }));
      return;
    }
    const route = req.url === '/pair/start' ? 'start' : req.url === '/pair/finish' ? 'finish' : undefined;
    if (req.method !== 'POST' || !route) return reply(404, { error: `POST /pair/start or /pair/finish${access ? ', or GET /status (mutual TLS)' : ''}` });
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
  };
  // Pairing itself is plain HTTP to anyone (CPace protects it); TLS is for GET /status.
  const gated = await listenGated({ at: { host, port }, onRequest, plain: 'anyone', ...(access ? { tls: access.tls } : {}) });
  return { port: gated.port, close: () => gated.close() };
}
