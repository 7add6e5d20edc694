import { X509Certificate } from 'node:crypto';
import * as tls from 'node:tls';
import { describe, expect, it } from 'vitest';
import { createCa, issue, verifyIssued } from './ca.ts';

describe('the appliance CA', () => {
  it('issues ECDSA server and client certificates that TLS accepts both ways', async () => {
    const ca = await createCa('kith test CA');
    const server = await issue(ca, { commonName: 'storage', names: ['localhost', '127.0.0.1'], usage: 'server' });
    const client = await issue(ca, { commonName: 'laptop', usage: 'client' });
    expect(verifyIssued(server.cert, ca.cert)).toBe(true);
    expect(new X509Certificate(server.cert).subjectAltName).toBe('DNS:localhost, IP Address:127.0.0.1');
    expect(new X509Certificate(ca.cert).ca).toBe(true);
    const other = await createCa('another CA');
    expect(verifyIssued(server.cert, other.cert)).toBe(false);

    const srv = tls.createServer({ key: server.key, cert: server.cert, ca: ca.cert, requestCert: true, rejectUnauthorized: true }, (s) => {
      s.end(`hello ${(s.getPeerCertificate() as { subject?: { CN?: string } }).subject?.CN}`);
    });
    await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
    const port = (srv.address() as { port: number }).port;
    const text = await new Promise<string>((resolve, reject) => {
      const c = tls.connect({ host: '127.0.0.1', port, ca: ca.cert, key: client.key, cert: client.cert, servername: 'localhost' }, () => {
        let data = '';
        c.on('data', (d) => (data += d)).on('end', () => resolve(data));
      });
      c.on('error', reject);
    });
    expect(text).toBe('hello laptop');
    // A client without a certificate from this CA is turned away.
    await expect(new Promise((resolve, reject) => {
      const c = tls.connect({ host: '127.0.0.1', port, ca: ca.cert, servername: 'localhost' }, () => c.once('data', resolve));
      c.on('error', reject).on('end', () => reject(new Error('closed')));
    })).rejects.toThrow();
    srv.close();
  });
});
