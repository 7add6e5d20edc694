/**
 * A `fetch` that presents a client certificate: mutual TLS to another service on the
 * appliance, verified against the appliance CA only. Node's global fetch cannot take a
 * client certificate without undici's Agent (a dependency the sealed bundles do not carry),
 * so this is node:https underneath, giving back a standard Response whose body streams.
 * Enough of fetch for the store client: method, headers, a string or byte body, a signal.
 */
import * as https from 'node:https';
import { Readable } from 'node:stream';

export interface ClientTls {
  /** The appliance CA: the only issuer the server's certificate may chain to. */
  ca: string;
  cert: string;
  key: string;
}

const NO_BODY = new Set([101, 204, 205, 304]);

export function tlsFetch(tls: ClientTls): typeof fetch {
  // One agent per link: connections are kept alive and reused like fetch's.
  const agent = new https.Agent({ ca: tls.ca, cert: tls.cert, key: tls.key, keepAlive: true });

  function send(url: URL, method: string, headers: Record<string, string>, body: string | Uint8Array | undefined, signal: AbortSignal | undefined, retried: boolean): Promise<Response> {
    return new Promise((resolve, reject) => {
      const req = https.request(url, { method, headers, agent }, (res) => {
        const h = new Headers();
        for (const [k, v] of Object.entries(res.headers)) if (v !== undefined) for (const one of Array.isArray(v) ? v : [v]) h.append(k, one);
        const status = res.statusCode ?? 502;
        const empty = method === 'HEAD' || NO_BODY.has(status);
        if (empty) res.resume();
        resolve(new Response(empty ? null : (Readable.toWeb(res) as ReadableStream<Uint8Array>), { status, statusText: res.statusMessage ?? '', headers: h }));
      });
      const onAbort = () => req.destroy(signal?.reason instanceof Error ? signal.reason : new Error('aborted'));
      signal?.addEventListener('abort', onAbort, { once: true });
      req.once('close', () => signal?.removeEventListener('abort', onAbort));
      req.once('error', (err: NodeJS.ErrnoException) => {
        // A kept-alive connection the server had closed: the request never reached it, so it goes once more on a new one.
        if (!retried && req.reusedSocket && err.code === 'ECONNRESET' && !signal?.aborted) resolve(send(url, method, headers, body, signal, true));
        else reject(err);
      });
      req.end(body);
    });
  }

  return ((input: string | URL | Request, init: RequestInit = {}) => {
    const url = new URL(typeof input === 'string' || input instanceof URL ? input : input.url);
    const body = init.body ?? undefined;
    if (body !== undefined && typeof body !== 'string' && !(body instanceof Uint8Array)) return Promise.reject(new TypeError('tlsFetch: only string or byte bodies'));
    const signal = init.signal ?? undefined;
    if (signal?.aborted) return Promise.reject(signal.reason);
    return send(url, (init.method ?? 'GET').toUpperCase(), Object.fromEntries(new Headers(init.headers).entries()), body, signal, false);
  }) as typeof fetch;
}
