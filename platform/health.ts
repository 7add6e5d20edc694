/**
 * The health + metrics endpoint every service has (its `health` listener):
 *   GET /healthz  → 200 {"status":"ok",...} or 503 when the service reports unhealthy
 *   GET /metrics  → Prometheus text format
 */
import * as http from 'node:http';
import type { Metrics } from './metrics.ts';
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

export async function startHealthServer(
  at: ListenAddress,
  status: () => HealthStatus | Promise<HealthStatus>,
  metrics: Metrics,
  beforeMetrics?: () => void,
): Promise<HealthServer> {
  const server = http.createServer((req, res) => {
    const url = (req.url ?? '/').split('?')[0];
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.writeHead(405, { allow: 'GET, HEAD', 'content-type': 'text/plain' }).end('only GET and HEAD\n');
      return;
    }
    if (url === '/healthz' || url === '/health') {
      void Promise.resolve()
        .then(status)
        .catch((err: Error): HealthStatus => ({ ok: false, detail: `health check failed: ${err.message}` }))
        .then((s) => res.writeHead(s.ok ? 200 : 503, { 'content-type': 'application/json' }).end(JSON.stringify({ status: s.ok ? 'ok' : 'unhealthy', ...s }) + '\n'));
    } else if (url === '/metrics') {
      beforeMetrics?.();
      res.writeHead(200, { 'content-type': 'text/plain; version=0.0.4; charset=utf-8' }).end(metrics.render());
    } else {
      res.writeHead(404, { 'content-type': 'text/plain' }).end('not found: try /healthz or /metrics\n');
    }
  });
  server.headersTimeout = 10_000;
  server.requestTimeout = 10_000;
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(at.port, at.host, () => resolve());
  });
  const addr = server.address();
  const port = typeof addr === 'object' && addr ? addr.port : at.port;
  const host = at.host.includes(':') ? `[${at.host}]` : at.host;
  return {
    url: `http://${host}:${port}`,
    close: () => new Promise<void>((resolve) => { server.closeAllConnections(); server.close(() => resolve()); }),
  };
}
