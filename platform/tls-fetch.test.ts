import * as https from 'node:https';
import type { TLSSocket } from 'node:tls';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createCa, issue, type Pem } from './pki/ca.ts';
import { tlsFetch } from './tls-fetch.ts';

describe('tlsFetch: fetch with a client certificate', () => {
  let ca: Pem;
  let client: Pem;
  let server: https.Server;
  let base: string;
  const seen: string[] = [];
  beforeAll(async () => {
    ca = await createCa('kith test CA');
    const cert = await issue(ca, { commonName: 'storage', names: ['127.0.0.1'], usage: 'server' });
    client = await issue(ca, { commonName: 'dns', usage: 'client' });
    server = https.createServer({ key: cert.key, cert: cert.cert, ca: ca.cert, requestCert: true, rejectUnauthorized: true }, (req, res) => {
      const cn = (req.socket as TLSSocket).getPeerCertificate().subject?.CN;
      let body = '';
      req.on('data', (c) => (body += c)).on('end', () => {
        seen.push(`${req.method} ${req.url} ${body}`);
        if (req.url === '/empty') return void res.writeHead(204).end();
        if (req.url === '/slow') return; // never answers
        if (req.url === '/close') return void res.writeHead(403, { connection: 'close' }).end('{"error":"forbidden"}');
        res.writeHead(200, { 'content-type': 'application/json', 'x-who': String(cn) }).end(JSON.stringify({ cn, method: req.method, body, header: req.headers['x-test'] ?? null }));
      });
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    base = `https://127.0.0.1:${(server.address() as { port: number }).port}`;
  });
  afterAll(() => { server.closeAllConnections(); server.close(); });

  it('presents the certificate, sends method, headers and body, and gives back a Response', async () => {
    const f = tlsFetch({ ca: ca.cert, cert: client.cert, key: client.key });
    const r = await f(`${base}/x`, { method: 'PUT', headers: { 'x-test': 'yes' }, body: new TextEncoder().encode('hello') });
    expect(r.status).toBe(200);
    expect(r.headers.get('x-who')).toBe('dns');
    expect(await r.json()).toEqual({ cn: 'dns', method: 'PUT', body: 'hello', header: 'yes' });
    expect((await f(`${base}/empty`)).status).toBe(204);
    const head = await f(`${base}/x`, { method: 'HEAD' });
    expect(head.status).toBe(200);
    expect(await head.text()).toBe('');
    // The server closed the kept connection after a refusal: the next request still goes through.
    expect((await f(`${base}/close`, { method: 'PUT', body: 'x' })).status).toBe(403);
    expect((await f(`${base}/x`)).status).toBe(200);
  });

  it('aborts on its signal, and trusts no server outside the given CA', async () => {
    const f = tlsFetch({ ca: ca.cert, cert: client.cert, key: client.key });
    const ac = new AbortController();
    const pending = f(`${base}/slow`, { signal: ac.signal });
    setTimeout(() => ac.abort(new Error('stop')), 50);
    await expect(pending).rejects.toThrow(/stop/);
    const other = await createCa('another CA');
    await expect(tlsFetch({ ca: other.cert, cert: client.cert, key: client.key })(`${base}/x`)).rejects.toThrow(/certificate|self.signed|verify/i);
  });
});
