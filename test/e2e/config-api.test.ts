/**
 * The config API of the storage service (/store/config/<path>, the store API over config.git):
 * the same validation as a push, compare-and-swap on the head commit (If-Match, the ETag)
 * and on a file's blob (X-Kith-Expected-Blob), grants per service, and clear errors for bad
 * requests — with curl, a client nobody here wrote.
 */
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import * as path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { kithUp, repoRoot, type KithUp } from './kith-up.ts';

describe('the config API', () => {
  let up: KithUp;
  let base: string;
  let owner: string;
  let dnsToken: string;
  const curl = (...args: string[]) => {
    const r = spawnSync('curl', ['-sS', '-D', '-', '-o', '-', ...args], { encoding: 'utf8' });
    const status = Number(/^HTTP\/[\d.]+ (\d+)/m.exec(r.stdout)?.[1] ?? 0);
    const headers = Object.fromEntries([...r.stdout.matchAll(/^([A-Za-z-]+): (.*?)\r$/gm)].map((m) => [m[1]!.toLowerCase(), m[2]!]));
    return { status, headers, body: r.stdout.split('\r\n\r\n').slice(1).join('\r\n\r\n') };
  };

  beforeAll(async () => {
    up = await kithUp();
    const storage = up.services.get('storage')!;
    base = storage.endpoints.store!.replace(/\/store\/$/, '/store/config');
    owner = `authorization: Bearer ${storage.token}`;
    dnsToken = `authorization: Bearer ${(JSON.parse(readFileSync(path.join(up.data, 'data/dns/links/storage.json'), 'utf8')) as { token: string }).token}`;
  });
  afterAll(async () => { await up?.stop(); });

  it('reads a file with its blob id, and refuses anonymous callers', () => {
    const r = curl('-H', owner, `${base}/storage/storage.yaml`);
    expect(r.status).toBe(200);
    expect(r.headers['x-kith-blob']).toMatch(/^[0-9a-f]{40}$/);
    // One ETag semantics for every /store path: the head commit.
    expect(r.headers.etag).toBe(`"${r.headers['x-kith-commit']}"`);
    expect(r.body).toMatch(/createOnPush/);
    expect(curl(`${base}/storage/storage.yaml`).status).toBe(401);
    expect(curl('-H', owner, `${base}/dns/nothing.here`).status).toBe(404);
  });

  it('writes as one validated commit, with compare-and-swap on the blob and on the head', () => {
    const zone = '$ORIGIN example.net.\n$TTL 300\n@ IN SOA ns hostmaster 1 7200 900 1209600 300\n@ IN NS ns\nns IN A 192.0.2.53\n';
    const put = curl('-X', 'PUT', '-H', dnsToken, '-H', 'x-kith-expected-blob: none', '--data-binary', zone, `${base}/dns/zones/example.net.zone`);
    expect(put.status, put.body).toBe(201);
    expect(JSON.parse(put.body)).toMatchObject({ changed: true, commit: expect.stringMatching(/^[0-9a-f]{40}$/) });
    // The same expectation again: the file exists now, so the swap fails (412) and says why.
    const again = curl('-X', 'PUT', '-H', dnsToken, '-H', 'x-kith-expected-blob: none', '--data-binary', zone, `${base}/dns/zones/example.net.zone`);
    expect(again.status).toBe(412);
    expect(JSON.parse(again.body)).toMatchObject({ error: 'conflict', actual: JSON.parse(put.body).blob, expected: null });
    // If-Match names the head commit, as on every /store path: a stale one is 412 too.
    const head = JSON.parse(put.body).commit as string;
    const ok = curl('-X', 'PUT', '-H', dnsToken, '-H', `if-match: "${head}"`, '--data-binary', zone.replace('192.0.2.53', '192.0.2.54'), `${base}/dns/zones/example.net.zone`);
    expect(ok.status, ok.body).toBe(200);
    const stale = curl('-X', 'PUT', '-H', dnsToken, '-H', `if-match: "${head}"`, '--data-binary', zone, `${base}/dns/zones/example.net.zone`);
    expect(stale.status).toBe(412);
    expect(JSON.parse(stale.body)).toMatchObject({ error: 'conflict', expected: head, actual: JSON.parse(ok.body).commit });
  });

  it('refuses an invalid file with file:line, and changes nothing', () => {
    const before = curl('-H', owner, `${base}/dns/dns.yaml`);
    const bad = curl('-X', 'PUT', '-H', owner, '--data-binary', 'upstreams: [nope]\n', `${base}/dns/dns.yaml`);
    expect(bad.status).toBe(422);
    expect(JSON.parse(bad.body).issues[0]).toMatch(/^dns\/dns\.yaml:1: upstreams\.0: /);
    expect(curl('-H', owner, `${base}/dns/dns.yaml`).headers['x-kith-blob']).toBe(before.headers['x-kith-blob']);
  });

  it('kith repo and kith config log go through the store API of the running storage', () => {
    const kith = (...args: string[]) => spawnSync(process.execPath, [path.join(repoRoot, 'installer/kith.ts'), ...args, '--data', up.data], { encoding: 'utf8' });
    expect(kith('repo', 'create', 'Notes.2026').stdout).toBe('created Notes.2026.git\n');
    expect(kith('repo', 'create', 'Notes.2026').status).toBe(1);
    // Storage also made the repositories services' links grant (the calendar's).
    expect(JSON.parse(kith('repo', 'list', '--json').stdout).repos.filter((r: string) => r !== 'calendar')).toEqual(['Notes.2026', 'config']);
    expect(kith('repo', 'create', 'x'.repeat(65)).status).toBe(64);
    expect(kith('repo', 'delete', 'config').status).toBe(1);
    expect(kith('repo', 'delete', 'Notes.2026').stdout).toBe('deleted Notes.2026.git\n');
    const log = kith('config', 'log', '--json', '-n', '2').stdout.trim().split('\n').map((l) => JSON.parse(l) as { author: string; files: unknown[] });
    expect(log[0]).toMatchObject({ author: 'dns', files: [{ path: 'dns/zones/example.net.zone', change: 'modified' }] });
  });

  it('keeps each service to the paths it was granted, and refuses bad requests', () => {
    expect(curl('-X', 'PUT', '-H', dnsToken, '--data-binary', 'createOnPush: true\n', `${base}/storage/storage.yaml`).status).toBe(403);
    expect(curl('-X', 'DELETE', '-H', dnsToken, `${base}/dns/dns.yaml`).status).toBe(403);
    // Dot segments, plain or encoded, and .git are refused, as on every /store path.
    expect(curl('-H', owner, `${base}/dns/../storage/storage.yaml`, '--path-as-is').status).toBe(400);
    expect(curl('-H', owner, `${base}/dns/%2e%2e/%2e%2e/%2e%2e/etc/passwd`, '--path-as-is').status).toBe(400);
    expect(curl('-H', owner, `${base}/.git/config`, '--path-as-is').status).toBe(400);
    expect(curl('-X', 'PUT', '-H', owner, '-H', 'x-kith-expected-blob: xyz', '--data-binary', 'a', `${base}/dns/x.txt`).status).toBe(400);
    expect(curl('-X', 'POST', '-H', owner, `${base}/dns/dns.yaml`).status).toBe(405);
    // The service keeps serving after all that.
    expect(curl('-H', owner, `${base}/storage/storage.yaml`).status).toBe(200);
  });
});
