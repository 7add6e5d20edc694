/**
 * `kith flash` as a person runs it: a child process writing a packed image to a
 * file-backed target. Ctrl-C (SIGINT to the child) mid-way leaves a target that sfdisk finds
 * no partition table on, and kith flash says it will not boot; --verify-only passes a good
 * copy and fails (exit 1) on one flipped byte; a damaged download never gets its partition
 * table. The images are made here (the rpi layout, 192 MiB of data that must all be
 * written); test/e2e/fresh-clone.test.ts does the same with the real image.
 * Needs: sfdisk (fdisk).
 */
import { spawn, spawnSync } from 'node:child_process';
import { closeSync, mkdtempSync, openSync, readFileSync, readSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import zlib from 'node:zlib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { hasMbrSignature, mbrSector } from '../../platform/image/mbr.ts';

const root = path.resolve(import.meta.dirname, '../..');
const kith = (...args: string[]) => spawnSync(process.execPath, [path.join(root, 'installer/kith.ts'), ...args], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
const have = (cmd: string) => spawnSync('sh', ['-c', `command -v ${cmd}`]).status === 0;
const MiB = 1 << 20;

/** An image of the rpi layout (p1 FAT32 at 4 MiB, p2 Linux after it), every block non-zero. */
function image(mib: number): Buffer {
  const b = Buffer.alloc(mib * MiB);
  for (let i = 0; i < b.length; i += 4096) b.writeUInt32LE(i / 4096 + 1, i);
  b.fill(0, 0, MiB);
  mbrSector([{ status: 0x80, type: 0x0c, start: 8192, sectors: 16 * 2048 }, { type: 0x83, start: 20 * 2048, sectors: (mib - 20) * 2048 }]).copy(b);
  return b;
}

const firstSector = (p: string) => {
  const b = Buffer.alloc(512);
  const fd = openSync(p, 'r');
  readSync(fd, b, 0, 512, 0);
  closeSync(fd);
  return b;
};

describe.skipIf(!have('sfdisk'))('kith flash (a child process, file targets; needs sfdisk)', () => {
  let dir: string;
  let img: Buffer;
  let zst: string;
  beforeAll(() => {
    dir = mkdtempSync(path.join(tmpdir(), 'kith-flash-cli-'));
    img = image(192);
    zst = path.join(dir, 'kith-rpi.img.zst');
    writeFileSync(zst, zlib.zstdCompressSync(img, { pledgedSrcSize: img.length }));
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  const partitioned = (target: string) => spawnSync('sfdisk', ['-l', target], { encoding: 'utf8' }).stdout;

  it('Ctrl-C mid-way: exit 130, says the target will not boot, and it has no partition table', async () => {
    const target = path.join(dir, 'card.img');
    writeFileSync(target, img); // the card held a bootable image before
    expect(partitioned(target)).toMatch(/card\.img1 .*W95 FAT32 \(LBA\)/);
    const child = spawn(process.execPath, [path.join(root, 'installer/kith.ts'), 'flash', zst, target, '--yes'], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stderr = '';
    let sent = false;
    child.stderr.setEncoding('utf8').on('data', (s: string) => {
      stderr += s;
      // Non-terminal progress: a line each 10 % of the uncompressed image.
      if (!sent && /^write 10%$/m.test(stderr)) {
        sent = true;
        child.kill('SIGINT');
      }
    });
    const code = await new Promise<number | null>((resolve) => child.on('close', resolve));
    expect(sent).toBe(true);
    expect(stderr).toMatch(/interrupted: stopping/);
    expect(stderr).toMatch(/kith flash: interrupted; .*card\.img was not completely written: it has no partition table and will not boot\. Run kith flash again/);
    expect(code).toBe(130);
    expect(hasMbrSignature(firstSector(target))).toBe(false);
    const listed = spawnSync('sfdisk', ['-l', target], { encoding: 'utf8' });
    expect(listed.stdout + listed.stderr).not.toMatch(/card\.img1/);
    expect(listed.stdout).toMatch(/^Disk .*card\.img/);
    expect(listed.stdout).not.toMatch(/Disklabel type/); // sfdisk found no partition table
    // And --verify-only agrees.
    expect(kith('flash', '--verify-only', zst, target).status).toBe(1);
  });

  it('writes and verifies; --verify-only passes the copy and fails (exit 1) on one flipped byte', () => {
    const target = path.join(dir, 'copy.img');
    const r = kith('flash', zst, target, '--json');
    expect(r.status, r.stderr).toBe(0);
    expect(r.stderr).not.toMatch(/Warning/); // node:ffi's experimental warning is kept from the owner
    expect(JSON.parse(r.stdout)).toMatchObject({ format: 'zstd', bytes: img.length, verified: true, interrupted: false });
    expect(partitioned(target)).toMatch(/copy\.img2 .*Linux/);
    const ok = kith('flash', '--verify-only', zst, target);
    expect(ok.status, ok.stderr).toBe(0);
    expect(ok.stdout).toMatch(/copy\.img matches .*kith-rpi\.img\.zst \(201 MB, sha256 [0-9a-f]{64}\)/);
    const b = readFileSync(target);
    b[100 * MiB + 7] ^= 0x10;
    writeFileSync(target, b);
    const bad = kith('flash', '--verify-only', zst, target);
    expect(bad.status).toBe(1);
    expect(bad.stderr).toMatch(/copy\.img differs from .*kith-rpi\.img\.zst at byte 104857607 \(sector 204800\)/);
  });

  it('a download that does not match its .sha256 is never given a partition table (exit 1)', () => {
    const copy = path.join(dir, 'dl', 'kith-rpi.img.zst');
    spawnSync('mkdir', ['-p', path.dirname(copy)]);
    const packed = readFileSync(zst);
    const good = spawnSync('sha256sum', [zst], { encoding: 'utf8' }).stdout.slice(0, 64);
    packed[packed.length - 3] ^= 1; // damaged in the last bytes: only the checksum can tell before the end
    writeFileSync(copy, packed);
    writeFileSync(`${copy}.sha256`, `${good}  kith-rpi.img.zst\n`);
    const target = path.join(dir, 'dl.img');
    const r = kith('flash', copy, target);
    expect(r.status).toBe(1);
    expect(r.stderr).toMatch(/will not boot/);
    expect(hasMbrSignature(firstSector(target))).toBe(false);
  });

  it('refuses what is not an image (65) and wrong arguments (64)', () => {
    writeFileSync(path.join(dir, 'page.img.zst'), '<html>Not Found</html>');
    const r = kith('flash', path.join(dir, 'page.img.zst'), path.join(dir, 'x.img'));
    expect(r.status).toBe(65);
    expect(r.stderr).toMatch(/page\.img\.zst: its name ends in \.zst but it is not compressed/);
    expect(kith('flash', '--verify-only', zst).status).toBe(64);
    symlinkSync(zst, path.join(dir, 'link.img'));
    const self = kith('flash', zst, path.join(dir, 'link.img'), '--yes');
    expect(self.status).toBe(64);
    expect(self.stderr).toMatch(/the target is the image itself/);
    expect(kith('flash', '--verify-only', zst, path.join(dir, 'nothing.img')).status).toBe(65);
  });
});

/** A loop device over a file: a real block device for kith flash (root and losetup needed). */
const loop = (file: string): string | undefined => {
  const r = spawnSync('losetup', ['--find', '--show', file], { encoding: 'utf8' });
  return r.status === 0 ? r.stdout.trim() : undefined;
};
const canLoop = process.getuid?.() === 0 && have('losetup') && have('sfdisk');

describe.skipIf(!canLoop)('kith flash to a block device (a loop device; needs root, losetup)', () => {
  let dir: string;
  let dev: string | undefined;
  let backing: string;
  let zst: string;
  let img: Buffer;
  beforeAll(() => {
    dir = mkdtempSync(path.join(tmpdir(), 'kith-flash-dev-'));
    img = image(64);
    zst = path.join(dir, 'kith-rpi.img.zst');
    writeFileSync(zst, zlib.zstdCompressSync(img, { pledgedSrcSize: img.length }));
    backing = path.join(dir, 'card');
    writeFileSync(backing, Buffer.alloc(96 * MiB, 0xee));
    dev = loop(backing);
  });
  afterAll(() => {
    if (dev) spawnSync('losetup', ['-d', dev]);
    rmSync(dir, { recursive: true, force: true });
  });

  it('refuses a fixed disk without --force (65), writes and verifies with it, and --verify-only agrees', () => {
    expect(dev).toMatch(/^\/dev\/loop\d+$/);
    const refused = kith('flash', zst, dev!, '--yes');
    expect(refused.status).toBe(65);
    expect(refused.stderr).toMatch(/does not look like an SD card or USB drive .*--force/);
    const r = kith('flash', zst, dev!, '--yes', '--force');
    expect(r.status, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/wrote 67 MB in .*, verified in/);
    expect(r.stdout).toMatch(/is ready: put the card in the Pi/);
    expect(spawnSync('sfdisk', ['-l', dev!], { encoding: 'utf8' }).stdout).toMatch(/loop\d+p?1 .*W95 FAT32 \(LBA\)/);
    expect(kith('flash', '--verify-only', zst, dev!).status).toBe(0);
    // Every byte went to the card, the image's zeros included (it held 0xee).
    spawnSync('sync');
    expect(readFileSync(backing).subarray(0, img.length).equals(img)).toBe(true);
  });
});
