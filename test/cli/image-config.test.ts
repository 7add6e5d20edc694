/**
 * `kith image build --config DIR` checks the config before building anything: an image
 * whose service would refuse its config at boot is not worth the build.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';

const REPO = resolve(import.meta.dirname, '../..');
const tmp = mkdtempSync(join(tmpdir(), 'kith-image-config-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

describe('kith image build --config', () => {
  it('lists the problems of an invalid config, builds nothing and exits 78', () => {
    const config = join(tmp, 'config');
    mkdirSync(join(config, 'dns'), { recursive: true });
    writeFileSync(join(config, 'dns/dns.yaml'), 'upstreams: [not-an-ip]\nrecursion: {allow: [10.0.0.0/33]}\n');
    const out = join(tmp, 'image');
    const r = spawnSync(process.execPath, [join(REPO, 'installer/kith.ts'), 'image', 'build', '--target', 'kvm', '--service', 'dns', '--config', config, '--out', out], { encoding: 'utf8', cwd: REPO });
    expect(r.status, r.stdout + r.stderr).toBe(78);
    expect(r.stderr).toMatch(/^kith image build: dns\/dns\.yaml:1: upstreams\.0: expected an IP address/m);
    expect(r.stderr).toMatch(/the dns config is invalid; nothing was built/);
    expect(existsSync(out)).toBe(false);
  });
});
