/**
 * The health + metrics endpoint every service has (its `health` listener):
 *   GET /healthz  → 200 {"status":"ok",...} or 503 when the service reports unhealthy
 *   GET /metrics  → Prometheus text format
 *
 * Who sees what. On the appliance this listener is on loopback (platform/listen-hosts.ts),
 * but it may face the LAN (`kith up --host 0.0.0.0`, a kvm image, a test image). A client
 * from loopback gets everything. Any other client gets only the status word and whether
 * the clock is synchronised from /healthz (no reasons, paths or names), and /metrics — whose labels name repositories,
 * upstreams and lists — only with the owner's token (`Authorization: Bearer TOKEN`, the
 * hash provisioned by the supervisor, platform/links.ts); without one, 401, and 403 when
 * no owner token is provisioned at all. The owner's token also gets the full /healthz.
 *
 * With TLS material (a service the supervisor gave a certificate), the port is also gated
 * (platform/peer-gate.ts): TLS from the network needs a client certificate from the
 * appliance CA, and a paired device's (CN=owner) gets everything, as loopback does — how
 * `kith status` on a paired machine reads the appliance. Plain HTTP stays open to anyone
 * here, on purpose: it tells a stranger only the status word (and whether the clock is
 * synchronised), and supervisors and image tests probe it before any pairing exists.
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import type * as http from 'node:http';
import type { Metrics } from './metrics.ts';
import { isLoopback, listenGated, ownerCertificate } from './peer-gate.ts';
import type { RevocationList } from './pki/revocation.ts';
import type { ServerTls } from './pki/server-tls.ts';
import type { ListenAddress } from './service.ts';

export interface HealthStatus {
  ok: boolean;
  detail?: string;
  [key: string]: unknown;
}

export interface HealthServer {
  url: string;
  close(): Promise<void>;
}

export interface HealthAccess {
  /** SHA-256 (hex) of the owner's token, when one is provisioned; asked per remote request. */
  ownerTokenSha256?: () => Promise<string | undefined> | string | undefined;
  /** The service's certificate: the port then speaks TLS too, to paired devices. */
  tls?: ServerTls;
  revoked?: RevocationList;
}


export { isLoopback } from './peer-gate.ts';

const bearer = (req: http.IncomingMessage) => /^Bearer\s+(\S+)\s*$/i.exec(req.headers.authorization ?? '')?.[1];

/** Constant-time: the presented token's hash against the provisioned one. */
export function tokenMatches(presented: string | undefined, wantSha256Hex: string | undefined): boolean {
  if (presented === undefined || !wantSha256Hex || !/^[0-9a-f]{64}$/.test(wantSha256Hex)) return false;
  return timingSafeEqual(createHash('sha256').update(presented).digest(), Buffer.from(wantSha256Hex, 'hex'));
}

export async function startHealthServer(
  at: ListenAddress,
  status: () => HealthStatus | Promise<HealthStatus>,
  metrics: Metrics,
  beforeMetrics?: () => void,
  access: HealthAccess = {},
): Promise<HealthServer> {
  const onRequest = (req: http.IncomingMessage, res: http.ServerResponse) => {
    const url = (req.url ?? '/').split('?')[0];
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.writeHead(405, { allow: 'GET, HEAD', 'content-type': 'text/plain' }).end('only GET and HEAD\n');
      return;
    }
    const local = isLoopback(req.socket.remoteAddress) || ownerCertificate(req);
    /** From loopback, or with the owner's token. */
    const trusted = async () => local || tokenMatches(bearer(req), await Promise.resolve(access.ownerTokenSha256?.()).catch(() => undefined));
    if (url === '/healthz' || url === '/health') {
      void Promise.all([
        Promise.resolve().then(status).catch((err: Error): HealthStatus => ({ ok: false, detail: `health check failed: ${err.message}` })),
        trusted(),
      ])
        .then(([s, full]) => {
          // Beyond loopback without the owner's token: the status word, and whether the clock
          // is synchronised (nothing private, and what a client checking our certificates'
          // times wants to know).
          const c = (s as { clock?: { synchronised?: unknown; source?: unknown } }).clock;
          const clock = c ? { synchronised: c.synchronised, source: c.source } : undefined;
          const body = full ? { status: s.ok ? 'ok' : 'unhealthy', ...s } : { status: s.ok ? 'ok' : 'unhealthy', ...(clock ? { clock } : {}) };
          res.writeHead(s.ok ? 200 : 503, { 'content-type': 'application/json' }).end(JSON.stringify(body) + '\n');
        });
    } else if (url === '/metrics') {
      const serve = () => {
        beforeMetrics?.();
        res.writeHead(200, { 'content-type': 'text/plain; version=0.0.4; charset=utf-8' }).end(metrics.render());
      };
      if (local) return serve();
      void Promise.resolve()
        .then(() => access.ownerTokenSha256?.())
        .catch(() => undefined)
        .then((want) => {
          if (tokenMatches(bearer(req), want)) return serve();
          if (!want) {
            res.writeHead(403, { 'content-type': 'text/plain' }).end('metrics are served to loopback only: no owner token is provisioned for remote scrapes\n');
          } else {
            res.writeHead(401, { 'content-type': 'text/plain', 'www-authenticate': 'Bearer realm="kith metrics"' }).end("metrics need the owner's token: Authorization: Bearer TOKEN\n");
          }
        });
    } else {
      res.writeHead(404, { 'content-type': 'text/plain' }).end('not found: try /healthz or /metrics\n');
    }
  };
  const gated = await listenGated({
    at, onRequest, plain: 'anyone',
    configure: (server) => { server.headersTimeout = 10_000; server.requestTimeout = 10_000; },
    ...(access.tls ? { tls: access.tls } : {}), ...(access.revoked ? { revoked: access.revoked } : {}),
  });
  return { url: gated.url, close: () => gated.close() };
}
