/**
 * The management API `kith mail queue` talks to (its own `control` listener, HTTP, JSON):
 *
 *   GET    /queue              every queued message: id, from, to, bytes, attempts, next try, last error
 *   POST   /queue/retry        try every message now;  POST /queue/<id>/retry  one
 *   DELETE /queue/<id>         drop one message (no delivery, no bounce)
 *
 * The port is gated (platform/peer-gate.ts): from the network only by mutual TLS with a
 * certificate from the appliance CA; plain HTTP from the box itself. A request is the owner's
 * with a paired device's certificate (CN=owner, verified at the handshake) or the owner's
 * access token (Bearer, or the password of HTTP Basic) checked against its provisioned hash;
 * anything else is 401.
 */
import type * as http from 'node:http';
import type { Logger } from '../../platform/log.ts';
import { listenGated, ownerCertificate } from '../../platform/peer-gate.ts';
import type { RevocationList } from '../../platform/pki/revocation.ts';
import type { ServerTls } from '../../platform/pki/server-tls.ts';
import type { MailQueue } from './queue/queue.ts';
import { isQueueId } from './queue/spool.ts';

export function presentedToken(header: string | undefined): string | undefined {
  const h = header ?? '';
  const basic = /^Basic\s+([A-Za-z0-9+/=]+)\s*$/i.exec(h);
  if (basic) {
    const d = Buffer.from(basic[1]!, 'base64').toString('utf8');
    return d.includes(':') ? d.slice(d.indexOf(':') + 1) : d;
  }
  return /^Bearer\s+(\S+)\s*$/i.exec(h)?.[1];
}

export async function startControl(o: { host: string; port: number; queue: MailQueue; checkOwner: (token: string) => Promise<boolean>; log: Logger; tls?: ServerTls; revoked?: RevocationList }): Promise<{ url: string; close(): Promise<void> }> {
  const send = (res: http.ServerResponse, code: number, body: unknown) => res.writeHead(code, { 'content-type': 'application/json' }).end(JSON.stringify(body) + '\n');
  const onRequest = (req: http.IncomingMessage, res: http.ServerResponse) => {
    void (async () => {
      const token = presentedToken(req.headers.authorization);
      if (!ownerCertificate(req) && (!token || !(await o.checkOwner(token)))) {
        return send(res, 401, { error: 'unauthorized', hint: 'send the access token kith up prints, as a Bearer token' });
      }
      const url = new URL(req.url ?? '/', 'http://x');
      const parts = url.pathname.split('/').filter(Boolean);
      if (parts[0] !== 'queue') return send(res, 404, { error: 'not found', hint: 'GET /queue, POST /queue/retry, POST /queue/<id>/retry, DELETE /queue/<id>' });
      if (req.method === 'GET' && parts.length === 1) return send(res, 200, { messages: await o.queue.list() });
      if (req.method === 'POST' && parts.length === 2 && parts[1] === 'retry') return send(res, 200, { retried: await o.queue.retry() });
      const id = parts[1];
      if (!id || !isQueueId(id)) return send(res, 400, { error: `not a queue id: ${String(id).slice(0, 40)}` });
      if (req.method === 'POST' && parts.length === 3 && parts[2] === 'retry') {
        const r = await o.queue.retry(id);
        return send(res, r.length > 0 ? 200 : 404, r.length > 0 ? { retried: r } : { error: `no message ${id} in the queue` });
      }
      if (req.method === 'DELETE' && parts.length === 2) {
        const ok = await o.queue.remove(id);
        return send(res, ok ? 200 : 404, ok ? { deleted: id } : { error: `no message ${id} in the queue` });
      }
      return send(res, 405, { error: `${req.method} ${url.pathname} is not supported` });
    })().catch((err: Error) => {
      o.log.error('control request failed', { error: err });
      if (!res.headersSent) send(res, 500, { error: err.message });
    });
  };
  const gated = await listenGated({ at: { host: o.host, port: o.port }, onRequest, plain: 'loopback', configure: (s) => { s.requestTimeout = 30_000; }, ...(o.tls ? { tls: o.tls } : {}), ...(o.revoked ? { revoked: o.revoked } : {}) });
  return { url: gated.url, close: () => gated.close() };
}
