/**
 * The storage service over HTTPS with the appliance CA: git and curl verify the server
 * certificate; the store API takes the token or a client certificate from the same CA
 * (the seam pairing uses); a certificate from another CA, or none, gets no access.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import * as path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { X509Certificate } from 'node:crypto';
import { readStorageLink } from '../../platform/links.ts';
import { createCa, issue } from '../../platform/pki/ca.ts';
import { createStoreClient } from '../../platform/store-client.ts';
import { tempDir } from '../platform/helpers.ts';
import { kithUp, type KithUp } from './kith-up.ts';

describe('storage over HTTPS', () => {
  let up: KithUp;
  let ca: string;
  let base: string;
  let token: string;
  const dir = tempDir('kith-tls-');
  const curl = (...args: string[]) => spawnSync('curl', ['-sS', '--cacert', ca, '-w', '\n%{http_code}', ...args], { encoding: 'utf8' });
  const status = (r: { stdout: string }) => Number(r.stdout.trim().split('\n').pop());

  beforeAll(async () => {
    up = await kithUp();
    const storage = up.services.get('storage') as unknown as { endpoints: Record<string, string>; token: string; ca: string };
    ca = storage.ca;
    token = storage.token;
    base = storage.endpoints.gits!.replace(/\/config\.git$/, '');
    expect(base).toMatch(/^https:\/\/127\.0\.0\.1:\d+$/);
  });
  afterAll(async () => { await up?.stop(); });

  it('git clones config.git over HTTPS, verifying the server against the appliance CA', () => {
    const clone = path.join(dir, 'config');
    // GIT_SSL_CAINFO, as the environment's own setting of it would override http.sslCAInfo.
    execFileSync('git', ['clone', '-q', `${base.replace('://', `://kith:${token}@`)}/config.git`, clone], { env: { ...process.env, GIT_SSL_CAINFO: ca } });
    expect(readFileSync(path.join(clone, 'storage/storage.yaml'), 'utf8')).toMatch(/createOnPush/);
    // Without the CA, git refuses the server.
    const r = spawnSync('git', ['ls-remote', `${base.replace('://', `://kith:${token}@`)}/config.git`], { encoding: 'utf8', env: { ...process.env, GIT_SSL_CAINFO: '/etc/ssl/certs/ca-certificates.crt' } });
    expect(r.status).not.toBe(0);
    expect(r.stderr).toMatch(/SSL|certificate/i);
  });

  it('serves the store API with the token, and with a client certificate from the CA', async () => {
    execFileSync('git', ['init', '-q', '--bare', path.join(up.data, 'data/storage/repos/notes.git')]);
    const put = curl('-X', 'PUT', '-H', `authorization: Bearer ${token}`, '--data-binary', 'hello over TLS', `${base}/store/notes/a.txt`);
    expect(status(put), put.stdout).toBeLessThan(300);
    const caPem = { cert: readFileSync(ca, 'utf8'), key: readFileSync(path.join(path.dirname(ca), 'ca.key'), 'utf8') };
    const owner = await issue(caPem, { commonName: 'owner', usage: 'client' });
    writeFileSync(path.join(dir, 'owner.crt'), owner.cert);
    writeFileSync(path.join(dir, 'owner.key'), owner.key);
    const get = curl('--cert', path.join(dir, 'owner.crt'), '--key', path.join(dir, 'owner.key'), `${base}/store/notes/a.txt`);
    expect(status(get)).toBe(200);
    expect(get.stdout).toMatch(/^hello over TLS\n200$/);

    const stranger = await issue(await createCa('someone else'), { commonName: 'owner', usage: 'client' });
    writeFileSync(path.join(dir, 'x.crt'), stranger.cert);
    writeFileSync(path.join(dir, 'x.key'), stranger.key);
    expect(status(curl('--cert', path.join(dir, 'x.crt'), '--key', path.join(dir, 'x.key'), `${base}/store/notes/a.txt`))).toBe(401);
    expect(status(curl(`${base}/store/notes/a.txt`))).toBe(401);
  });

  it("lets each service in by the client certificate the supervisor issued it, with its link's grants and no token", async () => {
    const link = (await readStorageLink(path.join(up.data, 'data', 'dns')))!;
    expect(link.tls?.url).toBe(base);
    expect(new X509Certificate(link.tls!.cert).subject).toBe('CN=dns\nOU=kith service');
    // A wrong token: only the certificate can be what lets it in.
    const dns = createStoreClient({ ...link, token: 'not-the-token' });
    const zone = (await dns.read('config', 'dns/zones/home.arpa.zone'))!;
    expect(zone.commit).toMatch(/^[0-9a-f]{40}$/);
    expect(await dns.write('config', 'dns/zones/home.arpa.zone', zone.content, { expectedBlob: zone.blob })).toMatchObject({ changed: false });
    await expect(dns.write('config', 'storage/storage.yaml', 'createOnPush: true\n')).rejects.toMatchObject({ status: 403 });
    await expect(dns.repos()).rejects.toMatchObject({ status: 403 });
    // The token still works beside it (during the change), over plain HTTP.
    expect((await createStoreClient({ url: link.url, token: link.token }).read('config', 'dns/zones/home.arpa.zone'))?.blob).toBe(zone.blob);
    // From the same CA, a certificate whose name is no service's, or another certificate
    // named dns than the one issued with its link (an older one, say), gets nothing.
    const caPem = { cert: readFileSync(ca, 'utf8'), key: readFileSync(path.join(path.dirname(ca), 'ca.key'), 'utf8') };
    for (const commonName of ['stranger', 'dns']) {
      const other = await issue(caPem, { commonName, unit: 'kith service', usage: 'client' });
      await expect(createStoreClient({ ...link, token: 'x', tls: { ...link.tls!, cert: other.cert, key: other.key } }).read('config', 'dns/zones/home.arpa.zone')).rejects.toMatchObject({ status: 401 });
    }
  });
});
