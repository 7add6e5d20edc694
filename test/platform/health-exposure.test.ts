/**
 * A health listener that faces the LAN tells strangers nothing (issue 11, item 15). The
 * real DNS bundle runs in its own network namespace, health on 0.0.0.0, with a second
 * address (10.77.0.1) so curl can come from somewhere that is not loopback. From there:
 * /healthz says only "ok", /metrics is 403 while no owner token is provisioned, then 401
 * without or with a wrong token and 200 with the owner's — provisioned while it runs —
 * which also gets the whole /healthz.
 * From loopback everything is served as before.
 */
import { execFileSync } from 'node:child_process';
import * as path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import dns from '../../services/dns/main.ts';
import { seedMissingFiles } from '../../platform/config/seed-tree.ts';
import { defaultConfigFiles } from '../../platform/services.ts';
import { provisionOwnerAccess } from '../../platform/links.ts';
import { startBundle, tempDir, type ServiceProcess } from './helpers.ts';

const bundle = path.resolve(import.meta.dirname, '../../dist/dns.mjs');
const NETNS = 'ip link set lo up && ip addr add 10.77.0.1/32 dev lo && exec "$@"';

describe('the health listener facing the LAN', () => {
  let svc: ServiceProcess;
  let data: string;
  /** curl inside the service's network namespace: status line + body. */
  const curl = (url: string, ...args: string[]) => {
    const out = execFileSync('nsenter', ['-t', String(svc.child.pid), '-U', '-n', '--preserve-credentials', 'curl', '-s', '-w', '\n%{http_code}', ...args, url], { encoding: 'utf8' });
    const nl = out.lastIndexOf('\n');
    return { code: Number(out.slice(nl + 1)), body: out.slice(0, nl) };
  };

  beforeAll(async () => {
    const root = tempDir('kith-exposed-');
    const config = path.join(root, 'config');
    data = path.join(root, 'data', 'dns');
    seedMissingFiles(config, defaultConfigFiles([dns as never]));
    svc = await startBundle(bundle, ['--config', config, '--data', data, '--listen', 'health=0.0.0.0:9102', '--listen', 'dns=0.0.0.0:5353'], 20_000, ['unshare', '-rn', 'sh', '-c', NETNS, 'sh']);
  });
  afterAll(async () => { await svc?.stop(); });

  it('serves everything to loopback', () => {
    const h = curl('http://127.0.0.1:9102/healthz');
    expect(h.code).toBe(200);
    expect(JSON.parse(h.body)).toMatchObject({ status: 'ok', service: 'dns', configGeneration: 1 });
    const m = curl('http://127.0.0.1:9102/metrics');
    expect(m.code).toBe(200);
    expect(m.body).toMatch(/^kith_config_generation 1$/m);
  });

  it('gives a remote client the status word only, and no metrics without the owner token', async () => {
    const h = curl('http://10.77.0.1:9102/healthz');
    expect(h.code).toBe(200);
    expect(JSON.parse(h.body)).toEqual({ status: 'ok', clock: { synchronised: true, source: 'host' } });
    const none = curl('http://10.77.0.1:9102/metrics');
    expect(none.code).toBe(403);
    expect(none.body).not.toMatch(/kith_/);

    // The supervisor provisions the owner's token (its hash); no restart needed.
    const token = 'owner-token-for-the-test-0123456789abcdef';
    await provisionOwnerAccess(data, token);
    const anon = curl('http://10.77.0.1:9102/metrics');
    expect(anon.code).toBe(401);
    expect(anon.body).not.toMatch(/kith_/);
    expect(curl('http://10.77.0.1:9102/metrics', '-H', 'Authorization: Bearer wrong').code).toBe(401);
    const owner = curl('http://10.77.0.1:9102/metrics', '-H', `Authorization: Bearer ${token}`);
    expect(owner.code).toBe(200);
    expect(owner.body).toMatch(/^kith_config_generation 1$/m);
    // The owner's token also gets the whole /healthz; a wrong one only the status word.
    expect(JSON.parse(curl('http://10.77.0.1:9102/healthz', '-H', `Authorization: Bearer ${token}`).body)).toMatchObject({ status: 'ok', service: 'dns', configGeneration: 1 });
    expect(JSON.parse(curl('http://10.77.0.1:9102/healthz', '-H', 'Authorization: Bearer wrong').body)).toEqual({ status: 'ok', clock: { synchronised: true, source: 'host' } });
  });
});
