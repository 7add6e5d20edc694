/**
 * Pairing on one machine, no namespaces and no root: `kith up` on loopback (mDNS off there:
 * nothing on the network could reach it), `kith pair --host 127.0.0.1 --port P` with the code
 * it printed; the device certificate then opens storage's https listener by mutual TLS, and
 * after `kith revoke` the same certificate is turned away, storage never restarted.
 */
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import * as https from 'node:https';
import * as path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { kithUp, repoRoot, type KithUp } from './kith-up.ts';
import { tempDir } from '../platform/helpers.ts';

const kith = (...args: string[]) => spawnSync(process.execPath, [path.join(repoRoot, 'installer/kith.ts'), ...args], { encoding: 'utf8', env: { ...process.env, HOME: tempDir('kith-home-') } });

function get(url: string, tls: { ca: string; cert?: string; key?: string }): Promise<number> {
  return new Promise((resolve) => {
    const req = https.get(url, { ...tls, servername: 'localhost' }, (res) => { res.resume(); resolve(res.statusCode ?? 0); });
    req.on('error', () => resolve(0));
  });
}

describe('kith pair on loopback', () => {
  let up: KithUp;
  beforeAll(async () => { up = await kithUp(); }, 120_000);
  afterAll(async () => { await up?.stop(); });

  it('pairs by the printed code and the device certificate opens storage until revoked', async () => {
    for (let i = 0; i < 100 && !up.events.some((e) => e.event === 'pairing'); i++) await new Promise((r) => setTimeout(r, 100));
    const code = up.events.find((e) => e.event === 'pair-code')?.code as string;
    const pairPort = up.events.find((e) => e.event === 'pairing')?.port as number;
    expect(code).toMatch(/^[A-Z2-9]{4}-[A-Z2-9]{4}$/);
    expect(up.events.find((e) => e.msg === 'mdns off')).toBeTruthy();
    const storage = up.services.get('storage')!;
    const dir = tempDir('kith-paired-');
    const wrong = kith('pair', '--json', '--host', '127.0.0.1', '--port', String(pairPort), '--code', 'AAAA-AAAA', '--device', 'desk', '--dir', dir);
    expect(wrong.status, wrong.stdout + wrong.stderr).toBe(1);
    await new Promise((r) => setTimeout(r, 600)); // the wrong code's back-off
    const ok = kith('pair', '--json', '--host', '127.0.0.1', '--port', String(pairPort), '--code', code.toLowerCase(), '--device', 'desk', '--dir', dir);
    expect(ok.status, ok.stdout + ok.stderr).toBe(0);
    expect(JSON.parse(ok.stdout)).toMatchObject({ ok: true, device: 'desk' });
    const tls = { ca: readFileSync(path.join(dir, 'ca.crt'), 'utf8'), cert: readFileSync(path.join(dir, 'client.crt'), 'utf8'), key: readFileSync(path.join(dir, 'client.key'), 'utf8') };
    const url = `${storage.endpoints.gits}/info/refs?service=git-upload-pack`;
    expect(await get(url, tls)).toBe(200);
    expect(await get(url, { ca: tls.ca })).toBe(401);
    const pid = storage.pid;
    expect(kith('revoke', 'desk', '--data', up.data).status).toBe(0);
    await new Promise((r) => setTimeout(r, 1000));
    expect(await get(url, tls)).toBe(0);
    expect(JSON.parse(kith('devices', '--json', '--data', up.data).stdout).devices[0]).toMatchObject({ name: 'desk', revokedAt: expect.any(String) });
    expect(up.services.get('storage')!.pid).toBe(pid);
  }, 60_000);
});
