import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, truncateSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ext4Size, fsGrowTarget, planGrow } from './grow.ts';
import { mbrSector } from '../image/mbr.ts';
import { prng } from '../../test/support/prng.ts';

const MiB = 2048; // sectors

/** An MBR with the given primary partitions (type, start, sectors). */
const mbr = (parts: [number, number, number][]) => mbrSector(parts.map(([type, start, sectors]) => ({ type, start, sectors })));

// The rpi image: 256 MiB FAT32 boot from 1 MiB, 256 MiB ext4 data after it.
const RPI = mbr([[0x0c, MiB, 256 * MiB], [0x83, 257 * MiB, 256 * MiB]]);

describe('planGrow', () => {
  it('extends the last Linux partition to the disk end, 1 MiB aligned', () => {
    const r = planGrow(RPI, 32_000_000_000 / 512, 2);
    expect(r.ok && r.value.grow).toBe(true);
    if (!r.ok || !r.value.grow) return;
    const end = Math.floor(32_000_000_000 / 512 / MiB) * MiB;
    expect(r.value).toMatchObject({ startSector: 257 * MiB, fromSectors: 256 * MiB, toSectors: end - 257 * MiB });
    expect(r.value.mbr.readUInt32LE(446 + 16 + 12)).toBe(end - 257 * MiB);
    expect(r.value.mbr.subarray(0, 446 + 16)).toEqual(RPI.subarray(0, 446 + 16)); // boot code and partition 1 untouched
    // Grown once, nothing more to do.
    expect(planGrow(r.value.mbr, 32_000_000_000 / 512, 2)).toEqual({ ok: true, value: { grow: false, reason: 'it already fills the disk' } });
  });

  it('leaves a partition alone that is not last, nearly full already, or beyond MBR reach', () => {
    expect(planGrow(RPI, 513 * MiB + 100, 2)).toEqual({ ok: true, value: { grow: false, reason: 'it already fills the disk' } });
    expect(planGrow(mbr([[0x83, MiB, 100 * MiB], [0x83, 200 * MiB, 10 * MiB]]), 1000 * MiB, 1)).toEqual({ ok: true, value: { grow: false, reason: 'partition 2 follows it' } });
    expect(planGrow(mbr([[0x83, MiB, 100 * MiB], [0x05, 200 * MiB, 10 * MiB]]), 1000 * MiB, 1)).toEqual({ ok: true, value: { grow: false, reason: 'partition 2 (extended) follows it' } });
    // 4 TB disk: the MBR's 32-bit sector counts stop at 2 TiB.
    const r = planGrow(RPI, 4e12 / 512, 2);
    expect(r.ok && r.value.grow && r.value.startSector + r.value.toSectors).toBeLessThanOrEqual(0xffffffff);
  });

  it('refuses tables it does not understand, with the reason', () => {
    const cases: [Buffer, number, number, RegExp][] = [
      [Buffer.alloc(100), 1e6, 2, /100 bytes/],
      [Buffer.alloc(512), 1e6, 2, /no 0x55AA signature/],
      [RPI, 1e6, 5, /only primary partitions/],
      [RPI, 1e6, 1, /type 0xc, not Linux/],
      [RPI, 1e6, 3, /partition 3 is empty/],
      [RPI, 300 * MiB, 2, /past the disk's .*truncated image/],
      [mbr([[0x83, MiB, 100 * MiB], [0x83, 50 * MiB, 100 * MiB]]), 1e6, 2, /overlaps partition 1/],
      [RPI, Number.NaN, 2, /not a size/],
    ];
    for (const [b, disk, n, re] of cases) {
      const r = planGrow(b, disk, n);
      expect(r.ok, String(re)).toBe(false);
      if (!r.ok) expect(r.error).toMatch(re);
    }
  });

  it('never throws on random tables, and never plans past the disk or over another partition', () => {
    const rand = prng(5);
    for (let i = 0; i < 20_000; i++) {
      const b = Buffer.from(RPI);
      for (let k = 0; k < 1 + Math.floor(rand() * 6); k++) b[446 + Math.floor(rand() * 66)] = Math.floor(rand() * 256);
      const disk = Math.floor(rand() * 2 ** 34);
      const n = 1 + Math.floor(rand() * 4);
      const r = planGrow(b, disk, n);
      if (r.ok && r.value.grow) {
        const { startSector, toSectors } = r.value;
        expect(startSector + toSectors).toBeLessThanOrEqual(disk);
        for (let j = 0; j < 4; j++) {
          if (j === n - 1) continue;
          const s = b.readUInt32LE(446 + j * 16 + 8), c = b.readUInt32LE(446 + j * 16 + 12);
          if (b[446 + j * 16 + 4] === 0 || c === 0) continue;
          expect(s >= startSector + toSectors || s + c <= startSector).toBe(true);
        }
      }
    }
  });
});

describe('ext4 sizes', () => {
  it('reads block count and size from a real superblock (mke2fs), and plans the resize', () => {
    const tmp = mkdtempSync(join(tmpdir(), 'kith-grow-'));
    try {
      const img = join(tmp, 'fs.img');
      const mk = spawnSync('mke2fs', ['-q', '-t', 'ext4', '-b', '4096', '-F', img, '64M']);
      expect(mk.status, String(mk.stderr)).toBe(0);
      const sb = readFileSync(img).subarray(1024, 2048);
      const fs = ext4Size(sb);
      expect(fs).toEqual({ ok: true, value: { blocks: 64 * 2 ** 20 / 4096, blockSize: 4096 } });
      if (!fs.ok) return;
      expect(fsGrowTarget(fs.value, 64 * 2 ** 20)).toBeUndefined();
      expect(fsGrowTarget(fs.value, 64 * 2 ** 20 + 4096)).toBeUndefined(); // under 1 MiB: not worth it
      expect(fsGrowTarget(fs.value, 1024 * 2 ** 20)).toBe(1024 * 2 ** 20 / 4096);
      // The same target resize2fs would reach: grow the file offline and compare.
      truncateSync(img, 128 * 2 ** 20);
      expect(spawnSync('resize2fs', ['-f', img, String(fsGrowTarget(fs.value, 128 * 2 ** 20))]).status).toBe(0);
      expect(ext4Size(readFileSync(img).subarray(1024, 2048))).toEqual({ ok: true, value: { blocks: 128 * 2 ** 20 / 4096, blockSize: 4096 } });
      // mke2fs's own choice for a small file system: 1 KiB blocks.
      expect(spawnSync('mke2fs', ['-q', '-t', 'ext4', '-F', img, '16M']).status).toBe(0);
      expect(ext4Size(readFileSync(img).subarray(1024, 2048))).toEqual({ ok: true, value: { blocks: 16 * 1024, blockSize: 1024 } });
    } finally {
      rmSync(tmp, { recursive: true, force: true });
    }
  });

  it('refuses what is not an ext superblock', () => {
    expect(ext4Size(Buffer.alloc(10))).toEqual({ ok: false, error: 'ext4 superblock: too short' });
    expect(ext4Size(Buffer.alloc(1024))).toEqual({ ok: false, error: 'ext4 superblock: no 0xEF53 magic' });
    const b = Buffer.alloc(1024);
    b.writeUInt16LE(0xef53, 0x38);
    b.writeUInt32LE(40, 0x18);
    expect(ext4Size(b).ok).toBe(false);
  });
});
