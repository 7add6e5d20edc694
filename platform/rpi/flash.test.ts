import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { closeSync, constants, mkdtempSync, openSync, readFileSync, readSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { open } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import zlib from 'node:zlib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { hasMbrSignature, mbrSector } from '../image/mbr.ts';
import { assessTarget, checkImage, flashImage, HEAD_BYTES, IncompleteWrite, mountsByDevice, targetFacts, verifyImage, type FlashProgress, type TargetFacts } from './flash.ts';
import { openImageStream } from './image-stream.ts';

const MiB = 2048; // sectors

/** The first sector of an image with these partitions (status, type, start, sectors). */
const head = (parts: [number, number, number, number][]) => mbrSector(parts.map(([status, type, start, sectors]) => ({ status, type, start, sectors })));

const KITH = head([[0x80, 0x0c, MiB, 256 * MiB], [0, 0x83, 257 * MiB, 256 * MiB]]);
const BYTES = 513 * 2 ** 20;

describe('checkImage', () => {
  it('accepts the rpi layout, and the two-partition one of images before the read-only root (issue 16)', () => {
    const three = head([[0x80, 0x0c, MiB, 256 * MiB], [0, 0x83, 257 * MiB, 192 * MiB], [0, 0x83, 449 * MiB, 256 * MiB]]);
    expect(checkImage(three, 705 * 2 ** 20)).toEqual({ ok: true, value: { bytes: 705 * 2 ** 20, partitions: [{ type: 0x0c, start: MiB, sectors: 256 * MiB }, { type: 0x83, start: 257 * MiB, sectors: 192 * MiB }, { type: 0x83, start: 449 * MiB, sectors: 256 * MiB }] } });
    expect(checkImage(KITH, BYTES)).toEqual({ ok: true, value: { bytes: BYTES, partitions: [{ type: 0x0c, start: MiB, sectors: 256 * MiB }, { type: 0x83, start: 257 * MiB, sectors: 256 * MiB }] } });
  });
  it('refuses anything else, saying why', () => {
    const cases: [Buffer, number, RegExp][] = [
      [Buffer.alloc(10), BYTES, /shorter than one sector/],
      [Buffer.alloc(512), BYTES, /no MBR signature/],
      [head([[0, 0x0c, MiB, 256 * MiB], [0, 0x83, 257 * MiB, 256 * MiB]]), BYTES, /partition 1 is not a bootable FAT32/],
      [head([[0x80, 0x0c, MiB, 256 * MiB], [0, 0x07, 257 * MiB, 256 * MiB]]), BYTES, /partition 2 is not a Linux/],
      [head([[0x80, 0x0c, MiB, 256 * MiB], [0, 0x83, 257 * MiB, 128 * MiB], [0, 0x07, 385 * MiB, 128 * MiB]]), BYTES, /partition 3 is not a Linux/],
      [head([[0x80, 0x0c, MiB, 256 * MiB], [0, 0x83, 257 * MiB, 128 * MiB], [0, 0x83, 385 * MiB, 128 * MiB], [0, 0x83, 600 * MiB, MiB]]), BYTES, /more than three partitions/],
      [head([[0x80, 0x0c, MiB, 256 * MiB], [0, 0x83, 257 * MiB, 128 * MiB], [0, 0x83, 385 * MiB, 256 * MiB]]), BYTES, /partition 3 runs past the end of the file/],
      [head([[0x80, 0x0c, MiB, 256 * MiB], [0, 0x83, 257 * MiB, 128 * MiB], [0, 0x83, 300 * MiB, 128 * MiB]]), BYTES, /overlap/],
      [KITH, BYTES - 512, /partition 2 runs past the end of the file \(a truncated download\?\)/],
      [head([[0x80, 0x0c, MiB, 256 * MiB], [0, 0x83, 100 * MiB, 256 * MiB]]), BYTES, /overlap/],
    ];
    for (const [b, n, re] of cases) {
      const r = checkImage(b, n);
      expect(r.ok, String(re)).toBe(false);
      if (!r.ok) expect(r.error).toMatch(re);
    }
    // Random damage: an answer, never a throw.
    for (let i = 0; i < 5000; i++) {
      const b = Buffer.from(KITH);
      b[446 + ((i * 7919) % 66)] = (i * 31) & 0xff;
      expect(() => checkImage(b, BYTES)).not.toThrow();
    }
  });
});

describe('assessTarget', () => {
  const card: TargetFacts = { path: '/dev/mmcblk0', kind: 'disk', name: 'mmcblk0', bytes: 31_914_983_424, removable: false, bus: 'mmc', model: 'SD SC32G', mounted: [] };
  const o = { imageBytes: BYTES };
  it('takes an SD card, a USB stick, a file, or a new file', () => {
    expect(assessTarget(card, o)).toEqual({ ok: true, value: { description: 'mmcblk0 (SD SC32G, 31.9 GB)' } });
    expect(assessTarget({ ...card, path: '/dev/sdb', name: 'sdb', bus: 'usb', model: undefined }, o).ok).toBe(true);
    expect(assessTarget({ ...card, bus: 'other', removable: true }, o).ok).toBe(true);
    expect(assessTarget({ path: '/tmp/x.img', kind: 'missing', mounted: [] }, o)).toEqual({ ok: true, value: { description: 'new file /tmp/x.img' } });
    expect(assessTarget({ path: '/tmp/x.img', kind: 'file', bytes: 5, mounted: [] }, o).ok).toBe(true);
  });
  it('refuses partitions, disks in use, small disks and fixed disks (unless forced)', () => {
    const refuse = (t: TargetFacts, re: RegExp, force = false) => {
      const r = assessTarget(t, { ...o, force });
      expect(r.ok).toBe(false);
      if (!r.ok) expect(r.error).toMatch(re);
    };
    refuse({ path: '/dev/sdb1', kind: 'partition', name: 'sdb1', mounted: [] }, /is a partition; give the whole card \(the disk sdb/);
    refuse({ path: '/dev/mmcblk0p2', kind: 'partition', name: 'mmcblk0p2', mounted: [] }, /the disk mmcblk0,/);
    refuse({ ...card, mounted: ['mounted on /media/owner/bootfs'] }, /in use: mounted on \/media\/owner\/bootfs; unmount it/);
    refuse({ ...card, bytes: 100e6 }, /holds 100 MB, less than the image's 538 MB/);
    refuse({ ...card, path: '/dev/nvme0n1', name: 'nvme0n1', bus: 'other', removable: false }, /does not look like an SD card or USB drive.*--force/);
    expect(assessTarget({ ...card, bus: 'other', removable: false }, { ...o, force: true }).ok).toBe(true);
    refuse({ path: '/dev/null', kind: 'other', mounted: [] }, /neither a disk nor a regular file/);
  });
});

describe('targetFacts and mountinfo', () => {
  it('reads mount points by device number, spaces unescaped', () => {
    const m = mountsByDevice([
      '22 1 254:0 / / rw,relatime shared:1 - ext4 /dev/vda rw',
      '40 22 8:17 / /media/owner/boot\\040fs rw,nosuid shared:20 - vfat /dev/sdb1 rw',
      '41 22 8:18 / /media/owner/data rw shared:21 - ext4 /dev/sdb2 rw',
      'garbage',
    ].join('\n'));
    expect(m.get('8:17')).toEqual(['/media/owner/boot fs']);
    expect(m.get('254:0')).toEqual(['/']);
  });
  it('tells files, missing paths and other kinds apart', () => {
    expect(targetFacts('/nonexistent/kith.img').kind).toBe('missing');
    expect(targetFacts('/dev/null').kind).toBe('other');
    expect(targetFacts(import.meta.filename)).toMatchObject({ kind: 'file' });
  });
});

/** A small image of the rpi layout: p1 FAT32 at 4 MiB (8 MiB), p2 Linux at 12 MiB (12 MiB); 24 MiB, mostly holes. */
function smallImage(): Buffer {
  const b = Buffer.alloc(24 << 20);
  head([[0x80, 0x0c, 4 * MiB, 8 * MiB], [0, 0x83, 12 * MiB, 12 * MiB]]).copy(b, 0);
  b.fill(0x5a, 4 << 20, (4 << 20) + 4096);
  let x = 99;
  for (let i = 12 << 20; i < 14 << 20; i += 16) {
    x = (x * 1103515245 + 12345) >>> 0;
    b.writeUInt32LE(x, i);
  }
  b.fill(0xa5, 23 << 20, (23 << 20) + 100);
  return b;
}

const have = (cmd: string) => spawnSync('sh', ['-c', `command -v ${cmd}`]).status === 0;
const firstSector = (path: string) => {
  const b = Buffer.alloc(512);
  const fd = openSync(path, 'r');
  try {
    readSync(fd, b, 0, 512, 0);
  } finally {
    closeSync(fd);
  }
  return b;
};

describe('flashImage', () => {
  let dir: string;
  let image: Buffer;
  const files: Record<string, string> = {};
  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'kith-flash-'));
    image = smallImage();
    writeFileSync((files.img = join(dir, 'kith.img')), image);
    writeFileSync((files.gz = join(dir, 'kith.img.gz')), zlib.gzipSync(image));
    writeFileSync((files.zst = join(dir, 'kith.img.zst')), zlib.zstdCompressSync(image, { pledgedSrcSize: image.length }));
    if (have('xz')) writeFileSync((files.xz = join(dir, 'kith.img.xz')), spawnSync('xz', ['-c', '-0'], { input: image, maxBuffer: 1 << 26 }).stdout);
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  for (const kind of ['img', 'gz', 'zst', 'xz']) {
    it.skipIf(kind === 'xz' && !have('xz'))(`writes an identical, sparse copy of a .${kind} image and verifies it, progress in uncompressed bytes`, async () => {
      const out = join(dir, `copy-${kind}.img`);
      writeFileSync(out, Buffer.alloc(50 << 20, 1)); // longer and full of old data
      const seen: FlashProgress[] = [];
      const r = await flashImage(openImageStream(files[kind]!), out, { verify: true, onProgress: (p) => seen.push(p) });
      expect(r).toMatchObject({ bytes: image.length, verified: true, interrupted: false });
      expect(r.fileSha256).toBe(createHash('sha256').update(readFileSync(files[kind]!)).digest('hex'));
      expect(readFileSync(out).equals(image)).toBe(true);
      // The head MiB and three 4 MiB blocks hold data (4-8, 12-16, 20-24 MiB); the rest stayed holes.
      expect(statSync(out).blocks * 512).toBeLessThanOrEqual(13 << 20);
      expect(seen.every((p) => p.total === image.length)).toBe(true);
      expect(seen.filter((p) => p.phase === 'write').map((p) => p.done)).toEqual([4, 8, 12, 16, 20, 24, 24].map((m) => m << 20));
      expect(seen.at(-1)).toEqual({ phase: 'verify', done: image.length, total: image.length });
    });
  }

  it('writes everything after the first MiB first, flushes, and the first MiB last', async () => {
    const writes: [number, number][] = [];
    const out = join(dir, 'order.img');
    await flashImage(openImageStream(files.zst!), out, {
      verify: false,
      write: async (fh, data, pos) => { writes.push([pos, data.length]); await fh.write(data, 0, data.length, pos); },
    });
    // 1-4 MiB is zeros: a hole in a file, so the first write is the block at 4 MiB.
    expect(writes[0]).toEqual([4 << 20, 4 << 20]);
    expect(writes.at(-1)).toEqual([0, HEAD_BYTES]);
    expect(writes.filter(([pos]) => pos < HEAD_BYTES)).toHaveLength(1);
  });

  const wasValid = (out: string) => {
    writeFileSync(out, image); // the target held a bootable image before
    expect(checkImage(firstSector(out), image.length).ok).toBe(true);
  };
  const notBootable = (out: string) => {
    expect(hasMbrSignature(firstSector(out))).toBe(false);
    if (have('sfdisk')) {
      const r = spawnSync('sfdisk', ['-l', out], { encoding: 'utf8' });
      expect(r.stdout).not.toMatch(/Disklabel type|\.img1 /);
    }
  };

  it('a failed write mid-way leaves a target with no partition table, and says so', async () => {
    const out = join(dir, 'fail.img');
    wasValid(out);
    const err = await flashImage(openImageStream(files.gz!), out, {
      verify: true,
      write: async (fh, data, pos) => {
        if (pos >= 12 << 20) throw new Error('EIO: i/o error, write');
        await fh.write(data, 0, data.length, pos);
      },
    }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(IncompleteWrite);
    expect((err as IncompleteWrite).interrupted).toBe(false);
    expect((err as Error).message).toMatch(/^EIO: i\/o error, write; .*fail\.img was not completely written: it has no partition table and will not boot\. Run kith flash again$/);
    notBootable(out);
  });

  it('Ctrl-C (an abort) mid-way: the same, marked interrupted', async () => {
    const out = join(dir, 'abort.img');
    wasValid(out);
    const ac = new AbortController();
    const err = await flashImage(openImageStream(files.img!), out, { verify: true, signal: ac.signal, onProgress: (p) => { if (p.done >= 8 << 20) ac.abort(); } }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(IncompleteWrite);
    expect((err as IncompleteWrite).interrupted).toBe(true);
    expect((err as Error).message).toMatch(/^interrupted; .* will not boot/);
    notBootable(out);
  });

  it('Ctrl-C while verifying: the card is complete (it boots), the result says not verified', async () => {
    const out = join(dir, 'abort-verify.img');
    const ac = new AbortController();
    const r = await flashImage(openImageStream(files.img!), out, { verify: true, signal: ac.signal, onProgress: (p) => { if (p.phase === 'verify' && p.done >= 8 << 20) ac.abort(); } });
    expect(r).toMatchObject({ verified: false, interrupted: true, bytes: image.length });
    expect(readFileSync(out).equals(image)).toBe(true);
  });

  it('a damaged download (not its .sha256) or a truncated image never gets its partition table', async () => {
    const out = join(dir, 'damaged.img');
    wasValid(out);
    await expect(flashImage(openImageStream(files.zst!), out, { verify: true, expectedFileSha256: 'f'.repeat(64) })).rejects.toThrow(/does not match its \.sha256 file .*download it again; .* will not boot/);
    notBootable(out);
    const cut = join(dir, 'cut.img');
    writeFileSync(cut, image.subarray(0, 20 << 20));
    await expect(flashImage(openImageStream(cut), out, { verify: true })).rejects.toThrow(/partition 2 runs past the end of the file \(a truncated download\?\).* will not boot/);
    notBootable(out);
    // The right checksum goes through.
    const good = createHash('sha256').update(readFileSync(files.zst!)).digest('hex');
    expect((await flashImage(openImageStream(files.zst!), out, { verify: true, expectedFileSha256: good })).verified).toBe(true);
  });

  it('verifyImage names the first differing byte; a matching target passes', async () => {
    const out = join(dir, 'verify.img');
    writeFileSync(out, image);
    expect(await verifyImage(openImageStream(files.zst!), out)).toMatchObject({ ok: true, bytes: image.length });
    const b = Buffer.from(image);
    b[(13 << 20) + 5] ^= 1; // one flipped bit, as a failing card gives
    writeFileSync(out, b);
    expect(await verifyImage(openImageStream(files.zst!), out)).toEqual({ ok: false, offset: (13 << 20) + 5, error: expect.stringMatching(/differs from .*kith\.img\.zst at byte 13631493 \(sector 26624\)/) });
    writeFileSync(out, image.subarray(0, 10 << 20));
    expect(await verifyImage(openImageStream(files.img!), out)).toMatchObject({ ok: false, offset: 10 << 20, error: expect.stringMatching(/ends at byte 10485760, before the image does/) });
  });
});

/** A real block device: a loop device over a file (root and losetup needed). */
function loopDevice(file: string): string | undefined {
  const r = spawnSync('losetup', ['--find', '--show', file], { encoding: 'utf8' });
  return r.status === 0 ? r.stdout.trim() : undefined;
}
const canLoop = (() => {
  if (process.getuid?.() !== 0 || !have('losetup')) return false;
  const d = mkdtempSync(join(tmpdir(), 'kith-loop-'));
  writeFileSync(join(d, 'probe'), Buffer.alloc(1 << 20));
  const dev = loopDevice(join(d, 'probe'));
  if (dev) spawnSync('losetup', ['-d', dev]);
  rmSync(d, { recursive: true, force: true });
  return dev !== undefined;
})();

describe.skipIf(!canLoop)('flashImage on a block device (a loop device)', () => {
  let dir: string;
  let image: Buffer;
  let dev: string;
  let backing: string;
  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'kith-flash-loop-'));
    image = smallImage();
    writeFileSync(join(dir, 'kith.img.zst'), zlib.zstdCompressSync(image, { pledgedSrcSize: image.length }));
    backing = join(dir, 'card');
    writeFileSync(backing, Buffer.alloc(32 << 20, 0xff)); // a used card: no zeros anywhere
    dev = loopDevice(backing)!;
  });
  afterAll(() => {
    if (dev) spawnSync('losetup', ['-d', dev]);
    rmSync(dir, { recursive: true, force: true });
  });

  it('writes every byte (no holes on a card), the old partition table erased first and the new one last', async () => {
    expect(statSync(dev).isBlockDevice()).toBe(true);
    const writes: [number, number, boolean][] = [];
    const r = await flashImage(openImageStream(join(dir, 'kith.img.zst')), dev, {
      verify: true,
      write: async (fh, data, pos) => { writes.push([pos, data.length, data.every((x) => x === 0)]); await fh.write(data, 0, data.length, pos); },
    });
    expect(r.verified).toBe(true);
    expect(writes[0]).toEqual([0, HEAD_BYTES, true]);
    expect(writes.at(-1)).toEqual([0, HEAD_BYTES, false]);
    // Zero blocks too: the card held 0xff there.
    expect(writes.reduce((n, [, len]) => n + len, 0)).toBe(image.length + HEAD_BYTES);
    spawnSync('sync');
    expect(readFileSync(backing).subarray(0, image.length).equals(image)).toBe(true);
  });

  it('a card someone else holds open exclusively is refused before anything is written', async () => {
    const holder = await open(dev, constants.O_RDONLY | constants.O_EXCL);
    try {
      await expect(flashImage(openImageStream(join(dir, 'kith.img.zst')), dev, { verify: false })).rejects.toThrow(/is in use \(mounted, or held by another program\): unmount it first; nothing was written/);
    } finally {
      await holder.close();
    }
    expect(checkImage(firstSector(dev), image.length).ok).toBe(true);
  });

  it('interrupted on a card that held a bootable image: no partition table', async () => {
    expect(checkImage(firstSector(dev), image.length).ok).toBe(true);
    const ac = new AbortController();
    await expect(flashImage(openImageStream(join(dir, 'kith.img.zst')), dev, { verify: true, signal: ac.signal, onProgress: (p) => { if (p.done >= 8 << 20) ac.abort(); } })).rejects.toThrow(/will not boot/);
    expect(hasMbrSignature(firstSector(dev))).toBe(false);
  });
});
