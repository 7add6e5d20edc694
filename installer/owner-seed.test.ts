import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { parseSeed, PAIRING_SECRET } from '../platform/boot/owner-seed.ts';
import { bootPartitionOffset, seedFromOptions, wantsSeed, writeSeed } from './owner-seed.ts';

const KEY = 'ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIHXCBmSJC8Yl7M7ZQ/3yBqCvE6mhlyXfVrgCh9vYY3bJ owner@laptop';
const dir = mkdtempSync(join(tmpdir(), 'kith-ownerseed-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const file = (name: string, text: string) => { const p = join(dir, name); writeFileSync(p, text); return p; };
const have = (cmd: string) => spawnSync('sh', ['-c', `command -v ${cmd}`]).status === 0;
const MTOOLS = { ...process.env, MTOOLS_SKIP_CHECK: '1' };

describe('owner seed options', () => {
  it('makes a seed from flags, with a fresh pairing secret', () => {
    expect(wantsSeed({})).toBe(false);
    expect(wantsSeed({ hostname: 'box1' })).toBe(true);
    const r = seedFromOptions({ hostname: 'box1', domain: 'example.net', timezone: 'Europe/Berlin', 'owner-key': file('id.pub', `${KEY}\n`) });
    expect(r.ok).toBe(true);
    if (!r.ok) return;
    expect(r.seed).toMatchObject({ version: 1, hostname: 'box1', domain: 'example.net', timezone: 'Europe/Berlin', ownerKey: KEY });
    expect(r.seed.pairingSecret).toMatch(PAIRING_SECRET);
    expect(r.generated).toBe(true);
    const again = seedFromOptions({ hostname: 'box1' });
    expect(again.ok && again.seed.pairingSecret).not.toBe(r.seed.pairingSecret);
    // --ssh-key is the same option
    const ssh = seedFromOptions({ 'ssh-key': file('id2.pub', `# my key\n${KEY}\n`) });
    expect(ssh.ok && ssh.seed.ownerKey).toBe(KEY);
  });

  it('takes --seed YAML, the flags overriding it, and its secret when it has one', () => {
    const seed = file('seed.yaml', `hostname: old\ndomain: example.org\npairingSecret: K7PQ2-M4XZR-9WD3T-HV6NB-E8FJA\n`);
    const r = seedFromOptions({ seed, hostname: 'box1' });
    expect(r.ok && r.seed).toMatchObject({ hostname: 'box1', domain: 'example.org', pairingSecret: 'K7PQ2-M4XZR-9WD3T-HV6NB-E8FJA' });
    expect(r.ok && r.generated).toBe(false);
  });

  it('says what is wrong, with file and line for the YAML and the flag otherwise, never the secret', () => {
    const seed = file('bad.yaml', `hostname: box1\ndomain: nodot\ntimezone: mars/olympus\npairingSecret: hunter2\nwifi: x\n`);
    const r = seedFromOptions({ seed });
    expect(r.ok).toBe(false);
    if (r.ok) return;
    const text = r.errors.join('\n');
    expect(text).toContain(`${seed}:2: domain: expected a domain`);
    expect(text).toContain(`${seed}:3: timezone: expected a tz database name`);
    expect(text).toContain(`${seed}:4: pairingSecret: expected a pairing code`);
    expect(text).toContain(`${seed}:5: wifi: unknown key 'wifi'`);
    expect(text).not.toContain('hunter2');
    const syntax = seedFromOptions({ seed: file('syntax.yaml', 'hostname: [box1\n') });
    expect(!syntax.ok && syntax.errors[0]).toMatch(/syntax\.yaml:\d+: /);
    const flags = seedFromOptions({ hostname: 'Box_1', domain: 'EXAMPLE', timezone: '../../etc/passwd' });
    expect(!flags.ok && flags.errors).toEqual([expect.stringMatching(/^--hostname: /), expect.stringMatching(/^--domain: /), expect.stringMatching(/^--timezone: /)]);
    const priv = seedFromOptions({ 'owner-key': file('id', '-----BEGIN OPENSSH PRIVATE KEY-----\nb3Blbn\n-----END OPENSSH PRIVATE KEY-----\n') });
    expect(!priv.ok && priv.errors[0]).toMatch(/this is a private key; give the public one/);
    expect(!priv.ok && priv.errors.join()).not.toContain('b3Blbn');
    for (const bad of ['ssh-ed25519 AAAA', 'ssh-ed25519 AAAAC3NzaC1yc2EAAAADAQAB x', 'ssh-dss AAAAB3NzaC1kc3MAAACBAP', 'not a key', '']) {
      const k = seedFromOptions({ 'owner-key': file('k.pub', bad) });
      expect(k.ok, bad).toBe(false);
    }
    expect(seedFromOptions({ seed: join(dir, 'missing.yaml') })).toMatchObject({ ok: false, errors: [expect.stringMatching(/--seed .*missing\.yaml: ENOENT/)] });
    // a wholly hostile seed file never throws
    for (const junk of ['\u0000\u0001', '{{{{', 'a: *x', '- 1\n- 2', 'x'.repeat(70_000), '? [a]\n: b']) expect(parseSeed(junk).ok).toBe(false);
  });

  it.skipIf(!['sfdisk', 'mkfs.vfat', 'mtype', 'mcopy'].every(have))('writes kith-seed.yaml into the FAT boot partition of an image, as mtype reads it', () => {
    const img = join(dir, 'disk.img');
    const fat = join(dir, 'boot.vfat');
    spawnSync('truncate', ['-s', '40M', img]);
    expect(spawnSync('sfdisk', ['-q', img], { input: 'label: dos\nstart=2048, size=65536, type=c, bootable\nstart=67584, type=83\n' }).status).toBe(0);
    expect(spawnSync('mkfs.vfat', ['-n', 'KITHBOOT', '-C', fat, '32768']).status).toBe(0);
    expect(spawnSync('dd', [`if=${fat}`, `of=${img}`, 'bs=512', 'seek=2048', 'conv=notrunc', 'status=none']).status).toBe(0);
    expect(bootPartitionOffset(img)).toBe(2048 * 512);
    const r = seedFromOptions({ hostname: 'box1', domain: 'example.net' });
    if (!r.ok) throw new Error(r.errors.join());
    writeSeed(img, r.seed);
    const text = spawnSync('mtype', ['-i', `${img}@@${2048 * 512}`, '::/kith-seed.yaml'], { encoding: 'utf8', env: MTOOLS }).stdout;
    const back = parseSeed(text);
    expect(back.ok && back.value).toEqual(r.seed);
    // written again (a second flash of the same card): replaced, not refused
    writeSeed(img, { ...r.seed, hostname: 'box2' });
    expect(spawnSync('mtype', ['-i', `${img}@@${2048 * 512}`, '::/kith-seed.yaml'], { encoding: 'utf8', env: MTOOLS }).stdout).toMatch(/hostname: box2/);
    const after = join(dir, 'after.vfat');
    spawnSync('dd', [`if=${img}`, `of=${after}`, 'bs=512', 'skip=2048', 'count=65536', 'status=none']);
    const fsck = spawnSync('fsck.vfat', ['-n', after], { encoding: 'utf8' });
    expect(fsck.status, fsck.stdout).toBe(0);
    expect(() => bootPartitionOffset(fat)).toThrow(/partition 1 is not FAT|no MBR/);
  });
});
