/**
 * The gated port (platform/peer-gate.ts) driven by curl and openssl s_client: plain HTTP
 * from the box itself, a refusal in plain HTTP and at the TLS handshake for a network client
 * without a certificate, mutual TLS with one, and a revoked one turned away. A network peer
 * is simulated with `isLocal` (no test leaves loopback).
 */
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { X509Certificate } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import * as path from 'node:path';
import type { TLSSocket } from 'node:tls';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { tempDir } from '../test/platform/helpers.ts';
import { createCa, issue, type Pem } from './pki/ca.ts';
import { provisionRevocations } from './pki/provision.ts';
import { RevocationList } from './pki/revocation.ts';
import { isLocalPeer, listenGated, setLocalPeers, type GatedListener, type PlainPolicy } from './peer-gate.ts';

const run = promisify(execFile);
const dir = tempDir('kith-gate-');
const file = (name: string, text: string) => { const f = path.join(dir, name); writeFileSync(f, text); return f; };

describe('a gated port', () => {
  let ca: Pem;
  let other: Pem;
  let laptop: Pem;
  let stranger: Pem;
  let revoked: RevocationList;
  const gates: GatedListener[] = [];
  const open = async (plain: PlainPolicy, local: boolean) => {
    const g = await listenGated({
      at: { host: '127.0.0.1', port: 0 }, plain, revoked, isLocal: () => local,
      tls: { key: server.key, cert: server.cert, ca: ca.cert },
      onRequest: (req, res) => res.end(`hello ${(req.socket as TLSSocket).encrypted ? (req.socket as TLSSocket).getPeerCertificate()?.subject?.CN ?? 'anonymous' : 'plain'}\n`),
    });
    gates.push(g);
    return g.port;
  };
  let server: Pem;
  // Asynchronous: the server answers from this same process.
  const curl = async (...args: string[]) => {
    const stdout = await run('curl', ['-s', '-w', '\n%{http_code}', '--cacert', file('ca.crt', ca.cert), ...args]).then((r) => r.stdout, (e: { stdout?: string }) => e.stdout ?? '');
    const nl = stdout.lastIndexOf('\n');
    return `${stdout.slice(nl + 1)} ${stdout.slice(0, nl).trim()}`.trim();
  };
  const withCert = (p: Pem, name: string) => ['--cert', file(`${name}.crt`, p.cert), '--key', file(`${name}.key`, p.key)];

  beforeAll(async () => {
    ca = await createCa('kith test CA');
    other = await createCa('another CA');
    server = await issue(ca, { commonName: 'storage', names: ['localhost', '127.0.0.1'], usage: 'server' });
    laptop = await issue(ca, { commonName: 'owner', unit: 'laptop', usage: 'client' });
    stranger = await issue(other, { commonName: 'owner', usage: 'client' });
    await provisionRevocations([dir], []);
    revoked = new RevocationList(dir);
  });
  afterAll(async () => {
    revoked.close();
    await Promise.all(gates.map((g) => g.close()));
  });

  it('serves plain HTTP and TLS without a certificate to the box itself', async () => {
    const port = await open('loopback', true);
    expect(await curl(`http://127.0.0.1:${port}/`)).toBe('200 hello plain');
    expect(await curl(`https://localhost:${port}/`, '--resolve', `localhost:${port}:127.0.0.1`)).toBe('200 hello anonymous');
    expect(await curl(`https://localhost:${port}/`, '--resolve', `localhost:${port}:127.0.0.1`, ...withCert(laptop, 'laptop'))).toBe('200 hello owner');
  });

  it('refuses a network client without a certificate from the appliance CA, in plain HTTP and at the handshake', async () => {
    const port = await open('loopback', false);
    expect(await curl(`http://127.0.0.1:${port}/`)).toMatch(/^403 this port answers the network only over TLS with a client certificate/);
    const url = [`https://localhost:${port}/`, '--resolve', `localhost:${port}:127.0.0.1`];
    expect(await curl(...url)).toBe('000');
    expect(await curl(...url, ...withCert(stranger, 'stranger'))).toBe('000');
    expect(await curl(...url, ...withCert(laptop, 'laptop'))).toBe('200 hello owner');
    const s = await run('sh', ['-c', `printf 'GET / HTTP/1.0\\r\\n\\r\\n' | openssl s_client -ign_eof -connect 127.0.0.1:${port} -servername localhost -CAfile ${path.join(dir, 'ca.crt')} 2>&1; true`]);
    expect(s.stdout).toMatch(/alert certificate required|alert handshake failure/);
    expect(s.stdout).not.toMatch(/hello/);
  });

  it("turns a revoked certificate away without a restart; an https-only port never speaks plain", async () => {
    const port = await open('never', false);
    const url = [`https://localhost:${port}/`, '--resolve', `localhost:${port}:127.0.0.1`, ...withCert(laptop, 'laptop')];
    expect(await curl(...url)).toBe('200 hello owner');
    expect(await curl(`http://127.0.0.1:${port}/`)).toBe('000');
    await provisionRevocations([dir], [new X509Certificate(laptop.cert).serialNumber]);
    let code = '';
    for (let i = 0; i < 40 && code !== '000'; i++) {
      code = await curl(...url);
      if (code !== '000') await new Promise((r) => setTimeout(r, 50));
    }
    expect(code).toBe('000');
  });

  it('lets anyone ask in plain HTTP where the port says so (the health listener)', async () => {
    const port = await open('anyone', false);
    expect(await curl(`http://127.0.0.1:${port}/`)).toBe('200 hello plain');
    expect(await curl(`https://localhost:${port}/`, '--resolve', `localhost:${port}:127.0.0.1`)).toBe('000');
  });
});

describe('local peers (--local-peer: a kvm image\'s host)', () => {
  it('counts loopback always, and a told peer (plain or IPv4-mapped) only once told', () => {
    try {
      expect(isLocalPeer('127.0.0.1')).toBe(true);
      expect(isLocalPeer('10.0.2.2')).toBe(false);
      setLocalPeers(['10.0.2.2']);
      expect(isLocalPeer('10.0.2.2')).toBe(true);
      expect(isLocalPeer('::ffff:10.0.2.2')).toBe(true);
      expect(isLocalPeer('10.0.2.3')).toBe(false);
      expect(isLocalPeer(undefined)).toBe(false);
    } finally {
      setLocalPeers([]);
    }
    expect(isLocalPeer('10.0.2.2')).toBe(false);
  });
});
