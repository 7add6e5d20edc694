/** Everything under a data folder that can hold a secret is 0600, in folders that are 0700 (issue 11, item 14). */
import { chmodSync, mkdirSync, statSync } from 'node:fs';
import * as path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { tempDir } from '../test/platform/helpers.ts';
import { saveLastGood } from './config/last-good.ts';
import { provisionStorageLink } from './links.ts';
import { loadOrCreateCa, provisionServerTls } from './pki/provision.ts';

const mode = (p: string) => (statSync(p).mode & 0o777).toString(8);

describe('private files and folders', () => {
  let umask: number;
  // umask 0: the modes must come from the code, not from a careful environment.
  beforeAll(() => { umask = process.umask(0); });
  afterAll(() => { process.umask(umask); });

  it('links: the token file 0600 in links/ 0700, the grant 0600 in clients/ 0700, also over folders made 0755 before', async () => {
    const root = tempDir('kith-modes-');
    const dns = path.join(root, 'dns');
    const storage = path.join(root, 'storage');
    mkdirSync(path.join(dns, 'links'), { recursive: true, mode: 0o755 });
    await provisionStorageLink({ service: 'dns', needs: { configWrite: ['dns/zones/'] }, serviceDataDir: dns, storageDataDir: storage, storageUrl: 'http://127.0.0.1:1' });
    expect(mode(path.join(dns, 'links'))).toBe('700');
    expect(mode(path.join(dns, 'links', 'storage.json'))).toBe('600');
    expect(mode(path.join(storage, 'clients'))).toBe('700');
    expect(mode(path.join(storage, 'clients', 'dns.json'))).toBe('600');
  });

  it('pki: the CA folder 0700 and its key 0600; a service tls/ 0700 and its key 0600', async () => {
    const root = tempDir('kith-modes-');
    const pki = path.join(root, 'pki');
    const ca = await loadOrCreateCa(pki);
    expect(mode(pki)).toBe('700');
    expect(mode(path.join(pki, 'ca.key'))).toBe('600');
    // An existing CA in a folder an older kith left 0755 is tightened when loaded.
    chmodSync(pki, 0o755);
    await loadOrCreateCa(pki);
    expect(mode(pki)).toBe('700');
    const svc = path.join(root, 'storage');
    await provisionServerTls(ca, svc, 'storage', ['localhost']);
    expect(mode(path.join(svc, 'tls'))).toBe('700');
    expect(mode(path.join(svc, 'tls', 'server.key'))).toBe('600');
  });

  it('the last good config (it can hold TSIG keys) is 0600', async () => {
    const data = tempDir('kith-modes-');
    await saveLastGood(data, { 'dns/keys/k.key': 'secret' });
    expect(mode(path.join(data, 'last-good-config.json'))).toBe('600');
  });
});
