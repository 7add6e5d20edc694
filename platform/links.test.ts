import { createPrivateKey, X509Certificate } from 'node:crypto';
import { rmSync, statSync } from 'node:fs';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';
import { tempDir } from '../test/platform/helpers.ts';
import { addLinkCertificate, LINK_TLS, provisionLinks, readOwnerTokenHash, readStorageClients, readStorageLink } from './links.ts';
import { secretSha256 } from './passwords.ts';
import { createCa } from './pki/ca.ts';
import { serviceClientIssuer } from './pki/provision.ts';
import { certSha256 } from './pki/server-tls.ts';

describe('links to storage', () => {
  it('give every service the owner token\'s hash, from the token or from the hash alone (a kvm guest)', async () => {
    const root = tempDir('kith-links-owner-');
    const services = [{ name: 'storage', dataDir: path.join(root, 'storage') }, { name: 'calendar', dataDir: path.join(root, 'calendar') }];
    await provisionLinks(services, { ownerToken: 'the-owner-token-of-thirty-two-chars' });
    const want = secretSha256('the-owner-token-of-thirty-two-chars');
    for (const s of services) expect(await readOwnerTokenHash(s.dataDir)).toBe(want);
    const other = 'cd'.repeat(32);
    expect(await provisionLinks(services, { ownerToken: { sha256: other } })).toEqual({ provisioned: [], failed: [] });
    for (const s of services) expect(await readOwnerTokenHash(s.dataDir)).toBe(other);
    rmSync(root, { recursive: true, force: true });
  });

  it('give each linked service a token and, with an issuer and an https URL, a client certificate', async () => {
    const root = tempDir('kith-links-');
    const services = [
      { name: 'storage', dataDir: path.join(root, 'storage') },
      { name: 'dns', dataDir: path.join(root, 'dns'), needs: { configWrite: ['dns/zones/'] } },
      { name: 'plain', dataDir: path.join(root, 'plain') },
    ];
    const ca = await createCa('kith test CA');
    const issued: string[] = [];
    const r = await provisionLinks(services, {
      links: { storage: 'storage', storageUrl: 'http://127.0.0.1:1', storageTlsUrl: 'https://127.0.0.1:2' },
      issue: async (name) => { issued.push(name); return serviceClientIssuer(ca)(name); },
    });
    expect(r).toEqual({ provisioned: ['dns'], failed: [] });
    expect(issued).toEqual(['dns']);
    const link = (await readStorageLink(path.join(root, 'dns')))!;
    expect(link).toMatchObject({ url: 'http://127.0.0.1:1', tls: { url: 'https://127.0.0.1:2', ca: ca.cert } });
    expect(new X509Certificate(link.tls!.cert).subject).toBe('CN=dns\nOU=kith service');
    expect(new X509Certificate(link.tls!.cert).checkPrivateKey(createPrivateKey(link.tls!.key))).toBe(true);
    expect(link.token).toMatch(/^[A-Za-z0-9_-]{32}$/);
    expect(statSync(path.join(root, 'dns', LINK_TLS.key)).mode & 0o077).toBe(0);
    // Storage learns the grants and which certificate is the service's (only this one).
    expect((await readStorageClients(path.join(root, 'storage'))).map((c) => [c.name, c.configWrite, c.certSha256])).toEqual([['dns', ['dns/zones/'], certSha256(link.tls!.cert)]]);
    await expect(serviceClientIssuer(ca)('owner')).rejects.toThrow(/owner/);
    expect(await readStorageLink(path.join(root, 'plain'))).toBeUndefined();
    // A certificate gone missing leaves the token.
    rmSync(path.join(root, 'dns', LINK_TLS.cert));
    expect((await readStorageLink(path.join(root, 'dns')))!.tls).toBeUndefined();
  });

  it('stay token-only without an issuer (PID 1 holds no CA: its pki process adds the certificates)', async () => {
    const root = tempDir('kith-links-');
    await provisionLinks([{ name: 'storage', dataDir: path.join(root, 'storage') }, { name: 'dns', dataDir: path.join(root, 'dns'), needs: {} }], { links: { storage: 'storage', storageUrl: 'http://127.0.0.1:1', storageTlsUrl: 'https://127.0.0.1:2' } });
    const link = (await readStorageLink(path.join(root, 'dns')))!;
    expect(link.url).toBe('http://127.0.0.1:1');
    expect(link.tls).toBeUndefined();
  });

  it('on the appliance: PID 1 provisions the token, then the pki process adds the certificate (storage gets its SHA-256)', async () => {
    const root = tempDir('kith-links-');
    const services = [{ name: 'storage', dataDir: path.join(root, 'storage') }, { name: 'mail', dataDir: path.join(root, 'mail'), needs: { configWrite: ['dns/zones/'] } }];
    await provisionLinks(services, { links: { storage: 'storage', storageUrl: 'http://127.0.0.1:1' } });
    const before = (await readStorageLink(path.join(root, 'mail')))!;
    expect(before.tls).toBeUndefined();
    const ca = await createCa('kith test CA');
    const add = (service: string) => addLinkCertificate({ service, serviceDataDir: path.join(root, service), storageDataDir: path.join(root, 'storage'), storageTlsUrl: 'https://127.0.0.1:2', issue: serviceClientIssuer(ca) });
    expect(await add('mail')).toBe(true);
    const link = (await readStorageLink(path.join(root, 'mail')))!;
    expect(link).toMatchObject({ url: 'http://127.0.0.1:1', token: before.token, tls: { url: 'https://127.0.0.1:2', ca: ca.cert } });
    expect(new X509Certificate(link.tls!.cert).subject).toBe('CN=mail\nOU=kith service');
    expect(statSync(path.join(root, 'mail', LINK_TLS.key)).mode & 0o077).toBe(0);
    const [client] = await readStorageClients(path.join(root, 'storage'));
    expect(client).toMatchObject({ name: 'mail', configWrite: ['dns/zones/'], certSha256: certSha256(link.tls!.cert) });
    // The pki process started again (same boot): the certificate storage knows is kept.
    expect(await add('mail')).toBe(true);
    expect((await readStorageLink(path.join(root, 'mail')))!.tls!.cert).toBe(link.tls!.cert);
    // A service PID 1 gave no link gets nothing.
    expect(await add('dns')).toBe(false);
  });
});
