/**
 * Pairing on one machine, no namespaces and no root: `kith up` on loopback (mDNS off there:
 * nothing on the network could reach it), `kith pair --host 127.0.0.1 --port P` with the code
 * it printed; the device certificate then opens storage's https listener by mutual TLS, and
 * the device password opens mail submission (swaks, AUTH PLAIN after STARTTLS) and CalDAV
 * (python3-caldav); after `kith revoke` the certificate and the password are turned away,
 * nothing restarted.
 */
import { spawnSync } from 'node:child_process';
import { readFileSync, statSync } from 'node:fs';
import * as https from 'node:https';
import * as path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { kithUp, repoRoot, type KithUp } from './kith-up.ts';
import { tempDir } from '../platform/helpers.ts';

const kith = (...args: string[]) => spawnSync(process.execPath, [path.join(repoRoot, 'installer/kith.ts'), ...args], { encoding: 'utf8', env: { ...process.env, HOME: tempDir('kith-home-') } });

/** SMTP submission with STARTTLS and AUTH PLAIN as `user`; swaks exits 0 when AUTH succeeds. */
const submit = (url: string, user: string, password: string) => {
  const [, host, port] = /^smtp:\/\/(.+):(\d+)$/.exec(url)!;
  const r = spawnSync('swaks', ['--server', host!, '--port', port!, '--tls', '--auth', 'PLAIN', '--auth-user', user, '--auth-password', password, '--quit-after', 'AUTH', '--timeout', '20'], { encoding: 'utf8', timeout: 60_000 });
  return { code: r.status, out: r.stdout + r.stderr };
};

/** python3-caldav (Debian): the principal's calendars, or the error it met. */
const caldav = (url: string, caFile: string, user: string, password: string, write = false) => {
  const script = [
    'import sys, caldav',
    'c = caldav.DAVClient(url=sys.argv[1], username=sys.argv[2], password=sys.argv[3], ssl_verify_cert=sys.argv[4])',
    'try:',
    '  p = c.principal()',
    '  if sys.argv[5] == "write": p.make_calendar(name="desk", cal_id="desk")',
    '  print("ok", len(p.calendars()))',
    'except Exception as e:',
    '  print("refused", type(e).__name__)',
  ].join('\n');
  return spawnSync('/usr/bin/python3', ['-c', script, url, user, password, caFile, write ? 'write' : 'read'], { encoding: 'utf8', timeout: 60_000 }).stdout.trim();
};

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

  it('pairs by the printed code; the device certificate opens storage and the device password mail and CalDAV, until revoked', async () => {
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
    // The device password, issued with the certificate, kept 0600 beside it.
    const password = readFileSync(path.join(dir, 'password'), 'utf8').trim();
    expect(password).toMatch(/^[A-Za-z0-9_-]{32}$/);
    expect(statSync(path.join(dir, 'password')).mode & 0o077).toBe(0);
    expect(readFileSync(path.join(up.data, 'pki', 'devices.json'), 'utf8')).not.toContain(password);
    const mail = up.services.get('mail')!, calendar = up.services.get('calendar')!;
    expect(submit(mail.endpoints.submission!, 'kith', password)).toMatchObject({ code: 0 });
    expect(submit(mail.endpoints.submission!, 'kith', password.slice(1) + 'x').code).not.toBe(0);
    // A new calendar: a commit in the store, which calendar reaches by its own client certificate.
    expect(caldav(calendar.endpoints.caldavs!, path.join(dir, 'ca.crt'), 'kith', password, true)).toMatch(/^ok [1-9]\d*$/);
    expect(caldav(calendar.endpoints.caldavs!, path.join(dir, 'ca.crt'), 'kith', 'not-the-password')).toBe('refused AuthorizationError');
    const pids = ['storage', 'mail', 'calendar'].map((n) => up.services.get(n)!.pid);
    expect(kith('revoke', 'desk', '--data', up.data).status).toBe(0);
    // Each service sees the revocation on its own look (within a second on a quiet machine):
    // asked again until all three refuse, up to 15 s for a loaded one; how soon is printed.
    const revoked = Date.now();
    const allRefuse = async () => (await get(url, tls)) === 0 && submit(mail.endpoints.submission!, 'kith', password).code !== 0
      && caldav(calendar.endpoints.caldavs!, path.join(dir, 'ca.crt'), 'kith', password) === 'refused AuthorizationError';
    while (!(await allRefuse()) && Date.now() - revoked < 15_000) await new Promise((r) => setTimeout(r, 100));
    process.stdout.write(`pair-local: storage, mail and calendar all refuse the revoked device ${Date.now() - revoked} ms after kith revoke\n`);
    expect(await get(url, tls)).toBe(0);
    const refused = submit(mail.endpoints.submission!, 'kith', password);
    expect(refused.code, refused.out).not.toBe(0);
    expect(refused.out).toMatch(/^<~\* 535 /m);
    expect(caldav(calendar.endpoints.caldavs!, path.join(dir, 'ca.crt'), 'kith', password)).toBe('refused AuthorizationError');
    expect(JSON.parse(kith('devices', '--json', '--data', up.data).stdout).devices[0]).toMatchObject({ name: 'desk', revokedAt: expect.any(String) });
    expect(['storage', 'mail', 'calendar'].map((n) => up.services.get(n)!.pid)).toEqual(pids);
  }, 60_000);
});
