import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mbrSector } from '../image/mbr.ts';
import { assessTarget, checkImage, flashImage, mountsByDevice, readBackHash, targetFacts, type TargetFacts } from './flash.ts';

const MiB = 2048; // sectors

/** The first sector of an image with these partitions (status, type, start, sectors). */
const head = (parts: [number, number, number, number][]) => mbrSector(parts.map(([status, type, start, sectors]) => ({ status, type, start, sectors })));

const KITH = head([[0x80, 0x0c, MiB, 256 * MiB], [0, 0x83, 257 * MiB, 256 * MiB]]);
const BYTES = 513 * 2 ** 20;

describe('checkImage', () => {
  it('accepts the rpi layout', () => {
    expect(checkImage(KITH, BYTES)).toEqual({ ok: true, value: { bytes: BYTES, partitions: [{ type: 0x0c, start: MiB, sectors: 256 * MiB }, { type: 0x83, start: 257 * MiB, sectors: 256 * MiB }] } });
  });
  it('refuses anything else, saying why', () => {
    const cases: [Buffer, number, RegExp][] = [
      [Buffer.alloc(10), BYTES, /shorter than one sector/],
      [Buffer.alloc(512), BYTES, /no MBR signature/],
      [head([[0, 0x0c, MiB, 256 * MiB], [0, 0x83, 257 * MiB, 256 * MiB]]), BYTES, /partition 1 is not a bootable FAT32/],
      [head([[0x80, 0x0c, MiB, 256 * MiB], [0, 0x07, 257 * MiB, 256 * MiB]]), BYTES, /partition 2 is not a Linux/],
      [head([[0x80, 0x0c, MiB, 256 * MiB], [0, 0x83, 257 * MiB, 256 * MiB], [0, 0x83, 600 * MiB, MiB]]), BYTES, /more than two partitions/],
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

describe('flashImage', () => {
  let dir: string;
  let image: string;
  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'kith-flash-'));
    image = join(dir, 'kith.img');
    const b = Buffer.alloc(20 * 2 ** 20); // mostly holes, like the real image
    KITH.copy(b, 0);
    b.fill(0x5a, 2 ** 20, 2 ** 20 + 4096);
    b.fill(0xa5, 19 * 2 ** 20, 19 * 2 ** 20 + 100);
    writeFileSync(image, b);
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('writes an identical, sparse copy and verifies it', () => {
    const out = join(dir, 'copy.img');
    writeFileSync(out, Buffer.alloc(50 * 2 ** 20, 1)); // longer and full of old data
    const phases = new Set<string>();
    const r = flashImage(image, out, { verify: true, onProgress: (p) => phases.add(`${p.phase}:${p.done === p.total}`) });
    expect(r).toMatchObject({ bytes: 20 * 2 ** 20, verified: true });
    expect(readFileSync(out).equals(readFileSync(image))).toBe(true);
    expect(statSync(out).blocks * 512).toBeLessThanOrEqual(8 * 2 ** 20); // two 4 MiB chunks hold data; the rest stayed holes
    expect(phases).toEqual(new Set(['write:false', 'write:true', 'verify:false', 'verify:true']));
  });

  it('notices a target that does not read back what was written', () => {
    const out = join(dir, 'bad.img');
    flashImage(image, out, { verify: false });
    const b = readFileSync(out);
    b[19 * 2 ** 20 + 50] ^= 1; // one flipped bit, as a failing card gives
    writeFileSync(out, b);
    expect(readBackHash(out, b.length)).not.toBe(readBackHash(image, b.length));
    expect(() => readBackHash(join(dir, 'short.img'), 1)).toThrow(/ENOENT/);
    writeFileSync(join(dir, 'short.img'), 'x');
    expect(() => readBackHash(join(dir, 'short.img'), 100)).toThrow(/fewer than the image's 100/);
  });
});
