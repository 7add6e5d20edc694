import { X509Certificate } from 'node:crypto';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import * as tls from 'node:tls';
import { describe, expect, it } from 'vitest';
import { createCa, issue } from './ca.ts';
import { provisionRevocations } from './provision.ts';
import { normalSerial, parseRevoked, RevocationList } from './revocation.ts';

function connect(port: number, ca: string, client: { key: string; cert: string }): Promise<tls.TLSSocket> {
  return new Promise((resolve, reject) => {
    const c = tls.connect({ host: '127.0.0.1', port, ca, key: client.key, cert: client.cert, servername: 'localhost' });
    c.once('data', () => resolve(c));
    c.once('error', reject);
    c.once('close', () => reject(new Error('closed before any data')));
  });
}

describe('revoked client certificates', () => {
  it('are refused within a second, new and live connections alike, without a restart', async () => {
    const data = mkdtempSync(path.join(tmpdir(), 'kith-revoke-'));
    const ca = await createCa('kith test CA');
    const server = await issue(ca, { commonName: 'storage', names: ['localhost'], usage: 'server' });
    const laptop = await issue(ca, { commonName: 'laptop', usage: 'client' });
    const phone = await issue(ca, { commonName: 'phone', usage: 'client' });
    await provisionRevocations([data], []);
    const list = new RevocationList(data);
    const srv = tls.createServer({ key: server.key, cert: server.cert, ca: ca.cert, requestCert: true, rejectUnauthorized: true }, (s) => s.write('hi\n'));
    list.guard(srv);
    await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
    const port = (srv.address() as { port: number }).port;

    const live = await connect(port, ca.cert, laptop);
    const closed = new Promise<number>((r) => live.once('close', () => r(Date.now())));
    const t0 = Date.now();
    await provisionRevocations([data], [new X509Certificate(laptop.cert).serialNumber]);
    const at = await closed;
    expect(at - t0).toBeLessThan(1000);
    await expect(connect(port, ca.cert, laptop)).rejects.toThrow();
    (await connect(port, ca.cert, phone)).destroy(); // the others still get in
    list.close();
    srv.close();
  });

  it('reads serials however they are written, and refuses a malformed file', () => {
    expect(normalSerial('00:0A:bC')).toBe('abc');
    expect(parseRevoked('{"serials":["0ABC"]}').has('abc')).toBe(true);
    expect(() => parseRevoked('{"serials":[1]}')).toThrow(/expected/);
  });
});
